"""The example of docs/testing.md for Django's own test runner, run by ``manage.py test`` with no
pytest importable: the handle and the server must not need it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ..child_process import ROOT
from ..doc_examples import user_environment

SECTION = "## With Django's test runner (`manage.py test`)"
# Shadows the real pytest in the child: importing it is an error, as where it is not installed.
NO_PYTEST = 'raise ImportError("pytest is not installed")\n'


def runner_example() -> str:
    page = (ROOT / "docs" / "testing.md").read_text()
    section = page[page.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return example


def test_the_django_runner_example_passes_without_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_pi_runner.py").write_text(runner_example())
    (tmp_path / "pytest").mkdir()
    (tmp_path / "pytest" / "__init__.py").write_text(NO_PYTEST)
    result = subprocess.run(
        [sys.executable, "-m", "django", "test", "test_pi_runner", "-v", "2"],
        cwd=tmp_path,
        env=user_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "test_a_pioneer_pays (test_pi_runner.PioneerPaysTests" in output
    assert "Ran 1 test" in output
