"""``pi_reconcile`` against the sandbox: every outcome of DESIGN.md §7, output and exit codes."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

import django_pi_payments.reconcile as reconcile_module
from django_pi_payments import signals
from django_pi_payments.client import get_client
from django_pi_payments.http import POOL_SIZE
from django_pi_payments.management.commands.pi_reconcile import PROGRESS_THRESHOLD, Command
from django_pi_payments.models import Payment, PaymentEvent, PaymentStatus
from django_pi_payments.reconcile import (
    STOP_AFTER_UNREACHABLE,
    Outcome,
    pi_answers,
    reconcile,
    run_lock,
)

from ..child_process import ROOT
from ..database_lock import database_down

S = PaymentStatus


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("pi_reconcile", "--older-than", "0", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def status(identifier: str) -> str:
    return Payment.objects.get(identifier=identifier).status


def test_verified_transaction_is_completed(flow, pi_sandbox, signal_log):
    identifier, _txid = flow.paid()
    out, _err = run()
    assert status(identifier) == S.COMPLETED
    assert pi_sandbox.payment(identifier)["status"]["developer_completed"] is True
    assert signal_log.count("completed", identifier) == 1
    assert "complete 1" in out
    run()
    assert signal_log.count("completed", identifier) == 1


def test_cancelled_at_pi_is_marked(flow, pi_sandbox, signal_log):
    identifier = flow.approved()
    pi_sandbox.user_cancel(identifier)
    run()
    assert status(identifier) == S.USER_CANCELLED
    assert signal_log.count("cancelled", identifier) == 1


def test_completed_at_pi_is_marked_with_one_signal(flow, pi_sandbox, signal_log):
    identifier, txid = flow.paid()
    get_client().complete_payment(identifier, txid)
    pi_sandbox.clear_calls()
    run()
    run()
    assert status(identifier) == S.COMPLETED
    assert signal_log.count("completed", identifier) == 1
    assert pi_sandbox.calls("complete") == []


def test_unpaid_approved_payment_is_cancelled_only_with_cancel_unpaid(flow, pi_sandbox, signal_log):
    identifier = flow.approved()
    out, _err = run("-v", "2")
    assert status(identifier) == S.APPROVED
    assert "wait" in out
    run("--cancel-unpaid")
    assert status(identifier) == S.CANCELLED
    assert pi_sandbox.payment(identifier)["status"]["cancelled"] is True
    assert signal_log.count("cancelled", identifier) == 1


def test_recent_unpaid_payment_is_left_alone(flow, pi_sandbox):
    identifier = flow.approved()
    call_command("pi_reconcile", "--cancel-unpaid", stdout=io.StringIO())
    assert status(identifier) == S.APPROVED


def test_dry_run_changes_nothing(flow, pi_sandbox, signal_log):
    paid, _txid = flow.paid()
    unpaid = flow.for_new_shopper().approved()
    pi_sandbox.clear_calls()
    signal_log.received.clear()
    events_before = PaymentEvent.objects.count()
    out, _err = run("--dry-run", "--cancel-unpaid", "--json")
    document = json.loads(out)
    assert document["dry_run"] is True
    actions = {entry["identifier"]: entry["action"] for entry in document["payments"]}
    assert actions == {paid: "would_complete", unpaid: "would_cancel"}
    assert [c for c in pi_sandbox.calls() if c["method"] == "POST"] == []
    assert PaymentEvent.objects.count() == events_before
    assert status(paid) == S.APPROVED
    assert signal_log.received == []


def test_json_document(flow, pi_sandbox):
    identifier, _txid = flow.paid()
    out, _err = run("--json")
    document = json.loads(out)
    assert document["counts"]["total"] == 1
    assert document["counts"]["failed"] == 0
    (entry,) = document["payments"]
    assert entry == {
        "identifier": identifier,
        "action": "complete",
        "before": "approved",
        "after": "completed",
        "error": None,
    }


def test_one_failure_does_not_stop_the_others(flow, pi_sandbox):
    paid = [flow.for_new_shopper(f"s{n}").paid()[0] for n in range(3)]
    pi_sandbox.add_fault("complete", status=400, body={"error": "unknown_error"}, count=1)
    out, _err = run("--json", "--workers", "1")
    document = json.loads(out)
    assert document["counts"]["failed"] == 1
    assert document["counts"]["complete"] == 2
    assert sorted(status(i) for i in paid) == [S.COMPLETED, S.COMPLETED, S.TRANSACTION_VERIFIED]
    failed = [e for e in document["payments"] if e["error"]]
    assert "unknown_error" in failed[0]["error"]


def test_a_failing_receiver_does_not_stop_the_run(flow, pi_sandbox, signal_log, caplog):
    paid = [flow.for_new_shopper(f"r{n}").paid()[0] for n in range(3)]

    def fulfil(sender: object, payment: Payment, **kwargs: object) -> None:
        if payment.identifier == paid[0]:
            raise RuntimeError("the order could not be fulfilled")

    signals.payment_completed.connect(fulfil, weak=False)
    out = io.StringIO()
    argv = ["manage.py", "pi_reconcile", "--skip-checks", "--older-than", "0", "--json"]
    try:
        Command(stdout=out, stderr=io.StringIO()).run_from_argv([*argv, "--workers", "1"])
    finally:
        signals.payment_completed.disconnect(fulfil)
    document = json.loads(out.getvalue())
    assert document["counts"] == {"total": 3, "failed": 0, "complete": 3}
    assert {status(identifier) for identifier in paid} == {S.COMPLETED}
    assert signal_log.count("completed") == 3
    (logged,) = [
        r
        for r in caplog.records
        if r.name == "django_pi_payments.services" and r.levelname == "ERROR"
    ]
    assert logged.getMessage().startswith(
        f"payment {paid[0]} is completed, but a payment_completed receiver"
    )


def paid_payments(flow, count: int) -> list[str]:
    return [flow.for_new_shopper(f"due{n}").paid()[0] for n in range(count)]


@pytest.fixture
def outage_after_first_completion(pi_sandbox):
    """Pi goes down (every call answers 500) once the first payment has been completed."""
    completed: list[str] = []

    def go_down(sender: object, payment: Payment, **kwargs: object) -> None:
        completed.append(payment.identifier)
        if len(completed) == 1:
            pi_sandbox.add_fault("*", status=500, count=None)

    signals.payment_completed.connect(go_down, weak=False)
    yield
    signals.payment_completed.disconnect(go_down)
    pi_sandbox.clear_faults()


def test_a_run_stops_trying_once_pi_is_unreachable(flow, pi_sandbox, outage_after_first_completion):
    due = paid_payments(flow, STOP_AFTER_UNREACHABLE + 15)
    pi_sandbox.clear_calls()
    out, _err = run("--json", "--workers", "1")
    document = json.loads(out)
    counts = document["counts"]
    # One completed, then the streak, then Pi's list did not answer either; the payments the pool
    # held then (at most 2) finish.
    assert counts["complete"] == 1
    assert STOP_AFTER_UNREACHABLE <= counts["failed"] <= STOP_AFTER_UNREACHABLE + 2
    assert counts["total"] == 1 + counts["failed"] + counts["not_tried"] == len(due)
    # Each payment tried during the outage failed on its own Horizon reads (the transaction; the
    # operations too, unless the transaction's failure cancelled that read before it left), and
    # Pi's list did not answer the check once: no other payment called Pi.
    failing = [call["route"] for call in pi_sandbox.calls() if call["faulted"]]
    assert failing.count("incomplete_server_payments") == 1
    assert failing.count("horizon_transaction") == counts["failed"]
    assert failing.count("horizon_operations") <= counts["failed"]
    assert len(failing) == 1 + failing.count("horizon_transaction") + failing.count(
        "horizon_operations"
    )
    not_tried = [entry for entry in document["payments"] if entry["action"] == "not_tried"]
    assert {entry["error"] for entry in not_tried} == {
        "pi_unavailable: not tried, Pi Network or Horizon is unreachable"
    }
    untouched = [entry["identifier"] for entry in not_tried]
    assert not PaymentEvent.objects.filter(payment__identifier__in=untouched, kind="pi_error")
    assert {status(identifier) for identifier in untouched} == {S.APPROVED}
    pi_sandbox.clear_faults()
    run()
    assert {status(identifier) for identifier in due} == {S.COMPLETED}


def test_a_run_stops_trying_once_horizon_alone_is_unreachable(flow, pi_sandbox):
    due = paid_payments(flow, STOP_AFTER_UNREACHABLE + 15)
    for route in ("horizon_root", "horizon_transaction", "horizon_operations"):
        pi_sandbox.add_fault(route, status=500, count=None)
    out, _err = run("--json", "--workers", "1")
    counts = json.loads(out)["counts"]
    assert STOP_AFTER_UNREACHABLE <= counts["failed"] <= STOP_AFTER_UNREACHABLE + 2
    assert counts["not_tried"] == len(due) - counts["failed"]
    assert pi_sandbox.calls("complete") == []
    assert len(pi_sandbox.calls("horizon_root")) == 1  # the check, once
    pi_sandbox.clear_faults()
    run()
    assert {status(identifier) for identifier in due} == {S.COMPLETED}


def test_horizon_is_checked_only_on_a_site_that_reads_it(flow, pi_sandbox, settings):
    pi_sandbox.add_fault("horizon_root", status=500, count=None)
    assert not pi_answers()
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "VERIFY_TRANSACTIONS": False}
    assert "WALLET_PRIVATE_SEED" not in settings.PI_PAYMENTS
    assert pi_answers()
    assert len(pi_sandbox.calls("horizon_root")) == 1


def test_the_most_workers_verifying_at_once_reuse_their_connections(flow, pi_sandbox, caplog):
    if connection.vendor == "sqlite":
        pytest.skip("on SQLite the workers take turns with the write lock: none verify at once")
    due = paid_payments(flow, 40)
    pi_sandbox.set_config(latency_ms=100)  # every worker waits on Horizon at the same time
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        run("--workers", str(POOL_SIZE))
    assert {status(identifier) for identifier in due} == {S.COMPLETED}
    assert "Connection pool is full" not in caplog.text


def test_the_summary_counts_the_payments_not_tried(flow, pi_sandbox, outage_after_first_completion):
    paid_payments(flow, STOP_AFTER_UNREACHABLE + 6)
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"^\d+ payment\(s\) failed and \d+ not tried; "):
        call_command(
            "pi_reconcile",
            "--older-than",
            "0",
            "--workers",
            "1",
            "--fail-on-error",
            stdout=stdout,
            stderr=stderr,
        )
    out, err = stdout.getvalue(), stderr.getvalue()
    failed_lines = [line for line in err.splitlines() if ": failed (" in line]
    not_tried = STOP_AFTER_UNREACHABLE + 5 - len(failed_lines)
    assert not_tried >= 3
    assert err.splitlines()[-1] == (
        f"{not_tried} payment(s) not tried: Pi Network or Horizon is unreachable; "
        "the next run retries them."
    )
    assert f"failed {len(failed_lines)}, " in out and f"not_tried {not_tried}" in out


def test_payments_that_keep_failing_while_pi_answers_do_not_stop_the_run(flow, pi_sandbox):
    """Pi failing the same payments on every run must not keep the others waiting: the run
    checks that Pi answers before it stops."""
    due = paid_payments(flow, STOP_AFTER_UNREACHABLE + 5)
    pi_sandbox.add_fault("complete", status=503, count=None)
    out, _err = run("--json", "--workers", "1")
    counts = json.loads(out)["counts"]
    assert "not_tried" not in counts
    assert counts["failed"] == len(due)
    assert len(pi_sandbox.calls("complete")) == len(due)


def test_a_streak_of_unreachable_payments_shorter_than_the_limit_does_not_stop_the_run(
    flow, pi_sandbox
):
    due = paid_payments(flow, STOP_AFTER_UNREACHABLE + 5)
    pi_sandbox.add_fault("complete", status=503, count=STOP_AFTER_UNREACHABLE - 1)
    out, _err = run("--json", "--workers", "1")
    counts = json.loads(out)["counts"]
    assert "not_tried" not in counts
    assert counts["failed"] == STOP_AFTER_UNREACHABLE - 1
    assert counts["complete"] == len(due) - counts["failed"]


def test_refusals_by_pi_do_not_stop_the_run(flow, pi_sandbox):
    due = paid_payments(flow, STOP_AFTER_UNREACHABLE + 5)
    pi_sandbox.add_fault("complete", status=400, body={"error": "unknown_error"}, count=1000)
    out, _err = run("--json", "--workers", "1")
    counts = json.loads(out)["counts"]
    assert "not_tried" not in counts
    assert counts["failed"] == len(due)
    assert len(pi_sandbox.calls("complete")) >= len(due)


def test_exit_codes(flow, pi_sandbox):
    flow.paid()
    pi_sandbox.add_fault("complete", status=400, body={"error": "unknown_error"}, count=5)
    run()
    with pytest.raises(CommandError) as caught:
        run("--fail-on-error")
    assert caught.value.returncode == 1
    with pytest.raises(SystemExit) as exited:
        from_command_line("--older-than", "0")
    assert exited.value.code == 1
    pi_sandbox.clear_faults()
    from_command_line("--older-than", "0")
    assert status_of_all() == {S.COMPLETED}


def from_command_line(*argv: str) -> None:
    """Run the command as ``manage.py pi_reconcile ...`` would (checks skipped: sandbox URL)."""
    Command(stdout=io.StringIO(), stderr=io.StringIO()).run_from_argv(
        ["manage.py", "pi_reconcile", "--skip-checks", *argv]
    )


def status_of_all() -> set[str]:
    return set(Payment.objects.values_list("status", flat=True))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--older-than", "-1"),
        ("--older-than", "99999999999"),
        ("--older-than", "10000000000000000000"),
        ("--workers", "0"),
        ("--workers", "-3"),
        ("--workers", "33"),  # more than the pooled connections to Pi
    ],
)
def test_bad_option_values_are_usage_errors(flow, pi_sandbox, option, value):
    identifier, _txid = flow.paid()
    with pytest.raises(CommandError, match=f"^{option} must be"):
        call_command("pi_reconcile", option, value, stdout=io.StringIO(), stderr=io.StringIO())
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        Command(stdout=io.StringIO(), stderr=err).run_from_argv(
            ["manage.py", "pi_reconcile", "--skip-checks", option, value]
        )
    assert exited.value.code == 2  # a usage error, told apart from a failed payment (1)
    assert status(identifier) == S.APPROVED


def test_pi_list_unreadable_is_an_error(app, pi_sandbox):
    pi_sandbox.add_fault("incomplete_server_payments", status=503, count=10)
    with pytest.raises(CommandError, match="incomplete payments"):
        run()


def list_an_unreadable_payment_beside(pi_sandbox, identifier: str) -> None:
    """Pi's next incomplete list holds ``identifier`` and ``ODD1``, whose flag is no boolean."""
    readable = get_client().get_payment(identifier).raw
    odd = {**readable, "identifier": "ODD1", "status": {**readable["status"], "cancelled": "no"}}
    listed = {"incomplete_server_payments": [odd, readable]}
    pi_sandbox.add_fault("incomplete_server_payments", status=200, body=listed, count=1)


