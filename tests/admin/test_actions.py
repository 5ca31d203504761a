"""The payment actions: cancel (with its confirmation page), sync and complete.

Each test runs the real flow against the Pi sandbox and counts the business signals, to prove an
action never sends one twice.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from django_pi_payments import services
from django_pi_payments.models import Payment, PaymentEvent

from ..database_lock import lock_held_elsewhere
from .conftest import PaymentMaker, SignalLog, in_changelist_order, messages_of

pytestmark = pytest.mark.django_db(transaction=True)

TX_PRESENT_MESSAGE = (
    "You cannot cancel this payment, because an associated blockchain transaction has been "
    "recorded."
)


def changelist() -> str:
    """The payment changelist, where the actions are posted."""
    return reverse("admin:pi_payments_payment_changelist")


def run_action(client: Client, action: str, payments: list[Payment]) -> Any:
    """POST an action for ``payments`` to the changelist, as the changelist's action form does."""
    data = {"action": action, "index": "0", "_selected_action": [p.pk for p in payments]}
    return client.post(changelist(), data, follow=True)


def confirm_cancel(client: Client, payments: list[Payment]) -> Any:
    """POST the cancel confirmation page's form."""
    data = {"action": "cancel_on_pi", "post": "yes", "_selected_action": [p.pk for p in payments]}
    return client.post(changelist(), data, follow=True)


def redirected(response: Any) -> bool:
    """Whether the action ended with a redirect to the changelist."""
    return [url for url, _status in response.redirect_chain] == [changelist()]


def calls_for(sandbox: Any, route: str, payment: Payment) -> list[dict[str, Any]]:
    """The sandbox's logged calls of ``route`` about ``payment``."""
    return [call for call in sandbox.calls(route) if payment.identifier in call["path"]]


def statuses(*payments: Payment) -> list[str]:
    """The payments' statuses as stored now."""
    return [Payment.objects.get(pk=payment.pk).status for payment in payments]


def by_payment(shown: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The messages keyed by the payment identifier they start with."""
    return {text.split(":", 1)[0].removeprefix("Payment "): (level, text) for level, text in shown}


def history(payment: Payment) -> list[tuple[str, str]]:
    """The payment's admin history: (username, message) of each entry."""
    entries = LogEntry.objects.filter(
        content_type__model="payment", object_id=str(payment.pk)
    ).order_by("action_time")
    return [(entry.user.get_username(), entry.change_message) for entry in entries]


def action_names(response: Any) -> set[str]:
    """The actions the changelist offers."""
    form = response.context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices} - {""}


# --- Cancel on Pi Network ---------------------------------------------------------------------


def test_first_post_renders_the_confirmation_and_changes_nothing(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any
) -> None:
    approved = make.approved()
    verified = make.verified()
    completed = make.completed()
    selected = [approved, verified, completed]
    events = PaymentEvent.objects.count()
    pi_sandbox.clear_calls()

    response = run_action(admin_client, "cancel_on_pi", selected)

    assert response.status_code == 200
    assert response.redirect_chain == []
    assert "admin/pi_payments/cancel_confirmation.html" in [t.name for t in response.templates]
    plans = {plan.payment.identifier: plan.outcome for plan in response.context["plans"]}
    assert plans == {
        approved.identifier: "cancel",
        verified.identifier: "likely_refused",
        completed.identifier: "skip",
    }
    content = response.content.decode()
    assert "Will be cancelled at Pi Network." in content
    assert "Pi will probably refuse (payment_tx_present)" in content
    assert "Will be skipped: it is already completed." in content
    assert 'name="post" value="yes"' in content
    assert 'name="action" value="cancel_on_pi"' in content
    for payment in selected:
        assert f'name="_selected_action" value="{payment.pk}"' in content
    assert pi_sandbox.calls() == []
    assert PaymentEvent.objects.count() == events
    assert statuses(approved, verified, completed) == [
        "approved",
        "transaction_verified",
        "completed",
    ]


