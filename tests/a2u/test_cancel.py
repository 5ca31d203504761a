"""Cancelling an app-to-user payment never lets it pay twice.

Pi knows no transaction of an A2U payment until it is completed (pi-nodejs#25), so it accepts a
cancel even when the payment's transaction is on the chain. A cancel therefore looks on the chain
first, and waits until no transaction signed for the payment can land any more.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from django_pi_payments import services
from django_pi_payments.a2u import WalletHorizon
from django_pi_payments.client import get_client
from django_pi_payments.models import Payment, PaymentStatus
from django_pi_payments.services import a2u as a2u_service
from django_pi_payments.testing import SandboxHandle
from tests.admin.conftest import PaymentMaker, messages_of

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


@pytest.fixture
def paid(a2u: SandboxHandle) -> Payment:
    """A completed user-to-app payment of 3.14 Pi."""
    return PaymentMaker(a2u).completed()


def crashed_refund(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, paid: Payment
) -> Payment:
    crash_after(monkeypatch, owner, name)
    with pytest.raises(Crash):
        services.refund(paid)
    return paid.refunds.get()


def cancel_calls(sandbox: SandboxHandle, payment: Payment) -> list[dict[str, Any]]:
    return [call for call in sandbox.calls("cancel") if payment.identifier in call["path"]]


def test_cancelling_a_refund_whose_transaction_landed_completes_it_instead(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    refund = crashed_refund(monkeypatch, WalletHorizon, "submit", paid)  # on the chain, no txid
    (landed,) = ledger_for(a2u, refund.identifier)
    a2u.clear_calls()

    result = services.cancel(refund.identifier)

    assert (result.status, result.txid) == (S.COMPLETED, landed["hash"])
    assert kinds(refund.identifier)[-2:] == ["a2u_tx_found", "completed"]
    assert cancel_calls(a2u, refund) == []
    assert signal_log.count("completed", refund.identifier) == 1
    assert signal_log.count("cancelled", refund.identifier) == 0
    with pytest.raises(services.RefundRefused) as failure:
        services.refund(paid)
    assert failure.value.code == "fully_refunded"
    assert len(ledger_for(a2u, refund.identifier)) == 1
    assert len(a2u.ledger()) == 1 + 1  # the payment, then one refund


def test_cancelling_before_the_deadline_is_refused(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    refund = crashed_refund(monkeypatch, a2u_service, "_create", paid)  # nothing signed yet
    a2u.clear_calls()

    with pytest.raises(services.A2UError) as failure:
        services.cancel(refund.identifier)

    assert failure.value.code == "a2u_cancel_too_early"
    assert "could still land until" in failure.value.detail
    assert cancel_calls(a2u, refund) == []
    assert Payment.objects.get(pk=refund.pk).status == S.APPROVED
    assert services.refundable_amount(paid) == 0

    backdate(refund, PAST_THE_DEADLINE)
    cancelled = services.cancel(refund.identifier)

    assert (cancelled.status, cancelled.txid) == (S.CANCELLED, None)
    assert len(cancel_calls(a2u, refund)) == 1
    assert signal_log.count("cancelled", refund.identifier) == 1
    assert services.refundable_amount(paid) == paid.amount
    assert a2u.ledger() == ledger_for(a2u, paid.identifier)


def test_a_payout_a_reset_sandbox_lost_is_cancelled_here_and_stops_blocking_payouts(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    refund = crashed_refund(monkeypatch, a2u_service, "_create", paid)  # nothing signed yet
    backdate(refund, PAST_THE_DEADLINE)
    # The sandbox lost it (a reset): each call about it is 404 payment_not_found.
    not_found = {"error": "payment_not_found", "error_message": "Payment not found"}
    a2u.add_fault("get_payment", status=404, body=not_found, count=None)
    a2u.add_fault("cancel", status=404, body=not_found, count=None)
    payee = paid.user_uid
    with pytest.raises(services.A2UError) as blocked:
        services.send_payment(payee, "1", "a payout")
    assert blocked.value.code == "ongoing_payment_found"

    cancelled = services.cancel(refund.identifier)

    assert (cancelled.status, cancelled.txid) == (S.CANCELLED, None)
    assert signal_log.count("cancelled", refund.identifier) == 1
    assert kinds(refund)[-1] == "cancelled"
    assert refund.events.get(kind="cancelled").detail == {
        "reason": "requested",
        "pi_error": "payment_not_found",
    }
    a2u.clear_faults()
    # Faults, not a reset: unlike a sandbox that lost it, this one still holds the payout.
    get_client().cancel_payment(refund.identifier)
    payout = services.send_payment(payee, "1", "a payout")
    assert payout.status == S.COMPLETED
    assert ledger_for(a2u, refund.identifier) == []
    assert len(ledger_for(a2u, payout.identifier)) == 1


def test_a_cancel_at_pi_of_a_paid_payment_keeps_its_transaction(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = crashed_refund(monkeypatch, WalletHorizon, "submit", paid)
    (landed,) = ledger_for(a2u, refund.identifier)
    get_client().cancel_payment(refund.identifier)  # Pi accepts: it knows no transaction yet

    settled = services.resume_a2u(refund.identifier, source="reconcile")

    assert (settled.status, settled.txid) == (S.CANCELLED, landed["hash"])
    assert services.refundable_amount(paid) == 0
    with pytest.raises(services.RefundRefused):
        services.refund(paid)
    assert len(a2u.ledger()) == 1 + 1


def test_a_cancel_at_pi_is_adopted_only_once_no_transaction_can_land(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = crashed_refund(monkeypatch, a2u_service, "_create", paid)
    get_client().cancel_payment(refund.identifier)
    a2u.clear_calls()

    # A transaction signed for it may still land: it waits, still counting against the payment.
    for synced in (
        services.sync(refund.identifier),
        services.resume_a2u(refund.identifier, source="reconcile"),
    ):
        assert synced.status == S.APPROVED
    assert services.refundable_amount(paid) == 0
    assert a2u.calls("horizon_submit") == []

    backdate(refund, PAST_THE_DEADLINE)
    assert services.sync(refund.identifier).status == S.CANCELLED
    assert services.refundable_amount(paid) == paid.amount


def test_a_payout_waiting_for_its_deadline_is_named_to_the_next_one(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = crashed_refund(monkeypatch, a2u_service, "_create", paid)
    get_client().cancel_payment(refund.identifier)  # a transaction signed for it may still land

    with pytest.raises(services.A2UBusy) as busy:
        services.send_payment(paid.user_uid, "1", "a payout")

    assert busy.value.detail == (
        f"The app-to-user payment {refund.identifier} is still in flight; pi_reconcile will "
        "finish it. Try again later."
    )
    assert a2u.calls("horizon_submit") == []


def test_a_cancelled_refund_without_transaction_counts_until_its_deadline(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = crashed_refund(monkeypatch, a2u_service, "_create", paid)
    # Cancelled here as an earlier version adopted Pi's cancel, without waiting for the deadline.
    Payment.objects.filter(pk=refund.pk).update(status=S.CANCELLED)

    assert services.refundable_amount(paid) == 0  # a transaction signed for it may still land

    backdate(refund, PAST_THE_DEADLINE)
    assert services.refundable_amount(paid) == paid.amount


def test_the_admin_page_says_an_a2u_cancel_waits_for_its_deadline(
    admin_client: Client, a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = crashed_refund(monkeypatch, a2u_service, "_create", paid)
    changelist = reverse("admin:pi_payments_payment_changelist")
    selection = {"action": "cancel_on_pi", "_selected_action": [refund.pk]}
    a2u.clear_calls()

    page = admin_client.post(changelist, selection)

    (plan,) = page.context["plans"]
    assert plan.outcome == "refused_too_early"
    assert "Will be refused: a transaction signed for this app-to-user payment" in (
        page.content.decode()
    )
    response = admin_client.post(changelist, {**selection, "post": "yes"}, follow=True)
    ((level, text),) = messages_of(response)
    assert level == "error"
    assert text.startswith(f"Payment {refund.identifier}: A transaction signed for")
    assert text.endswith("(a2u_cancel_too_early)")
    assert a2u.calls("cancel") == []
    assert Payment.objects.get(pk=refund.pk).status == S.APPROVED

    backdate(refund, PAST_THE_DEADLINE)
    (plan,) = admin_client.post(changelist, selection).context["plans"]
    assert plan.outcome == "cancel"
    assert "unless its transaction is found on the chain" in plan.explanation


def test_the_admin_sync_of_a_payout_cancelled_at_pi_keeps_its_transaction(
    admin_client: Client, a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = crashed_refund(monkeypatch, WalletHorizon, "submit", paid)
    (landed,) = ledger_for(a2u, refund.identifier)
    get_client().cancel_payment(refund.identifier)
    selection = {"action": "sync_from_pi", "_selected_action": [refund.pk]}

    response = admin_client.post(reverse("admin:pi_payments_payment_changelist"), selection)

    assert response.status_code == 302
    stored = Payment.objects.get(pk=refund.pk)
    assert (stored.status, stored.txid) == (S.CANCELLED, landed["hash"])
    assert kinds(refund.identifier)[-2:] == ["a2u_tx_found", "synced"]
    assert services.refundable_amount(paid) == 0


@pytest.mark.parametrize("route", ["pi_reconcile", "cancel", "error", "incomplete"])
def test_every_sync_of_a_payout_cancelled_at_pi_keeps_its_transaction(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    refund = crashed_refund(monkeypatch, WalletHorizon, "submit", paid)
    (landed,) = ledger_for(a2u, refund.identifier)
    get_client().cancel_payment(refund.identifier)

    if route == "pi_reconcile":
        call_command("pi_reconcile", "--older-than", "0", stdout=io.StringIO())
    else:
        body = {"paymentId": refund.identifier, "error": "closed"}
        answer = Client().post(f"/pi_payment/{route}", body, content_type="application/json")
        assert answer.status_code == 200, answer.content

    stored = Payment.objects.get(pk=refund.pk)
    assert (stored.status, stored.txid) == (S.CANCELLED, landed["hash"])
    assert "a2u_tx_found" in kinds(refund.identifier)
    assert services.refundable_amount(paid) == 0


def test_pi_reconcile_reports_a_cancel_at_pi_waiting_for_its_deadline(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = crashed_refund(monkeypatch, a2u_service, "_create", paid)
    get_client().cancel_payment(refund.identifier)

    def outcome() -> dict[str, Any]:
        out = io.StringIO()
        call_command("pi_reconcile", "--older-than", "0", "--json", stdout=out)
        (found,) = [
            o
            for o in json.loads(out.getvalue())["payments"]
            if o["identifier"] == refund.identifier
        ]
        return found

    waiting = outcome()
    assert (waiting["action"], waiting["after"], waiting["error"]) == ("wait", S.APPROVED, None)
    backdate(refund, PAST_THE_DEADLINE)
    cancelled = outcome()
    assert (cancelled["action"], cancelled["after"]) == ("mark_cancelled", S.CANCELLED)
