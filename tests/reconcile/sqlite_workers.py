"""Run ``pi_reconcile --workers 2`` on a SQLite database file, as a site on SQLite would.

Run by ``test_sqlite.py``: ``python tests/reconcile/sqlite_workers.py`` with
``DJANGO_SETTINGS_MODULE=tests.settings``, ``DATABASE_URL=sqlite:///<file>`` and
``PI_SANDBOX_URL`` / ``PI_SANDBOX_API_KEY`` the test's sandbox. The database is migrated first;
the command's JSON document is printed, and its exit status is the script's.
"""

from __future__ import annotations

import sys

from tests.child_process import setup_child


def main() -> int:
    """Migrate, then reconcile with two workers."""
    setup_child()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        call_command("pi_reconcile", "--older-than", "0", "--workers", "2", "--json")
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