def test_one_unreadable_payment_in_pi_list_leaves_the_others_reconciled(flow, pi_sandbox, caplog):
    identifier, _txid = flow.paid()
    list_an_unreadable_payment_beside(pi_sandbox, identifier)
    run()
    assert status(identifier) == S.COMPLETED
    assert "unreadable payment (ODD1): left out" in caplog.text


def test_pi_listing_an_unreadable_payment_still_answers_the_check(flow, pi_sandbox):
    identifier, _txid = flow.paid()
    list_an_unreadable_payment_beside(pi_sandbox, identifier)
    assert pi_answers()


def test_verbosity_zero_prints_nothing(flow, pi_sandbox):
    flow.paid()
    out, err = run("-v", "0")
    assert out == ""
    assert err == ""


@pytest.mark.postgres
def test_two_overlapping_runs_act_once_per_payment(transactional_db, flow, pi_sandbox, signal_log):
    if connection.vendor != "postgresql":
        pytest.skip("row-lock races need PostgreSQL: run with DATABASE_URL (make test-postgres)")
    paid = [flow.for_new_shopper(f"p{n}").paid()[0] for n in range(12)]
    unpaid = [flow.for_new_shopper(f"u{n}").approved() for n in range(12)]
    events_before = {
        i: PaymentEvent.objects.filter(payment__identifier=i).count() for i in paid + unpaid
    }
    pi_sandbox.set_config(latency_ms=5)
    pi_sandbox.clear_calls()
    reports = []
    barrier = threading.Barrier(2)

    def one_run() -> None:
        barrier.wait()
        try:
            reports.append(reconcile(older_than=timedelta(0), cancel_unpaid=True, workers=4))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    acting = {"complete", "cancel", "mark_completed", "mark_cancelled", "sync"}
    for identifier in paid + unpaid:
        actions = [o.action for r in reports for o in r.outcomes if o.identifier == identifier]
        assert sum(a in acting for a in actions) == 1, (identifier, actions)
        new_events = PaymentEvent.objects.filter(payment__identifier=identifier).count()
        assert new_events - events_before[identifier] == 1
    assert signal_log.count("completed") == len(paid)
    assert signal_log.count("cancelled") == len(unpaid)
    assert len([c for c in pi_sandbox.calls("complete") if c["status"] == 200]) == len(paid)
    assert len([c for c in pi_sandbox.calls("cancel") if c["status"] == 200]) == len(unpaid)


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_goes_to_a_terminal_when_many_payments_are_due(flow, pi_sandbox):
    for n in range(PROGRESS_THRESHOLD):
        flow.for_new_shopper(f"busy{n}").approved()
    terminal, quiet = Terminal(), io.StringIO()
    call_command("pi_reconcile", "--older-than", "0", stdout=io.StringIO(), stderr=terminal)
    assert f"reconciled {PROGRESS_THRESHOLD} payments" in terminal.getvalue()
    call_command("pi_reconcile", "--older-than", "0", stdout=io.StringIO(), stderr=quiet)
    assert "reconciled" not in quiet.getvalue()


