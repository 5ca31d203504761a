"""The crontab lines of docs/operations.md and docs/deployment.md, run as cron runs them:
``/bin/sh``, an empty environment."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..child_process import ROOT
from .test_reconcile import database_url

PAGES = ("operations.md", "deployment.md")
MANAGE_PY = """
import sys
from tests.child_process import setup_child
setup_child()
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""
# A stand-in for mail(1) in site/bin: what it is sent goes to the file site/mailed.
MAIL = '#!/bin/sh\ncat > "$(dirname "$0")/../mailed"\n'


def run_cron_line(sandbox, site: Path, page: str) -> Path:
    """Run the page's crontab line with ``site`` for /srv/shop and /var/log; the log's path."""
    text = (ROOT / "docs" / page).read_text()
    (line,) = re.findall(r"^\*/5 \* \* \* \* (.+)$", text, flags=re.M)
    (site / "manage.py").write_text(MANAGE_PY)
    (site / ".env").write_text(
        f"DJANGO_SETTINGS_MODULE=tests.settings\nPYTHONPATH='{ROOT}'\n"
        f"DATABASE_URL='{database_url()}'\n"
        f"PI_SANDBOX_URL='{sandbox.url}'\nPI_SANDBOX_API_KEY='{sandbox.api_key}'\n"
    )
    bin_dir = site / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "mail").write_text(MAIL)
    (bin_dir / "mail").chmod(0o755)
    line = (
        line.replace("/srv/shop", str(site))
        .replace("/var/log", str(site))
        .replace(".venv/bin/python", sys.executable)
    )
    subprocess.run(
        ["/bin/sh", "-c", line],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(site)},
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=True,
    )
    return site / "pi_reconcile.log"


@pytest.mark.parametrize("page", PAGES)
def test_each_run_is_dated_and_a_failing_one_mails_its_error(flow, pi_sandbox, tmp_path, page):
    log = run_cron_line(pi_sandbox, tmp_path, page)
    date, summary = log.read_text().splitlines()
    assert re.search(r"\d\d:\d\d:\d\d", date)
    assert summary == "total 0, failed 0"
    assert not (tmp_path / "mailed").exists()

    flow.paid()
    pi_sandbox.add_fault("complete", status=400, body={"error": "unknown_error"}, count=1)
    run_cron_line(pi_sandbox, tmp_path, page)
    mailed = (tmp_path / "mailed").read_text().splitlines()
    assert mailed[-2:] == [
        "total 1, failed 1",
        "CommandError: 1 payment(s) failed; see the output above.",
    ]
    assert ": failed (approved -> " in mailed[-3]
