"""The authentication tests pass again with a custom user model.

``AUTH_USER_MODEL`` is fixed when Django starts, so this runs ``tests/auth`` in a child pytest
with ``tests.auth.custom_user.settings``: a model whose ``USERNAME_FIELD`` is ``handle``, 20
characters long, without ``PermissionsMixin``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
CUSTOM_SETTINGS = "tests.auth.custom_user.settings"


def test_auth_suite_with_a_custom_user_model():
    if settings.AUTH_USER_MODEL == "custom_user.Pioneer":
        pytest.skip("this is the run with the custom user model")
    command = [sys.executable, "-m", "pytest", "tests/auth", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, f"--ds={CUSTOM_SETTINGS}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