def test_no_progress_for_a_handful_of_payments(flow, pi_sandbox):
    flow.approved()
    terminal = Terminal()
    call_command("pi_reconcile", "--older-than", "0", stdout=io.StringIO(), stderr=terminal)
    assert "reconciled" not in terminal.getvalue()


@pytest.mark.skipif(
    connection.features.has_select_for_update_skip_locked,
    reason="the run lock serializes runs only on databases without SKIP LOCKED (SQLite)",
)
def test_a_run_while_another_holds_the_lock_does_nothing(flow, pi_sandbox):
    identifier, _txid = flow.paid()

    with run_lock():
        out, err = run()

    assert err.strip() == "pi_reconcile: another pi_reconcile run is in progress; nothing done."
    assert out == "" and Payment.objects.get(identifier=identifier).status == "approved"
    out, _err = run()
    assert Payment.objects.get(identifier=identifier).status == "completed"


@pytest.mark.skipif(
    connection.features.has_select_for_update_skip_locked,
    reason="the run lock serializes runs only on databases without SKIP LOCKED (SQLite)",
)
def test_a_json_run_while_another_holds_the_lock_prints_an_empty_report(flow, pi_sandbox):
    # --json promises one JSON document on stdout: a script reading it gets one here too.
    flow.paid()

    with run_lock():
        out, err = run("--json")

    assert err.strip() == "pi_reconcile: another pi_reconcile run is in progress; nothing done."
    assert json.loads(out) == {
        "dry_run": False,
        "counts": {"total": 0, "failed": 0},
        "payments": [],
    }


