"""A Django process of the suite's own, run as a child: a site's worker on the test's sandbox.

The parent calls :func:`run_child` with a script and the database the child must use; the script
calls :func:`setup_child` first, which sets Django up with ``PI_PAYMENTS`` pointing at the
parent's sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django_pi_payments.testing import SandboxHandle

ROOT = Path(__file__).resolve().parents[1]


def run_child(
    script: Path, sandbox: SandboxHandle, database_url: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with ``args`` to its end (two minutes at most); its output is captured."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "PI_SANDBOX_URL": sandbox.url,
        "PI_SANDBOX_API_KEY": sandbox.api_key,
    }
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def setup_child() -> None:
    """In the child: ``django.setup()``, then ``PI_PAYMENTS`` for the parent's sandbox."""
    import django

    django.setup()
    from django.conf import settings

    url = os.environ["PI_SANDBOX_URL"]
    settings.PI_PAYMENTS = {
        "API_KEY": os.environ["PI_SANDBOX_API_KEY"],
        "API_BASE_URL": url,
        "HORIZON_URL": f"{url}/horizon",
        "NETWORK": "Pi Testnet",
    }
