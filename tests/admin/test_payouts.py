"""The payment actions on app-to-user payments (payouts and refunds): refused clearly when wrong."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from django_pi_payments import services
from django_pi_payments.models import Payment
from django_pi_payments.reconcile import reconcile
from django_pi_payments.services import a2u as a2u_service
from django_pi_payments.services import a2u_resume
from django_pi_payments.testing import SandboxHandle
from tests.a2u.conftest import Crash, a2u, ledger_for, wallet

from ..database_lock import lock_held_elsewhere
from .conftest import PaymentMaker, confirm_refund, in_changelist_order, messages_of
from .test_actions import changelist, run_action, statuses

__all__ = ["a2u", "wallet"]


@pytest.fixture
def paid_refund(a2u: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> Payment:
    """A refund whose transaction is on the chain (and stored here), not completed at Pi yet."""
    original = PaymentMaker(a2u).completed()

    def crash(*args: Any, **kwargs: Any) -> Payment:
        raise Crash("before the completion")

    with monkeypatch.context() as patched:
        patched.setattr(a2u_resume, "_complete", crash)
        with pytest.raises(Crash):
            services.refund(original)
    refund = original.refunds.get()
    assert refund.txid and refund.status == "approved"
    return refund


def test_complete_leaves_a_payout_to_pi_reconcile(
    admin_client: Client, a2u: SandboxHandle, paid_refund: Payment
) -> None:
    a2u.clear_calls()

    response = run_action(admin_client, "complete_verified", [paid_refund])

    assert messages_of(response) == [
        (
            "info",
            f"Payment {paid_refund.identifier}: skipped: an app-to-user payment is completed by "
            "pi_reconcile, not by this action.",
        )
    ]
    assert a2u.calls() == []
    assert statuses(paid_refund) == ["approved"]


def test_a_refund_is_never_refunded(admin_client: Client, a2u: SandboxHandle) -> None:
    original = PaymentMaker(a2u).completed()
    refund = services.refund(original, "1")
    a2u.clear_calls()

    data = {"action": "refund_to_payer", "post": "yes", "_selected_action": [refund.pk]}
    response = admin_client.post(changelist(), data, follow=True)

    assert messages_of(response) == [
        (
            "info",
            f"Payment {refund.identifier}: skipped: an app-to-user payment is never refunded.",
        )
    ]
    assert a2u.calls() == [] and not refund.refunds.exists()


def test_refunds_stop_calling_pi_once_it_is_unreachable(
    admin_client: Client, a2u: SandboxHandle
) -> None:
    make = PaymentMaker(a2u)
    selected = [make.completed(), make.completed()]
    a2u.add_fault("create_payment", status=503, count=None)
    a2u.clear_calls()

    response = confirm_refund(admin_client, selected)

    first, second = in_changelist_order(selected)
    assert messages_of(response) == [
        ("error", f"Payment {first.identifier}: Pi Network is unreachable; try again."),
        ("error", f"Payment {second.identifier}: not tried: Pi Network or Horizon is unreachable."),
    ]
    assert len(a2u.calls("create_payment")) == 1
    assert not Payment.objects.filter(refund_of__in=selected).exists()


def test_refunds_stop_once_horizon_is_unreachable(admin_client: Client, a2u: SandboxHandle) -> None:
    make = PaymentMaker(a2u)
    selected = [make.completed(), make.completed()]
    a2u.add_fault("horizon_account", status=503, count=None)
    a2u.clear_calls()

    response = confirm_refund(admin_client, selected)

    first, second = in_changelist_order(selected)
    (tried, not_tried) = messages_of(response)
    refund = Payment.objects.get(refund_of=first)
    assert tried == (
        "warning",
        f"Payment {first.identifier}: refund {refund.identifier} created but not completed yet "
        "(horizon_unavailable): Horizon answered 503. pi_reconcile will finish it.",
    )
    assert not_tried == (
        "error",
        f"Payment {second.identifier}: not tried: Pi Network or Horizon is unreachable.",
    )
    assert len(a2u.calls("create_payment")) == 1
    assert a2u.calls("horizon_submit") == []


def test_refunds_stop_once_a_payout_in_flight_cannot_be_finished(
    admin_client: Client, a2u: SandboxHandle
) -> None:
    """Each refund first finishes the app-to-user payment in flight: when that fails, the next
    refund would fail the same way (and, with Pi hanging, wait for every timeout again)."""
    make = PaymentMaker(a2u)
    earlier = make.completed()
    selected = [make.completed(), make.completed(), make.completed()]
    a2u.add_fault("complete", status=401, body={"error": "invalid_key", "error_message": "No."})
    with pytest.raises(services.A2UError):
        services.refund(earlier)
    stuck = earlier.refunds.get()
    a2u.add_fault(
        "complete", status=401, body={"error": "invalid_key", "error_message": "No."}, count=None
    )
    a2u.clear_calls()

    response = confirm_refund(admin_client, selected)

    first, *others = in_changelist_order(selected)
    assert messages_of(response) == [
        (
            "warning",
            f"Payment {first.identifier}: not refunded, nothing was sent (ongoing_payment_found): "
            f"The app-to-user payment {stuck.identifier} in flight could not be finished (No); "
            "pi_reconcile will finish it. Try again later.",
        ),
        *(
            (
                "error",
                f"Payment {payment.identifier}: not tried: an app-to-user payment in flight must "
                "be finished first (see above).",
            )
            for payment in others
        ),
    ]
    assert len(a2u.calls("complete")) == 1
    assert a2u.calls("create_payment") == []
    assert not Payment.objects.filter(refund_of__in=selected).exists()


def test_a_refund_created_before_the_database_got_busy_is_named(
    admin_client: Client, a2u: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refund is created and committed, then its payment waits too long for its lock: the
    message names it and says pi_reconcile finishes it, which pays it once."""
    make = PaymentMaker(a2u)
    selected = [make.completed(), make.completed()]
    first, second = in_changelist_order(selected)
    resume = a2u_service.resume_a2u

    def busy_resume(identifier: str, **kwargs: Any) -> Payment:
        with lock_held_elsewhere(identifier):
            return resume(identifier, **kwargs)

    monkeypatch.setattr(a2u_service, "resume_a2u", busy_resume)

    response = confirm_refund(admin_client, selected)

    refund = Payment.objects.get(refund_of=first)
    assert messages_of(response) == [
        (
            "warning",
            f"Payment {first.identifier}: refund {refund.identifier} created but not completed "
            "yet (database_busy): the database is busy (another process holds its lock). "
            "pi_reconcile will finish it.",
        ),
        ("error", f"Payment {second.identifier}: not tried: the database is busy."),
    ]
    assert not Payment.objects.filter(refund_of=second).exists()

    monkeypatch.undo()
    reconcile()

    refund.refresh_from_db()
    assert refund.status == "completed"
    (paid,) = ledger_for(a2u, refund.identifier)
    assert paid["hash"] == refund.txid