@pytest.mark.skipif(
    connection.features.has_select_for_update_skip_locked,
    reason="only databases without SKIP LOCKED (SQLite) serialize the workers",
)
def test_by_default_one_worker_on_sqlite_so_none_waits_out_the_lock(flow, pi_sandbox, monkeypatch):
    """SQLite's one write lock makes workers take turns across their Pi calls: more workers
    settle nothing sooner, and the one that waits longer than the database's timeout fails
    (SQLite hands the lock to whoever asks first when it frees, not to the longest waiter)."""
    paid = [flow.for_new_shopper(f"shopper{n}").paid()[0] for n in range(6)]
    pi_sandbox.set_config(latency_ms=150)
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {"timeout": 0.3})
    out, err = run("--json")
    assert err == ""
    assert json.loads(out)["counts"] == {"total": 6, "failed": 0, "complete": 6}
    assert status_of_all() == {S.COMPLETED}
    assert len(paid) == 6


def test_a_database_that_cannot_be_read_is_a_command_error(flow, pi_sandbox):
    """A database that is down gives one line (and exit status 1) for cron, not a traceback."""
    flow.paid()
    err = io.StringIO()
    with database_down():
        with pytest.raises(CommandError, match=r"^The database could not be read: "):
            run()
        with pytest.raises(SystemExit) as exited:
            Command(stdout=io.StringIO(), stderr=err).run_from_argv(
                ["manage.py", "pi_reconcile", "--skip-checks"]
            )
    assert exited.value.code == 1
    assert err.getvalue().startswith("CommandError: The database could not be read: ")
    assert "Traceback" not in err.getvalue()


