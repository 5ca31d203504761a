"""Selections too large for one run of an action (each payment costs calls to Pi while the page
waits) or for one confirmation form: refused with a message, never a timeout or a 400 page.

Django refuses a POST with more fields than ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` (1000 by default)
with a bare "400 Bad Request". A confirmation page posts one field per payment (a refund's also
an amount and what is left to refund of each payment it offers), so a page whose form would
exceed the limit is not shown.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from django_pi_payments.admin import actions
from django_pi_payments.models import Direction, Payment, PaymentStatus
from django_pi_payments.testing import SandboxHandle
from tests.a2u.conftest import a2u, wallet

from .conftest import PaymentMaker, in_changelist_order, messages_of
from .test_actions import changelist, redirected, run_action, statuses

__all__ = ["a2u", "wallet"]

pytestmark = pytest.mark.django_db(transaction=True)


class FormFields(HTMLParser):
    """The (name, value) pairs of the named inputs of each form of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[list[tuple[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self.forms.append([])
        elif tag == "input" and named.get("name") and self.forms:
            self.forms[-1].append((str(named["name"]), named.get("value") or ""))


def submit_confirmation(client: Client, page: Any) -> Any:
    """POST the confirmation page's form as a browser does, URL-encoded (``follow=True``)."""
    parser = FormFields()
    parser.feed(page.content.decode())
    (fields,) = [form for form in parser.forms if ("post", "yes") in form]
    return client.post(
        changelist(),
        urlencode(fields),
        content_type="application/x-www-form-urlencoded",
        follow=True,
    )


def too_many(count: int, fields: int, limit: int) -> tuple[str, str]:
    return (
        "error",
        f"Nothing was done: {count} payments are too many to confirm at once (the confirmation "
        f"form would send {fields} fields, more than DATA_UPLOAD_MAX_NUMBER_FIELDS = {limit}). "
        "Select fewer payments, for example by filtering the list.",
    )


def cancelled_payments(count: int) -> None:
    Payment.objects.bulk_create(
        Payment(
            identifier=f"cancelled-{n}",
            user_uid=f"uid-{n}",
            direction=Direction.USER_TO_APP,
            amount=1,
            network="Pi Testnet",
            status=PaymentStatus.CANCELLED,
        )
        for n in range(count)
    )


def select_all(action: str) -> dict[str, Any]:
    """ "Select all", then the action, as the changelist's form posts them."""
    page = Payment.objects.all()[:100]  # the changelist's first page, whose boxes are ticked
    return {
        "action": action,
        "index": "0",
        "select_across": "1",
        "_selected_action": [payment.pk for payment in page],
    }


def over_the_run_limit(count: int, limit: int) -> tuple[str, str]:
    return (
        "error",
        f"Nothing was done: {count} payments are too many for one run of this action, which "
        "calls Pi Network for each of them while the page waits. Select at most "
        f"{limit}, for example by filtering the list; pi_reconcile settles any number of "
        "payments.",
    )


@pytest.mark.parametrize(
    "action", ["cancel_on_pi", "sync_from_pi", "complete_verified", "refund_to_payer"]
)
def test_selecting_all_of_many_payments_is_refused_before_reading_them(
    admin_client: Client, a2u: SandboxHandle, action: str
) -> None:
    """Each payment costs calls to Pi within the request: "Select all 1,001 payments" would
    outlast any server timeout."""
    cancelled_payments(1001)
    a2u.clear_calls()

    with CaptureQueriesContext(connection) as queries:
        posted = admin_client.post(changelist(), select_all(action))

    assert posted.status_code == 302
    assert messages_of(admin_client.get(posted.url)) == [over_the_run_limit(1001, 50)]
    assert a2u.calls() == []
    payment_reads = [q["sql"] for q in queries if '"pi_payments_payment"' in q["sql"]]
    # The changelist's page (LIMIT) and counts: no read of every selected payment.
    assert all("LIMIT" in sql or "COUNT" in sql for sql in payment_reads)


def test_an_action_runs_on_as_many_payments_as_its_limit(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actions, "MAX_PAYMENTS_PER_ACTION", 3)
    cancelled_payments(4)
    three = list(Payment.objects.order_by("pk")[:3])
    data = {"action": "complete_verified", "_selected_action": [p.pk for p in three]}

    response = admin_client.post(changelist(), data, follow=True)
    assert [level for level, _text in messages_of(response)] == ["info"] * 3  # skipped: final

    response = admin_client.post(changelist(), select_all("complete_verified"), follow=True)
    assert messages_of(response) == [over_the_run_limit(4, 3)]


def test_cancel_shows_the_largest_selection_that_fits_and_refuses_one_more(
    admin_client: Client, make: PaymentMaker, pi_sandbox: SandboxHandle, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5  # two payments, the CSRF token, action, post
    selected = [make.approved(), make.approved(), make.approved()]
    pi_sandbox.clear_calls()

    refused = run_action(admin_client, "cancel_on_pi", selected)

    assert redirected(refused)
    assert messages_of(refused) == [too_many(3, 6, 5)]
    assert pi_sandbox.calls() == []
    assert statuses(*selected) == ["approved"] * 3

    fitting = in_changelist_order(selected[:2])
    page = run_action(admin_client, "cancel_on_pi", fitting)
    assert page.status_code == 200 and page.redirect_chain == []
    confirmed = submit_confirmation(admin_client, page)

    assert confirmed.status_code == 200
    assert redirected(confirmed)
    assert messages_of(confirmed) == [
        ("success", f"Payment {payment.identifier}: cancelled.") for payment in fitting
    ]
    assert statuses(*selected) == ["cancelled", "cancelled", "approved"]


def test_refund_counts_the_amount_fields_of_the_payments_it_offers(
    admin_client: Client, a2u: SandboxHandle, settings: Any
) -> None:
    make = PaymentMaker(a2u)
    completed, approved = make.completed(), make.approved()
    selected = in_changelist_order([completed, approved])
    # Two payments, an amount and what is left of the completed one, CSRF token, action, post.
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 6
    a2u.clear_calls()

    refused = run_action(admin_client, "refund_to_payer", selected)

    assert redirected(refused)
    assert messages_of(refused) == [too_many(2, 7, 6)]
    assert a2u.calls() == []

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 7
    page = run_action(admin_client, "refund_to_payer", selected)
    assert page.status_code == 200 and page.redirect_chain == []
    confirmed = submit_confirmation(admin_client, page)

    assert confirmed.status_code == 200
    assert redirected(confirmed)
    levels = {text.split(":", 1)[0]: level for level, text in messages_of(confirmed)}
    assert levels == {
        f"Payment {completed.identifier}": "success",
        f"Payment {approved.identifier}": "info",
    }
    assert completed.refunds.get().status == PaymentStatus.COMPLETED


def test_refund_refuses_a_selection_too_large_before_reading_what_is_left(
    admin_client: Client, a2u: SandboxHandle, settings: Any
) -> None:
    make = PaymentMaker(a2u)
    selected = in_changelist_order([make.completed(), make.completed(), make.completed()])
    # Three payments, CSRF token, action, post: six fields before any amount.
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5

    with CaptureQueriesContext(connection) as queries:
        refused = run_action(admin_client, "refund_to_payer", selected)

    assert redirected(refused)
    (message,) = messages_of(refused)
    assert message == (
        "error",
        "Nothing was done: 3 payments are too many to confirm at once (the confirmation form "
        "would send at least 6 fields, more than DATA_UPLOAD_MAX_NUMBER_FIELDS = 5). Select "
        "fewer payments, for example by filtering the list.",
    )
    assert not any("SUM" in query["sql"] for query in queries.captured_queries)
