"""docs/a2u.md says what the code does: its example test runs as written, its names exist."""

from __future__ import annotations

import re
from pathlib import Path

from django_pi_payments import services
from django_pi_payments.conf import DEFAULTS
from tests.doc_examples import run_example_test

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "a2u.md").read_text()


def test_the_example_test_passes(tmp_path: Path) -> None:
    assert "1 passed" in run_example_test("docs/a2u.md", tmp_path)


def test_the_names_it_uses_exist() -> None:
    for name in re.findall(r"services\.(\w+)\(", DOC):
        assert hasattr(services, name), name
    for setting in ("WALLET_PRIVATE_SEED", "A2U_RESUME_TIMEOUT"):
        assert setting in DEFAULTS
    assert f'"A2U_RESUME_TIMEOUT": {DEFAULTS["A2U_RESUME_TIMEOUT"]},' in DOC
