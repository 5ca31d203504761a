"""A crash at any step of a payout is resumed by ``pi_reconcile``, with one transaction at most.

A crash is a :class:`~.conftest.Crash` (a ``BaseException``, as when the process dies) raised
right after the real step ran: the step's effect at Pi or on the ledger is real, and whatever was
not yet committed here is rolled back.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_pi_payments import services
from django_pi_payments.a2u import WalletHorizon
from django_pi_payments.client import PiClient
from django_pi_payments.models import Payment, PaymentEvent, PaymentStatus
from django_pi_payments.services import a2u as a2u_service
from django_pi_payments.services import a2u_resume
from django_pi_payments.testing import SandboxHandle

from .conftest import (
    PAST_THE_DEADLINE,
    Crash,
    SignalLog,
    backdate,
    crash_after,
    kinds,
    ledger_for,
)

S = PaymentStatus


def reconcile(*args: str) -> str:
    out = io.StringIO()
    call_command("pi_reconcile", "--older-than", "0", "-v", "2", *args, stdout=out, stderr=out)
    return out.getvalue()


def crashed_send(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, uid: str) -> Payment:
    crash_after(monkeypatch, owner, name)
    with pytest.raises(Crash):
        services.send_payment(uid, "2.5", "payout", {"batch": 1})
    return Payment.objects.get()


def assert_paid_once(sandbox: SandboxHandle, payment: Payment, signal_log: SignalLog) -> None:
    payment.refresh_from_db()
    assert payment.status == S.COMPLETED
    (tx,) = ledger_for(sandbox, payment.identifier)
    assert tx["hash"] == payment.txid
    assert len(sandbox.ledger()) == 1
    assert sandbox.payment(payment.identifier)["status"]["developer_completed"] is True
    assert signal_log.received == [("completed", payment.identifier)]


def test_crash_after_create_is_submitted_and_completed(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    payment = crashed_send(monkeypatch, a2u_service, "_create", pioneer)
    assert (payment.status, payment.txid) == (S.APPROVED, None)
    assert a2u.ledger() == []

    out = reconcile()

    assert f"{payment.identifier}: resume_a2u (approved -> completed)" in out
    assert_paid_once(a2u, payment, signal_log)
    assert kinds(payment.identifier) == ["a2u_created", "a2u_submitted", "completed"]
    assert PaymentEvent.objects.filter(kind="a2u_submitted", source="reconcile").count() == 1
    reconcile()
    assert_paid_once(a2u, payment, signal_log)


def test_crash_after_submit_is_found_on_the_chain_not_paid_again(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    payment = crashed_send(monkeypatch, WalletHorizon, "submit", pioneer)
    assert (payment.status, payment.txid) == (S.APPROVED, None)  # the txid was never stored
    assert len(ledger_for(a2u, payment.identifier)) == 1

    reconcile()

    assert_paid_once(a2u, payment, signal_log)
    assert kinds(payment.identifier) == ["a2u_created", "a2u_tx_found", "completed"]


@pytest.mark.parametrize("odd", [None, "ab\x00", "ab\ud800", "not a hash"])
def test_a_transaction_horizon_lists_without_a_hash_is_not_paid_again(
    a2u: SandboxHandle,
    pioneer: str,
    monkeypatch: pytest.MonkeyPatch,
    signal_log: SignalLog,
    odd: str | None,
) -> None:
    payment = crashed_send(monkeypatch, WalletHorizon, "submit", pioneer)
    (tx,) = ledger_for(a2u, payment.identifier)
    record = {
        "hash": odd,
        "memo_type": "text",
        "memo": payment.identifier,
        "successful": True,
        "source_account": tx["source_account"],
        "created_at": timezone.now().isoformat(),
        "paging_token": "1",
    }
    listed = {"_embedded": {"records": [record]}}
    a2u.add_fault("horizon_account_transactions", status=200, body=listed, count=None)
    a2u.clear_calls()

    out = reconcile()

    assert f"{payment.identifier}: failed" in out
    payment.refresh_from_db()
    assert (payment.status, payment.txid) == (S.APPROVED, None)
    assert len(a2u.ledger()) == 1 and a2u.calls("horizon_submit") == []
    a2u.clear_faults()
    reconcile()
    assert_paid_once(a2u, payment, signal_log)


def test_crash_after_complete_at_pi_is_marked_completed(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    payment = crashed_send(monkeypatch, PiClient, "complete_payment", pioneer)
    assert payment.status == S.APPROVED and payment.txid is not None
    assert a2u.payment(payment.identifier)["status"]["developer_completed"] is True
    assert signal_log.received == []
    a2u.clear_calls()

    out = reconcile()

    assert "mark_completed" in out
    assert_paid_once(a2u, payment, signal_log)
    assert a2u.calls("horizon_submit") == [] and a2u.calls("complete") == []


def test_crash_after_the_tx_is_stored_completes_with_it(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    payment = crashed_send(monkeypatch, a2u_resume, "_pay", pioneer)
    assert payment.txid is not None
    a2u.clear_calls()

    reconcile()

    assert_paid_once(a2u, payment, signal_log)
    assert a2u.calls("horizon_submit") == []
    assert a2u.calls("horizon_account_transactions") == []


def test_an_unpaid_payment_older_than_the_resume_timeout_is_cancelled(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    payment = crashed_send(monkeypatch, a2u_service, "_create", pioneer)
    backdate(payment, PAST_THE_DEADLINE)

    out = reconcile()

    payment.refresh_from_db()
    assert payment.status == S.CANCELLED
    assert f"{payment.identifier}: resume_a2u (approved -> cancelled)" in out
    assert a2u.payment(payment.identifier)["status"]["cancelled"] is True
    assert a2u.ledger() == []
    event = PaymentEvent.objects.get(payment=payment, kind="cancelled")
    assert event.detail == {"reason": "resume_timeout"}
    assert signal_log.received == [("cancelled", payment.identifier)]


def test_a_transaction_found_on_the_chain_wins_over_the_timeout(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    payment = crashed_send(monkeypatch, WalletHorizon, "submit", pioneer)
    backdate(payment, 3600)

    reconcile()

    assert_paid_once(a2u, payment, signal_log)


def test_around_the_deadline_nothing_is_signed_nor_cancelled(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    payment = crashed_send(monkeypatch, a2u_service, "_create", pioneer)
    backdate(payment, 600)  # at the deadline: a transaction could not live long enough

    reconcile()

    payment.refresh_from_db()
    assert (payment.status, payment.txid) == (S.APPROVED, None)
    assert a2u.ledger() == [] and a2u.calls("cancel") == []
    backdate(payment, PAST_THE_DEADLINE)
    reconcile()
    payment.refresh_from_db()
    assert payment.status == S.CANCELLED


def test_the_resume_timeout_setting_is_read_at_use(
    a2u: SandboxHandle,
    pioneer: str,
    monkeypatch: pytest.MonkeyPatch,
    signal_log: SignalLog,
    settings: Any,
) -> None:
    payment = crashed_send(monkeypatch, a2u_service, "_create", pioneer)
    backdate(payment, 1000)
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "A2U_RESUME_TIMEOUT": 3600}

    reconcile()

    assert_paid_once(a2u, payment, signal_log)


def test_dry_run_changes_nothing(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = crashed_send(monkeypatch, a2u_service, "_create", pioneer)
    a2u.clear_calls()

    out = reconcile("--dry-run")

    assert "would_resume_a2u" in out
    assert [call["route"] for call in a2u.calls()] == ["incomplete_server_payments"]
    payment.refresh_from_db()
    assert payment.status == S.APPROVED


def test_a_failed_resume_is_reported_and_retried(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    payment = crashed_send(monkeypatch, a2u_service, "_create", pioneer)
    a2u.add_fault("horizon_submit", status=504, count=1)  # Horizon timed out; nothing landed

    out = reconcile()

    assert "failed" in out and "horizon_unavailable" in out
    assert kinds(payment.identifier)[-1] == "a2u_failed"
    reconcile()
    assert_paid_once(a2u, payment, signal_log)


def test_a_payment_unknown_here_is_adopted_and_paid(
    a2u: SandboxHandle, pioneer: str, signal_log: SignalLog
) -> None:
    from decimal import Decimal

    from django_pi_payments.client import get_client

    foreign = get_client().create_payment(pioneer, Decimal("3"), "made elsewhere", {})

    reconcile()

    payment = Payment.objects.get(identifier=foreign.identifier)
    assert kinds(payment.identifier) == ["a2u_adopted", "a2u_submitted", "completed"]
    assert_paid_once(a2u, payment, signal_log)