def test_confirmed_cancel_reports_one_message_per_payment(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any, signal_log: SignalLog
) -> None:
    approved = make.approved()
    paid = make.paid()  # the transaction is at Pi, not known here yet
    verified = make.verified()
    completed = make.completed()
    user_cancelled = make.user_cancelled()
    assert signal_log.count("payment_completed", completed) == 1
    assert signal_log.count("payment_cancelled", user_cancelled) == 1
    pi_sandbox.clear_calls()

    response = confirm_cancel(admin_client, [approved, paid, verified, completed, user_cancelled])

    assert redirected(response)
    shown = by_payment(messages_of(response))
    assert len(shown) == 5
    assert shown[approved.identifier] == ("success", f"Payment {approved.identifier}: cancelled.")
    for payment in (paid, verified):
        level, text = shown[payment.identifier]
        assert level == "warning"
        assert text.startswith(f"Payment {payment.identifier}: refused by Pi: payment_tx_present (")
        assert TX_PRESENT_MESSAGE in text  # Pi's own words
    assert shown[completed.identifier] == (
        "info",
        f"Payment {completed.identifier}: skipped: already completed.",
    )
    assert shown[user_cancelled.identifier] == (
        "info",
        f"Payment {user_cancelled.identifier}: skipped: already cancelled by the user.",
    )
    assert statuses(approved, paid, verified, completed, user_cancelled) == [
        "cancelled",
        "transaction_verified",  # Pi's truth, adopted after the refusal
        "transaction_verified",
        "completed",
        "user_cancelled",
    ]
    assert pi_sandbox.payment(approved.identifier)["status"]["cancelled"] is True
    for payment in (approved, paid, verified):
        assert len(calls_for(pi_sandbox, "cancel", payment)) == 1
    for payment in (completed, user_cancelled):
        assert calls_for(pi_sandbox, "cancel", payment) == []
    assert signal_log.count("payment_cancelled", approved) == 1
    assert signal_log.count("payment_cancelled", user_cancelled) == 1
    assert signal_log.count("payment_completed", completed) == 1
    assert signal_log.count("payment_cancelled", completed) == 0
    assert signal_log.count("payment_completed", paid) == 0
    event = PaymentEvent.objects.get(payment=approved, kind="cancelled")
    assert (event.source, event.from_status, event.to_status) == ("admin", "approved", "cancelled")
    assert history(approved) == [("admin", "Cancel on Pi Network: cancelled.")]
    refused = shown[paid.identifier][1].removeprefix(f"Payment {paid.identifier}: ")
    assert history(paid) == [("admin", f"Cancel on Pi Network: {refused}")]
    assert history(completed) == []

    again = confirm_cancel(admin_client, [approved])

    assert messages_of(again) == [
        ("info", f"Payment {approved.identifier}: skipped: already cancelled.")
    ]
    assert signal_log.count("payment_cancelled", approved) == 1
    assert len(calls_for(pi_sandbox, "cancel", approved)) == 1


def test_cancel_of_a_payment_a_reset_sandbox_lost_says_it_was_cancelled_here(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any, signal_log: SignalLog
) -> None:
    forgotten, known = make.approved(), make.approved()
    pi_sandbox.reset(config=False)  # the sandbox no longer knows either payment

    response = confirm_cancel(admin_client, [forgotten])

    assert messages_of(response) == [
        (
            "success",
            f"Payment {forgotten.identifier}: cancelled here: the sandbox does not know it.",
        )
    ]
    assert statuses(forgotten, known) == ["cancelled", "approved"]
    assert signal_log.count("payment_cancelled", forgotten) == 1


def test_the_audit_rows_of_an_action_name_the_staff_user_and_only_theirs(
    admin_client: Client, admin_user: Any, make: PaymentMaker, pi_sandbox: Any
) -> None:
    cancelled, unreachable = make.approved(), make.approved()
    confirm_cancel(admin_client, [cancelled])
    pi_sandbox.add_fault("cancel", status=503, count=None)
    confirm_cancel(admin_client, [unreachable])
    pi_sandbox.clear_faults()

    staff = admin_user.get_username()
    assert PaymentEvent.objects.get(payment=cancelled, kind="cancelled").detail["actor"] == staff
    assert [e.detail.get("actor") for e in PaymentEvent.objects.filter(kind="pi_error")] == [staff]
    # Outside the action (a callback, pi_reconcile), no one is named.
    services.sync(unreachable.identifier)
    assert all(
        "actor" not in event.detail
        for event in PaymentEvent.objects.filter(payment=unreachable, source="api")
    )


