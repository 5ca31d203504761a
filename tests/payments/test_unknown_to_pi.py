"""A payment a sandbox lost (it was reset): cancelling it settles it here.

Only against a sandbox (Pi does not lose payments: there, ``payment_not_found`` means the API key
or base URL is another app's), only when it answers ``payment_not_found`` to the cancel and to a
read, and only when no transaction paying it is stored or on the chain.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from django_pi_payments import services
from django_pi_payments.conf import PiSettings
from django_pi_payments.exceptions import IllegalTransition, PaymentError
from django_pi_payments.models import Payment, PaymentStatus

from .conftest import events

S = PaymentStatus
NOT_FOUND = {"error": "payment_not_found", "error_message": "Payment not found"}


def forget(sandbox, *routes: str) -> None:
    """Make Pi answer 404 once to each of ``routes``."""
    for route in routes:
        sandbox.add_fault(route, status=404, body=NOT_FOUND)


def test_cancelling_a_payment_pi_does_not_know_cancels_it_here(flow, pi_sandbox, signal_log):
    identifier = flow.approved()
    assert Payment.objects.get(identifier=identifier).from_address
    pi_sandbox.reset(config=False)

    cancelled = services.cancel(identifier)

    assert cancelled.status == S.CANCELLED
    (event,) = events(identifier, "cancelled")
    assert (event.from_status, event.to_status) == (S.APPROVED, S.CANCELLED)
    assert event.detail == {"reason": "requested", "pi_error": "payment_not_found"}
    assert signal_log.count("cancelled", identifier) == 1
    with pytest.raises(IllegalTransition):
        services.cancel(identifier)
    assert signal_log.count("cancelled", identifier) == 1


def test_one_whose_payer_paid_on_the_chain_is_left_as_it_is(flow, pi_sandbox, signal_log):
    identifier, txid = flow.paid()  # the transaction is at Pi and on the chain, not here yet
    forget(pi_sandbox, "cancel", "get_payment")

    with pytest.raises(PaymentError) as refused:
        services.cancel(identifier)

    assert refused.value.code == "payment_not_found"
    assert txid in refused.value.detail
    assert Payment.objects.get(identifier=identifier).status == S.APPROVED
    assert [event.detail["code"] for event in events(identifier, "pi_error")] == [
        "payment_not_found"
    ]
    assert signal_log.count("cancelled", identifier) == 0


def test_a_404_to_the_cancel_alone_does_not_make_a_payment_unknown(flow, pi_sandbox, signal_log):
    identifier = flow.approved()
    forget(pi_sandbox, "cancel")  # Pi still answers the read: it knows the payment

    with pytest.raises(PaymentError):
        services.cancel(identifier)

    assert Payment.objects.get(identifier=identifier).status == S.APPROVED
    assert signal_log.count("cancelled", identifier) == 0


def test_one_with_a_transaction_here_is_left_as_it_is(flow, pi_sandbox, signal_log):
    identifier, _txid = flow.paid()
    services.sync(identifier)
    assert Payment.objects.get(identifier=identifier).status == S.TRANSACTION_VERIFIED
    pi_sandbox.reset(config=False)

    with pytest.raises(PaymentError) as refused:
        services.cancel(identifier)

    assert refused.value.code == "payment_not_found"
    assert Payment.objects.get(identifier=identifier).status == S.TRANSACTION_VERIFIED
    assert signal_log.count("cancelled", identifier) == 0


def test_horizon_unreachable_leaves_it_as_it_is(flow, pi_sandbox, signal_log):
    identifier = flow.approved()
    forget(pi_sandbox, "cancel", "get_payment")
    pi_sandbox.add_fault("horizon_account_transactions", status=503, count=None)

    with pytest.raises(PaymentError) as failed:
        services.cancel(identifier)

    assert failed.value.code == "pi_unavailable"
    assert Payment.objects.get(identifier=identifier).status == S.APPROVED
    assert signal_log.count("cancelled", identifier) == 0


def test_pi_reconcile_says_what_settles_a_payment_pi_does_not_know(flow, pi_sandbox):
    identifier = flow.approved()
    pi_sandbox.reset(config=False)

    (entry,) = reconcile_json()["payments"]
    assert (entry["identifier"], entry["action"]) == (identifier, "failed")
    assert entry["error"].startswith("payment_not_found: ")
    assert (
        "the sandbox was reset? The admin's Cancel on Pi Network cancels it here" in entry["error"]
    )
    assert "Pi does not lose payments" not in entry["error"]


def test_pi_reconcile_gives_no_such_hint_for_a_payment_with_a_transaction(flow, pi_sandbox):
    identifier, _txid = flow.paid()
    services.sync(identifier)
    pi_sandbox.reset(config=False)

    (entry,) = reconcile_json()["payments"]

    assert entry["error"].startswith("payment_not_found: ")
    assert "A payment with a transaction cannot be settled here" in entry["error"]
    assert "cancels it here" not in entry["error"]


def test_pi_reconcile_names_the_network_of_a_payment_of_another_network(flow, pi_sandbox):
    identifier = flow.approved()
    Payment.objects.filter(identifier=identifier).update(network="Pi Network")
    pi_sandbox.reset(config=False)

    (entry,) = reconcile_json()["payments"]

    assert "it is a payment of Pi Network, while NETWORK is Pi Testnet" in entry["error"]


def test_a_404_that_is_not_pis_does_not_make_a_payment_unknown(flow, pi_sandbox, signal_log):
    identifier = flow.approved()
    for route in ("cancel", "get_payment"):  # e.g. a proxy's page, a wrong API_BASE_URL path
        pi_sandbox.add_fault(route, status=404, body="<html>Not Found</html>")

    with pytest.raises(PaymentError):
        services.cancel(identifier)

    assert Payment.objects.get(identifier=identifier).status == S.APPROVED
    assert signal_log.count("cancelled", identifier) == 0


def test_a_404_of_pi_to_the_cancel_alone_does_not_make_a_payment_unknown(flow, pi_sandbox):
    identifier = flow.approved()
    forget(pi_sandbox, "cancel")
    pi_sandbox.add_fault("get_payment", status=404, body="<html>Not Found</html>")

    with pytest.raises(PaymentError):
        services.cancel(identifier)

    assert Payment.objects.get(identifier=identifier).status == S.APPROVED


def test_against_pi_itself_a_payment_it_does_not_know_is_never_cancelled_here(
    flow, pi_sandbox, signal_log, monkeypatch
):
    # Pi does not lose payments: payment_not_found from Pi means PI_API_KEY or API_BASE_URL is
    # another app's, and the payment can still be paid there.
    identifier = flow.approved()
    pi_sandbox.reset(config=False)
    monkeypatch.setattr(PiSettings, "api_is_loopback", property(lambda self: False))

    with pytest.raises(PaymentError) as refused:
        services.cancel(identifier)

    assert refused.value.code == "payment_not_found"
    assert Payment.objects.get(identifier=identifier).status == S.APPROVED
    assert signal_log.count("cancelled", identifier) == 0
    (entry,) = reconcile_json()["payments"]
    assert "check PI_API_KEY and API_BASE_URL: Pi does not lose payments" in entry["error"]
    assert "cancels it here" not in entry["error"]


def reconcile_json() -> dict:
    out = io.StringIO()
    call_command("pi_reconcile", "--older-than", "0", "--json", stdout=out)
    return json.loads(out.getvalue())
