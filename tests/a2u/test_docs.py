"""docs/a2u.md says what the code does: its example test runs as written, its names exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from django_pi_payments import services
from django_pi_payments.conf import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "a2u.md").read_text()


def test_the_example_test_passes(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
    (example,) = [block for block in blocks if "def test_" in block]
    test_file = tmp_path / "test_a2u_md.py"
    test_file.write_text(example)
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "PYTEST_ADDOPTS"}
    }
    environment.update(DJANGO_SETTINGS_MODULE="tests.settings", PYTHONPATH=str(ROOT))
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider", *config],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_names_it_uses_exist() -> None:
    for name in re.findall(r"services\.(\w+)\(", DOC):
        assert hasattr(services, name), name
    for setting in ("WALLET_PRIVATE_SEED", "A2U_RESUME_TIMEOUT"):
        assert setting in DEFAULTS
    assert f'"A2U_RESUME_TIMEOUT": {DEFAULTS["A2U_RESUME_TIMEOUT"]},' in DOC