def test_cancel_when_pi_is_unreachable(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any, signal_log: SignalLog
) -> None:
    payment = make.approved()
    pi_sandbox.add_fault("cancel", status=503, count=None)

    response = confirm_cancel(admin_client, [payment])

    assert messages_of(response) == [
        (
            "error",
            f"Payment {payment.identifier}: "
            "Pi Network is unreachable; the payment was not cancelled. Try again later.",
        )
    ]
    assert statuses(payment) == ["approved"]
    assert PaymentEvent.objects.filter(payment=payment, kind="pi_error", source="admin").exists()
    assert signal_log.count("payment_cancelled", payment) == 0


def test_cancel_needs_the_cancel_permission(
    staff_client: Any, make: PaymentMaker, pi_sandbox: Any, signal_log: SignalLog
) -> None:
    payment = make.approved()
    client = staff_client("view_payment", "change_payment")
    pi_sandbox.clear_calls()
    sent = signal_log.total()

    offered = action_names(client.get(changelist()))
    confirmation = run_action(client, "cancel_on_pi", [payment])
    confirmed = confirm_cancel(client, [payment])

    assert offered == {"sync_from_pi", "complete_verified"}
    for response in (confirmation, confirmed):
        assert redirected(response)
        assert "plans" not in response.context
        assert messages_of(response) == [("warning", "No action selected.")]
    assert calls_for(pi_sandbox, "cancel", payment) == []
    assert statuses(payment) == ["approved"]
    assert signal_log.total() == sent


def test_cancel_with_only_the_cancel_permission(
    staff_client: Any, make: PaymentMaker, signal_log: SignalLog
) -> None:
    payment = make.approved()
    client = staff_client("view_payment", "cancel_payment")

    offered = action_names(client.get(changelist()))
    confirmation = run_action(client, "cancel_on_pi", [payment])
    confirmed = confirm_cancel(client, [payment])

    assert offered == {"cancel_on_pi"}
    assert confirmation.redirect_chain == []
    assert "plans" in confirmation.context
    assert messages_of(confirmed) == [("success", f"Payment {payment.identifier}: cancelled.")]
    assert statuses(payment) == ["cancelled"]
    assert signal_log.count("payment_cancelled", payment) == 1


# --- Sync from Pi Network ---------------------------------------------------------------------


def test_sync_reports_each_payment_and_never_resends_a_signal(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any, signal_log: SignalLog
) -> None:
    unchanged = make.approved()
    paid = make.paid()
    completed = make.completed()
    cancelled_at_pi = make.approved()
    pi_sandbox.user_cancel(cancelled_at_pi.identifier)
    selected = [unchanged, paid, completed, cancelled_at_pi]

    response = run_action(admin_client, "sync_from_pi", selected)

    assert redirected(response)
    assert sorted(messages_of(response)) == sorted(
        [
            ("info", f"Payment {unchanged.identifier}: unchanged (approved)."),
            ("success", f"Payment {paid.identifier}: now transaction verified."),
            ("info", f"Payment {completed.identifier}: unchanged (completed)."),
            ("success", f"Payment {cancelled_at_pi.identifier}: now cancelled by the user."),
        ]
    )
    assert statuses(*selected) == [
        "approved",
        "transaction_verified",
        "completed",
        "user_cancelled",
    ]
    assert signal_log.count("payment_cancelled", cancelled_at_pi) == 1
    assert signal_log.count("payment_completed", completed) == 1
    assert PaymentEvent.objects.get(payment=cancelled_at_pi, to_status="user_cancelled").source == (
        "admin"
    )
    sent = signal_log.total()

    again = run_action(admin_client, "sync_from_pi", selected)

    assert [level for level, _ in messages_of(again)] == ["info"] * 4
    assert signal_log.total() == sent