# ``manage.py pi_reconcile ARGV`` in a child process on the test's database and sandbox.
CHILD = """
import sys
from tests.child_process import setup_child
setup_child()
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "pi_reconcile", *sys.argv[1:]])
"""


def database_url() -> str:
    """The URL of the test database this test writes (and commits) its payments to."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@" if db["USER"] else ""
    return f"postgres://{user}{db['HOST']}:{db['PORT']}/{quote(db['NAME'])}"


# reconcile() called from a script, where Ctrl-C raises KeyboardInterrupt wherever it lands.
LIBRARY_CHILD = """
import sys
from datetime import timedelta
from tests.child_process import setup_child
setup_child()
from django_pi_payments.reconcile import reconcile
try:
    reconcile(older_than=timedelta(0), workers=4)
except KeyboardInterrupt:
    sys.exit(130)
"""


def start(
    sandbox, *argv: str, log: bool = False, script: str = CHILD, ignore_sigint: bool = False
) -> subprocess.Popen[str]:
    """The child (``script``); with ``log``, its stderr goes to its stdout, as in
    ``>> file 2>&1``; with ``ignore_sigint``, it starts with SIGINT ignored, as a background job
    of a script does."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url(),
        "PI_SANDBOX_URL": sandbox.url,
        "PI_SANDBOX_API_KEY": sandbox.api_key,
    }
    env.pop("PYTHONUNBUFFERED", None)  # as cron starts it: stdout to a file is block-buffered
    return subprocess.Popen(
        [sys.executable, "-c", script, *argv],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if log else subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if ignore_sigint
        else None,
    )


