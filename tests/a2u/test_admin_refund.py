"""The admin action "Refund to the payer": confirmation page, amounts, permission, messages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client
from django.urls import reverse

from django_pi_payments import services
from django_pi_payments.client import get_client
from django_pi_payments.models import Payment, PaymentStatus
from django_pi_payments.testing import SandboxHandle
from tests.admin.conftest import PaymentMaker, confirm_refund, messages_of, staff_client

from .conftest import SignalLog, ledger_for

__all__ = ["staff_client"]

ACTION = "refund_to_payer"
TEMPLATE = "admin/pi_payments/refund_confirmation.html"


@pytest.fixture
def make(a2u: SandboxHandle) -> PaymentMaker:
    return PaymentMaker(a2u)


def changelist() -> str:
    return reverse("admin:pi_payments_payment_changelist")


def post_action(client: Client, payments: list[Payment], **extra: str) -> Any:
    data: dict[str, Any] = {"action": ACTION, "_selected_action": [p.pk for p in payments]}
    return client.post(changelist(), {**data, **extra}, follow=True)


def confirm(client: Client, payments: list[Payment], **amounts: str) -> Any:
    return confirm_refund(client, payments, **amounts)


def field(payment: Payment) -> str:
    return f"refund_amount_{payment.pk}"


def offered(client: Client) -> set[str]:
    form = client.get(changelist()).context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices} - {""}


def test_the_first_post_shows_what_will_happen_and_changes_nothing(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle
) -> None:
    whole, partly, unpaid = make.completed(), make.completed(), make.approved()
    services.refund(partly, "1")
    a2u.clear_calls()

    response = post_action(admin_client, [whole, partly, unpaid])

    assert response.status_code == 200 and response.redirect_chain == []
    assert TEMPLATE in [template.name for template in response.templates]
    plans = {plan.payment.identifier: plan for plan in response.context["plans"]}
    assert {k: (p.can_refund, p.refundable) for k, p in plans.items()} == {
        whole.identifier: (True, Decimal("3.14")),
        partly.identifier: (True, Decimal("2.14")),
        unpaid.identifier: (False, Decimal(0)),
    }
    content = response.content.decode()
    assert f'name="{field(whole)}" value="3.14"' in content
    assert f'name="{field(partly)}" value="2.14"' in content
    assert f'name="{field(unpaid)}"' not in content
    assert "Will be skipped: only completed user-to-app payments are refunded." in content
    assert 'name="post" value="yes"' in content and f'value="{ACTION}"' in content
    assert a2u.calls() == []


def test_confirmed_refunds_report_one_message_per_payment(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle, signal_log: SignalLog
) -> None:
    whole, partly, unpaid = make.completed(), make.completed(), make.approved()
    signal_log.received.clear()

    response = confirm(
        admin_client, [whole, partly, unpaid], **{field(whole): "", field(partly): "0.5"}
    )

    assert [url for url, _ in response.redirect_chain] == [changelist()]
    shown = {
        text.split(":", 1)[0].removeprefix("Payment "): (level, text)
        for level, text in messages_of(response)
    }
    (whole_refund,) = whole.refunds.all()
    (partial_refund,) = partly.refunds.all()
    assert (whole_refund.amount, partial_refund.amount) == (Decimal("3.14"), Decimal("0.5"))
    assert shown[whole.identifier] == (
        "success",
        f"Payment {whole.identifier}: refunded 3.14 Pi with payment {whole_refund.identifier} "
        f"(transaction {whole_refund.txid}).",
    )
    assert shown[partly.identifier][0] == "success"
    assert shown[unpaid.identifier] == (
        "info",
        f"Payment {unpaid.identifier}: "
        "skipped: it is approved, not a completed user-to-app payment.",
    )
    assert signal_log.count("refunded") == 2
    entry = LogEntry.objects.get(object_id=str(whole.pk))
    assert entry.user.get_username() == "admin"
    assert entry.change_message.startswith("Refund to the payer: refunded 3.14 Pi")


def test_an_invalid_amount_shows_the_page_again_and_refunds_nothing(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle
) -> None:
    first, second = make.completed(), make.completed()
    a2u.clear_calls()

    response = confirm(admin_client, [first, second], **{field(first): "1", field(second): "x"})

    assert response.status_code == 200 and TEMPLATE in [t.name for t in response.templates]
    content = response.content.decode()
    assert "The amount must be a positive number with at most 7 decimals." in content
    assert f'name="{field(second)}" value="x"' in content
    assert a2u.calls() == []
    assert not Payment.objects.filter(refund_of__isnull=False).exists()


@pytest.mark.parametrize("amount", ["1e21", "123456789012345678901234567890"])
def test_an_amount_beyond_the_field_is_a_clear_error_not_a_500(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle, amount: str
) -> None:
    payment = make.completed()
    a2u.clear_calls()

    response = confirm(admin_client, [payment], **{field(payment): amount})

    assert response.status_code == 200 and TEMPLATE in [t.name for t in response.templates]
    assert "The amount must be at most 922337203685.4775807 Pi." in response.content.decode()
    assert a2u.calls() == []
    assert not payment.refunds.exists()


def test_too_much_is_refused_with_a_warning(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle
) -> None:
    payment = make.completed()

    response = confirm(admin_client, [payment], **{field(payment): "3.15"})

    assert messages_of(response) == [
        (
            "warning",
            f"Payment {payment.identifier}: "
            "not refunded: 3.15 Pi is more than what is left to refund "
            "(3.14 Pi).",
        )
    ]
    assert not payment.refunds.exists()


def test_a_refund_left_unfinished_says_pi_reconcile_finishes_it(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle
) -> None:
    payment = make.completed()
    a2u.add_fault("horizon_submit", status=504)

    response = confirm(admin_client, [payment])

    (refund,) = payment.refunds.all()
    ((level, text),) = messages_of(response)
    assert level == "warning"
    assert f"refund {refund.identifier} created but not completed yet (horizon_unavailable)" in text
    assert text.endswith("pi_reconcile will finish it.")


def test_the_audit_rows_of_an_admin_refund_name_the_staff_user(
    admin_client: Client, admin_user: Any, make: PaymentMaker, a2u: SandboxHandle
) -> None:
    payment = make.completed()
    made_before = set(payment.events.values_list("pk", flat=True))

    confirm(admin_client, [payment])

    (refund,) = payment.refunds.all()
    assert refund.status == PaymentStatus.COMPLETED
    written = [*payment.events.exclude(pk__in=made_before), *refund.events.all()]
    assert {event.kind for event in written} >= {"refund_created", "a2u_created", "completed"}
    assert {event.detail.get("actor") for event in written} == {admin_user.get_username()}
    assert all("actor" not in event.detail for event in payment.events.filter(pk__in=made_before))


def test_a_refund_cancelled_instead_of_paid_is_not_left_to_pi_reconcile(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle
) -> None:
    payment = make.completed()
    # Pi answers the refund's creation with a payment of another amount: cancelled, never paid.
    answered = get_client().create_payment(payment.user_uid, Decimal(100), "refund", {})
    a2u.add_fault("create_payment", status=200, body=answered.raw)

    response = confirm(admin_client, [payment])

    (refund,) = payment.refunds.all()
    assert refund.status == PaymentStatus.CANCELLED
    ((level, text),) = messages_of(response)
    assert level == "warning"
    assert f"refund {refund.identifier} cancelled instead of paid (not_as_requested)" in text
    assert "pi_reconcile" not in text
    assert ledger_for(a2u, refund.identifier) == []


def test_the_action_needs_the_refund_permission(
    staff_client: Any, make: PaymentMaker, a2u: SandboxHandle
) -> None:
    payment = make.completed()
    operator = staff_client("view_payment", "change_payment", "cancel_payment")
    a2u.clear_calls()

    assert ACTION not in offered(operator)
    for response in (post_action(operator, [payment]), confirm(operator, [payment])):
        assert messages_of(response) == [("warning", "No action selected.")]
    assert a2u.calls() == [] and not payment.refunds.exists()

    refunder = staff_client("view_payment", "refund_payment")
    assert offered(refunder) == {ACTION}
    confirm(refunder, [payment])
    assert payment.refunds.get().status == "completed"


def test_a_payment_the_page_skipped_is_not_refunded_when_it_completes_meanwhile(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle
) -> None:
    pending = make.approved()
    page = post_action(admin_client, [pending])
    (plan,) = page.context["plans"]
    assert not plan.can_refund and f'name="{plan.left_field}"' not in page.content.decode()
    txid = a2u.submit_transaction(pending.identifier)["txid"]
    services.complete(pending.identifier, txid)
    a2u.clear_calls()

    response = post_action(admin_client, [pending], post="yes")

    assert messages_of(response) == [
        (
            "info",
            f"Payment {pending.identifier}: skipped: the confirmation page did not offer to "
            "refund it. Select it again to see what is left to refund.",
        )
    ]
    assert a2u.calls() == [] and not pending.refunds.exists()


def test_a_page_confirmed_twice_refunds_once(
    admin_client: Client, make: PaymentMaker, a2u: SandboxHandle, signal_log: SignalLog
) -> None:
    payment = make.completed()
    page = post_action(admin_client, [payment])
    (plan,) = page.context["plans"]
    form = {plan.left_field: plan.left_value, field(payment): "1"}
    assert plan.left_value == "3.14"
    signal_log.received.clear()

    first = post_action(admin_client, [payment], post="yes", **form)
    second = post_action(admin_client, [payment], post="yes", **form)

    (refund,) = payment.refunds.all()
    assert refund.amount == Decimal("1") and messages_of(first)[0][0] == "success"
    assert messages_of(second) == [
        (
            "warning",
            f"Payment {payment.identifier}: not refunded: What is left to refund has changed "
            "since this refund was decided: 2.14 Pi now, not 3.14 Pi.",
        )
    ]
    assert signal_log.count("refunded") == 1


def test_the_service_refuses_a_refund_when_what_is_left_changed(make: PaymentMaker) -> None:
    payment = make.completed()
    services.refund(payment, "1", expected_left="3.14")

    with pytest.raises(services.RefundRefused) as refused:
        services.refund(payment, "1", expected_left="3.14")

    assert refused.value.code == "refund_changed"
    assert [refund.amount for refund in payment.refunds.all()] == [Decimal("1")]
    assert services.refund(payment, expected_left="2.14").amount == Decimal("2.14")


def test_refunds_work_on_a_site_with_atomic_requests(
    admin_client: Client, make: PaymentMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = make.completed()
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    response = confirm(admin_client, [payment], **{field(payment): ""})

    (refund,) = payment.refunds.all()
    assert refund.status == PaymentStatus.COMPLETED
    [(level, text)] = messages_of(response)
    assert (level, text.split(": ", 1)[1].split(" with ")[0]) == ("success", "refunded 3.14 Pi")