def test_sync_when_pi_is_unreachable(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any
) -> None:
    payment = make.approved()
    pi_sandbox.add_fault("get_payment", status=503, count=None)

    response = run_action(admin_client, "sync_from_pi", [payment])

    assert messages_of(response) == [
        ("error", f"Payment {payment.identifier}: Pi Network is unreachable; try again.")
    ]
    assert statuses(payment) == ["approved"]


def test_an_action_stops_while_the_database_is_busy(
    admin_client: Client, make: PaymentMaker, signal_log: SignalLog
) -> None:
    """A lock another process holds too long (SQLite's only one, while ``pi_reconcile`` waits on
    a slow Pi) is reported and ends the action, instead of a server error."""
    selected = [make.approved(), make.approved()]
    first, second = in_changelist_order(selected)
    sent = signal_log.total()

    with lock_held_elsewhere(first.identifier):
        response = run_action(admin_client, "sync_from_pi", selected)

    assert redirected(response)
    assert messages_of(response) == [
        (
            "error",
            f"Payment {first.identifier}: not done: the database is busy (another process holds "
            "its lock); try again.",
        ),
        ("error", f"Payment {second.identifier}: not tried: the database is busy."),
    ]
    assert statuses(first, second) == ["approved", "approved"]
    assert signal_log.total() == sent
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("action", ["sync_from_pi", "complete_verified"])
def test_an_action_stops_calling_pi_once_it_is_unreachable(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any, action: str
) -> None:
    """During an outage every call waits for its timeouts and retries: a bulk action over many
    payments would outlast the HTTP request. The payments after the first failure are left for
    a later run, each with its message."""
    selected = [make.paid(), make.approved(), make.paid()]
    pi_sandbox.add_fault("get_payment", status=503, count=None)
    pi_sandbox.clear_calls()

    response = run_action(admin_client, action, selected)

    assert redirected(response)
    first, *others = in_changelist_order(selected)
    assert messages_of(response) == [
        ("error", f"Payment {first.identifier}: Pi Network is unreachable; try again."),
        *(
            (
                "error",
                f"Payment {payment.identifier}: not tried: Pi Network or Horizon is unreachable.",
            )
            for payment in others
        ),
    ]
    for payment in others:
        assert calls_for(pi_sandbox, "get_payment", payment) == []
    assert statuses(*selected) == ["approved"] * 3


def test_a_cancel_whose_answer_was_lost_may_have_been_done(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any
) -> None:
    """Pi cancelled the payment but its answer was lost, and Pi cannot be read again: the
    message must not claim that the payment was not cancelled."""
    payment = make.approved()
    pi_sandbox.add_fault("cancel", after="respond")
    pi_sandbox.add_fault("get_payment", status=503, count=None)

    response = confirm_cancel(admin_client, [payment])

    assert messages_of(response) == [
        (
            "error",
            f"Payment {payment.identifier}: Pi Network did not answer; the payment may have been "
            "cancelled there. Sync it from Pi Network later to see.",
        )
    ]
    assert pi_sandbox.payment(payment.identifier)["status"]["cancelled"] is True
    assert statuses(payment) == ["approved"]  # until a sync reads Pi's answer


def test_cancel_stops_calling_pi_once_it_is_unreachable(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any
) -> None:
    selected = [make.approved(), make.approved()]
    pi_sandbox.add_fault("cancel", status=503, count=None)
    pi_sandbox.clear_calls()

    response = confirm_cancel(admin_client, selected)

    first, second = in_changelist_order(selected)
    assert messages_of(response) == [
        (
            "error",
            f"Payment {first.identifier}: "
            "Pi Network is unreachable; the payment was not cancelled. Try again later.",
        ),
        ("error", f"Payment {second.identifier}: not tried: Pi Network or Horizon is unreachable."),
    ]
    assert calls_for(pi_sandbox, "cancel", second) == []
    assert statuses(*selected) == ["approved", "approved"]


# --- Complete verified payments ---------------------------------------------------------------


