"""A crash between Pi and the database: Pi completed the payment, the local commit never came.

A child process sends the ``complete`` callback and dies (``os._exit``) right after Pi accepted
the completion, inside the service's transaction, so the local change is really lost. Then
``pi_reconcile`` heals the payment: completed here too, ``payment_completed`` sent once however
often it runs. PostgreSQL only: the child and the test share the test database.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection

from django_pi_payments.models import Payment, PaymentEvent, PaymentStatus

from ..child_process import run_child

pytestmark = pytest.mark.postgres

CHILD = Path(__file__).with_name("crash_complete.py")


def database_url() -> str:
    """The URL of the test database this process uses."""
    params = connection.settings_dict
    user = quote(params.get("USER") or "")
    password = quote(params.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{params['HOST']}:{params['PORT']}/{params['NAME']}"


def complete_in_a_dying_process(identifier: str, txid: str, sandbox) -> subprocess.CompletedProcess:
    return run_child(CHILD, sandbox, database_url(), identifier, txid)


def reconcile() -> dict:
    out = io.StringIO()
    call_command("pi_reconcile", "--older-than", "0", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_reconcile_heals_a_completion_lost_in_a_crash(postgres, flow, pi_sandbox, signal_log):
    identifier, txid = flow.paid()
    child = complete_in_a_dying_process(identifier, txid, pi_sandbox)

    assert child.returncode == 1, child.stdout + child.stderr
    assert "pi-completed True" in child.stdout
    assert "survived" not in child.stdout
    assert pi_sandbox.payment(identifier)["status"]["developer_completed"] is True
    payment = Payment.objects.get(identifier=identifier)
    assert payment.status == PaymentStatus.APPROVED  # the child's transaction is gone
    assert not PaymentEvent.objects.filter(payment=payment, to_status="completed").exists()
    assert signal_log.count("completed", identifier) == 0

    first = reconcile()
    assert [(p["identifier"], p["action"]) for p in first["payments"]] == [
        (identifier, "mark_completed")
    ]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED
    assert payment.txid == txid
    assert signal_log.count("completed", identifier) == 1

    second = reconcile()
    assert second["counts"]["total"] == 0
    assert signal_log.count("completed", identifier) == 1
    assert PaymentEvent.objects.filter(payment=payment, to_status="completed").count() == 1
    # Pi accepted the child's complete; the runs only read Pi's answer, never complete again.
    assert [c["status"] for c in pi_sandbox.calls("complete")] == [200]