def completed_at_pi(sandbox, identifiers: list[str]) -> list[str]:
    return [i for i in identifiers if sandbox.payment(i)["status"]["developer_completed"]]


@pytest.mark.parametrize(
    ("signum", "returncode", "stopped"),
    [
        (signal.SIGINT, 130, "Interrupted"),
        # systemd stopping the unit, or timeout(1) around the cron line
        (signal.SIGTERM, 143, "Terminated (SIGTERM)"),
    ],
)
def test_ctrl_c_or_sigterm_reports_what_was_done_and_exits_as_a_shell_says(
    flow, pi_sandbox, signum, returncode, stopped
):
    """Ctrl-C or SIGTERM stops a run cleanly: what was done is printed, the rest waits for the
    next run, and the exit status is a shell's for the signal, not a traceback."""
    paid = [flow.for_new_shopper(f"shopper{n}").paid()[0] for n in range(6)]
    pi_sandbox.set_config(latency_ms=300)
    child = start(pi_sandbox, "--skip-checks", "--older-than", "0", "--workers", "1")
    deadline = time.monotonic() + 60
    while len(completed_at_pi(pi_sandbox, paid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signum)
    out, err = child.communicate(timeout=60)

    assert child.returncode == returncode, out + err
    assert "Traceback" not in err
    assert err.strip().endswith(
        f"CommandError: {stopped}: the payments in progress were finished first; the others are "
        "left as they were for the next run."
    )
    done = completed_at_pi(pi_sandbox, paid)
    assert 2 <= len(done) < len(paid)
    listed = [line.split(":")[0] for line in out.splitlines() if ": complete (" in line]
    assert listed and set(listed) == set(done)  # the one finished after Ctrl-C too
    assert f"total {len(listed)}, failed 0, complete {len(listed)}" in out
    stored = dict(Payment.objects.values_list("identifier", "status"))
    assert {stored[i] for i in done} == {PaymentStatus.COMPLETED}
    assert {stored[i] for i in paid if i not in done} == {PaymentStatus.APPROVED}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_more_signals_while_the_running_payments_finish_change_nothing(flow, pi_sandbox, signum):
    """A second Ctrl-C, or timeout(1) sending SIGTERM to the command and to its group: the
    payments running still finish and are reported, and no database connection a worker still
    uses is closed under it (that crashed SQLite runs, SIGSEGV)."""
    paid = [flow.for_new_shopper(f"shopper{n}").paid()[0] for n in range(8)]
    pi_sandbox.set_config(latency_ms=400)
    child = start(pi_sandbox, "--skip-checks", "--older-than", "0", "--workers", "4")
    deadline = time.monotonic() + 60
    while not completed_at_pi(pi_sandbox, paid) and time.monotonic() < deadline:
        time.sleep(0.02)
    for _ in range(3):
        child.send_signal(signum)
        time.sleep(0.15)
    out, err = child.communicate(timeout=60)

    assert child.returncode == 128 + signum, out + err
    done = completed_at_pi(pi_sandbox, paid)
    listed = [line.split(":")[0] for line in out.splitlines() if ": complete (" in line]
    assert set(listed) == set(done)
    stored = dict(Payment.objects.values_list("identifier", "status"))
    assert {stored[i] for i in done} == {PaymentStatus.COMPLETED}


def test_reconcile_called_from_a_script_survives_repeated_ctrl_c(flow, pi_sandbox):
    """Each KeyboardInterrupt lands where it lands: the payments running still finish before
    the workers' connections are closed, and none is left completed at Pi only."""
    paid = [flow.for_new_shopper(f"shopper{n}").paid()[0] for n in range(8)]
    pi_sandbox.set_config(latency_ms=400)
    child = start(pi_sandbox, script=LIBRARY_CHILD)
    deadline = time.monotonic() + 60
    while not completed_at_pi(pi_sandbox, paid) and time.monotonic() < deadline:
        time.sleep(0.02)
    for _ in range(3):
        child.send_signal(signal.SIGINT)
        time.sleep(0.15)
    out, err = child.communicate(timeout=60)

    assert child.returncode == 130, out + err
    done = completed_at_pi(pi_sandbox, paid)
    stored = dict(Payment.objects.values_list("identifier", "status"))
    assert done and {stored[i] for i in done} == {PaymentStatus.COMPLETED}


def stubbed_run(
    monkeypatch, stop: threading.Event, count: int, **outcome: Any
) -> tuple[list[bool], list[int]]:
    """Make :func:`reconcile` run ``count`` stub payments of 10 ms each with ``outcome``;
    return the lists it fills: for each payment started, whether ``stop`` was set by then, and
    one entry each time Pi is asked whether it answers."""
    started: list[bool] = []
    asked: list[int] = []
    items = [(f"p{n}", None) for n in range(count)]
    monkeypatch.setattr(reconcile_module, "candidates", lambda options: iter(items))

    def process(identifier: str, dto: Any, options: Any) -> Outcome:
        started.append(stop.is_set())
        time.sleep(0.01)
        return Outcome(identifier, **outcome)

    monkeypatch.setattr(reconcile_module, "process", process)
    monkeypatch.setattr(reconcile_module, "pi_answers", lambda: asked.append(1) or False)
    return started, asked


def stop_after(stop: threading.Event, reported: int) -> Callable[[Outcome], None]:
    """A ``progress`` callback that sets ``stop`` once ``reported`` payments are reported."""
    seen: list[Outcome] = []

    def progress(outcome: Outcome) -> None:
        seen.append(outcome)
        if len(seen) == reported:
            stop.set()

    return progress


def test_no_payment_starts_once_the_run_is_stopped(monkeypatch, db):
    """The payments waiting for a worker are not started after the stop (set from elsewhere, as
    a signal sets it, while the run waits for its workers): only those running finish."""
    stop = threading.Event()
    started, _asked = stubbed_run(monkeypatch, stop, 40, action="complete")
    signal_soon = threading.Timer(0.035, stop.set)

    signal_soon.start()
    report = reconcile_module.reconcile(workers=2, stop=stop)
    signal_soon.join()

    assert started.count(True) == 0
    assert len(report.outcomes) == len(started) < 40
    assert all(outcome.action == "complete" for outcome in report.outcomes)  # none not_tried


def test_a_stopped_run_does_not_ask_whether_pi_answers(monkeypatch, db):
    stop = threading.Event()
    _started, asked = stubbed_run(
        monkeypatch, stop, 40, action="failed", error="pi_unavailable", unreachable=True
    )

    reconcile_module.reconcile(
        workers=1, progress=stop_after(stop, STOP_AFTER_UNREACHABLE), stop=stop
    )

    assert asked == []


def test_a_signal_while_pis_list_is_read_stops_the_run_at_once(flow, pi_sandbox):
    flow.paid()
    pi_sandbox.add_fault("incomplete_server_payments", hang=True, hang_seconds=5, count=None)
    child = start(pi_sandbox, "--skip-checks", "--older-than", "0")
    deadline = time.monotonic() + 30
    while not pi_sandbox.calls("incomplete_server_payments") and time.monotonic() < deadline:
        time.sleep(0.01)
    signalled = time.monotonic()
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)

    assert child.returncode == 143, out + err
    assert time.monotonic() - signalled < 3  # not after the read's timeouts and retries
    assert err.strip().endswith("left as they were for the next run.")


