"""Runs tests as a user's project would: the example test a documentation page shows, pasted into
the user's suite, or tests of the user's own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example_test(page: str, tmp_path: Path) -> str:
    """Run the one ``python`` block of ``page`` that defines pytest tests; return pytest's
    output."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.DOTALL)
    (example,) = [block for block in blocks if "def test_" in block and "import pytest" in block]
    return run_user_tests(example, tmp_path / f"test_{Path(page).stem}_md.py")


def user_environment(*paths: Path) -> dict[str, str]:
    """The environment of a child run as a user's project would run: this suite's settings on
    SQLite with the local-memory cache, ``paths`` then the repository importable."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "PYTEST_ADDOPTS"}
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=os.pathsep.join([*map(str, paths), str(ROOT)]),
    )
    return environment


def run_user_tests(source: str, test_file: Path, *options: str) -> str:
    """Write ``source`` to ``test_file``, run it, and return pytest's output; fail if it fails.

    The run uses the suite's settings on SQLite, in a child pytest, so the tests see exactly
    what a user's project would: the ``pi_sandbox`` plugin and nothing of this suite's fixtures
    (its cache is not emptied between tests, for one). ``options`` go to pytest.
    """
    test_file.write_text(source)
    environment = user_environment()
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            "-q",
            "-p",
            "no:cacheprovider",
            *config,
            *options,
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
