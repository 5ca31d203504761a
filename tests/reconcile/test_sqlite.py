"""``pi_reconcile`` workers on a SQLite database file: they take turns instead of failing.

SQLite has one write lock for the whole database and no ``SELECT … FOR UPDATE``. Two transactions
that each read and then write fail with "database is locked" when they overlap; the payment lock
takes the write lock first, which SQLite waits for. The test suite's own SQLite database is shared
in memory, where SQLite never waits, so the run happens in a child process on a file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..child_process import run_child

CHILD = Path(__file__).with_name("sqlite_workers.py")


def test_two_workers_complete_overlapping_payments_on_sqlite(flow, pi_sandbox, tmp_path):
    paid = [flow.paid(), flow.for_new_shopper("second").paid()]
    # Each completion holds its transaction across a slow Pi call: the two overlap.
    pi_sandbox.set_config(latency_ms=300)
    child = run_child(CHILD, pi_sandbox, f"sqlite:///{tmp_path / 'shop.sqlite3'}")
    assert child.returncode == 0, child.stdout + child.stderr
    outcomes = {row["identifier"]: row for row in json.loads(child.stdout)["payments"]}
    for identifier, _txid in paid:
        assert outcomes[identifier]["action"] == "complete", outcomes[identifier]
        assert pi_sandbox.payment(identifier)["status"]["developer_completed"] is True