def test_a_ctrl_c_the_parent_ignores_stays_ignored(flow, pi_sandbox):
    """A background job of a script starts with SIGINT ignored: a Ctrl-C in the script's
    terminal is not the job's to act on."""
    paid = [flow.for_new_shopper(f"shopper{n}").paid()[0] for n in range(4)]
    pi_sandbox.set_config(latency_ms=200)
    child = start(
        pi_sandbox, "--skip-checks", "--older-than", "0", "--workers", "1", ignore_sigint=True
    )
    deadline = time.monotonic() + 60
    while not completed_at_pi(pi_sandbox, paid) and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)

    assert child.returncode == 0, out + err
    assert completed_at_pi(pi_sandbox, paid) == paid


def test_in_a_log_file_the_summary_comes_before_the_error_line(flow, pi_sandbox):
    """Cron's ``>> pi_reconcile.log 2>&1``: stdout is block-buffered in a file, stderr is not.
    The run's lines keep their order there, and the summary precedes the final error line that
    points "above" to it."""
    failing, _txid = flow.paid()
    completing, _txid = flow.for_new_shopper().paid()
    pi_sandbox.add_fault("complete", status=400, body={"error": "unknown_error"}, count=1)
    child = start(pi_sandbox, "--skip-checks", "--older-than", "0", "--workers", "1", log=True)
    out, _err = child.communicate(timeout=60)

    assert child.returncode == 1, out
    lines = out.splitlines()
    assert lines[-2:] == [
        "total 2, failed 1, complete 1",
        "CommandError: 1 payment(s) failed; see the output above.",
    ]
    assert {line.split(":")[0] for line in lines[:-2]} == {failing, completing}