def test_complete_only_verified_payments(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any, signal_log: SignalLog
) -> None:
    paid = make.paid()
    unpaid = make.approved()
    completed = make.completed()
    mismatched = make.paid(amount="1", verified=True)  # Pi says verified; Horizon disagrees
    pi_sandbox.clear_calls()

    response = run_action(admin_client, "complete_verified", [paid, unpaid, completed, mismatched])

    assert redirected(response)
    found = by_payment(messages_of(response))
    assert found[paid.identifier] == ("success", f"Payment {paid.identifier}: completed.")
    assert found[unpaid.identifier] == (
        "info",
        f"Payment {unpaid.identifier}: skipped: Pi shows no verified transaction.",
    )
    assert found[completed.identifier] == (
        "info",
        f"Payment {completed.identifier}: skipped: already completed.",
    )
    level, text = found[mismatched.identifier]
    assert level == "warning"
    assert text.startswith(
        f"Payment {mismatched.identifier}: skipped: verification failed: tx_payment_mismatch ("
    )
    assert len(found) == 4
    assert statuses(paid, unpaid, completed, mismatched) == [
        "completed",
        "approved",
        "completed",
        "approved",  # our Horizon check refused to complete: the status stays as it was
    ]
    assert len(calls_for(pi_sandbox, "complete", paid)) == 1
    for payment in (unpaid, completed, mismatched):
        assert calls_for(pi_sandbox, "complete", payment) == []
    assert calls_for(pi_sandbox, "get_payment", completed) == []
    assert signal_log.count("payment_completed", paid) == 1
    assert signal_log.count("payment_completed", completed) == 1
    assert signal_log.count("payment_completed", mismatched) == 0
    event = PaymentEvent.objects.get(payment=paid, kind="completed")
    assert (event.source, event.to_status) == ("admin", "completed")
    assert history(paid) == [("admin", "Complete verified payments: completed.")]
    assert history(completed) == []
    assert PaymentEvent.objects.filter(payment=mismatched, kind="verification_failed").exists()

    again = run_action(admin_client, "complete_verified", [paid])

    assert messages_of(again) == [
        ("info", f"Payment {paid.identifier}: skipped: already completed.")
    ]
    assert signal_log.count("payment_completed", paid) == 1
    assert len(calls_for(pi_sandbox, "complete", paid)) == 1


def test_a_refusal_by_horizon_is_not_reported_as_pi_s(
    admin_client: Client, make: PaymentMaker, pi_sandbox: Any
) -> None:
    paid = make.paid()
    pi_sandbox.add_fault("horizon_transaction", status=401)

    response = run_action(admin_client, "complete_verified", [paid])

    ((level, text),) = messages_of(response)
    assert level == "error"
    assert text.startswith(f"Payment {paid.identifier}: Horizon answered 401 to GET /transactions/")
    assert text.endswith(" (pi_refused)")
    assert "by Pi" not in text
    assert statuses(paid) == ["approved"]


def test_sync_and_complete_need_the_change_permission(
    staff_client: Any, make: PaymentMaker, pi_sandbox: Any, signal_log: SignalLog
) -> None:
    paid = make.paid()
    client = staff_client("view_payment")
    pi_sandbox.clear_calls()
    sent = signal_log.total()

    offered = action_names(client.get(changelist()))
    synced = run_action(client, "sync_from_pi", [paid])
    completed = run_action(client, "complete_verified", [paid])

    assert offered == set()
    for response in (synced, completed):
        # Without any action, Django's changelist ignores the action fields of the POST.
        assert response.status_code == 200
        assert messages_of(response) == []
    assert pi_sandbox.calls() == []
    assert statuses(paid) == ["approved"]
    assert signal_log.total() == sent


def test_staff_with_the_change_permission_syncs_and_completes(
    staff_client: Any, make: PaymentMaker, signal_log: SignalLog
) -> None:
    paid = make.paid()
    client = staff_client("view_payment", "change_payment")

    offered = action_names(client.get(changelist()))
    synced = run_action(client, "sync_from_pi", [paid])
    completed = run_action(client, "complete_verified", [paid])

    assert offered == {"sync_from_pi", "complete_verified"}
    assert messages_of(synced) == [
        ("success", f"Payment {paid.identifier}: now transaction verified.")
    ]
    assert messages_of(completed) == [("success", f"Payment {paid.identifier}: completed.")]
    assert statuses(paid) == ["completed"]
    assert signal_log.count("payment_completed", paid) == 1
