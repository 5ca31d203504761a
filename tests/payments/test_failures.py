"""Unexpected answers and awkward input on the callbacks: a clear status, never a 500."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from django_pi_payments.dto import APP_TO_USER, PaymentDTO
from django_pi_payments.models import Direction, Payment, PaymentStatus
from django_pi_payments.services.core import apply_dto

from ..database_lock import lock_held_elsewhere
from .conftest import events

S = PaymentStatus


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        ({"route": "horizon_transaction", "status": 403}, 502, "pi_refused"),
        ({"route": "horizon_operations", "status": 400}, 502, "pi_refused"),
        ({"route": "horizon_transaction", "status": 429}, 503, "pi_unavailable"),
        # A transaction Pi has verified, not on the app's Horizon yet (a node lagging behind).
        ({"route": "horizon_transaction", "status": 404}, 503, "pi_unavailable"),
        ({"route": "horizon_operations", "status": 404}, 503, "pi_unavailable"),
        (
            {"route": "horizon_transaction", "status": 200, "body": ["not", "an", "object"]},
            502,
            "pi_refused",
        ),
    ],
)
def test_horizon_answering_oddly_leaves_the_payment_to_retry(
    flow, pi_sandbox, fault, status, error
):
    identifier, txid = flow.paid()
    pi_sandbox.add_fault(**fault)
    response = flow.complete(identifier, txid)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert pi_sandbox.calls("complete") == []
    assert Payment.objects.get(identifier=identifier).status == S.APPROVED
    [failure] = events(identifier, "pi_error")
    assert failure.detail["action"] == "verify"
    # Nothing was lost: the next attempt completes it.
    response = flow.complete(identifier, txid)
    assert response.json()["payment"]["status"] == "completed"


def test_operations_without_records_are_horizon_s_failure_not_the_payer_s(flow, pi_sandbox):
    identifier, txid = flow.paid()
    pi_sandbox.add_fault("horizon_operations", status=200, body={"_embedded": ["odd"]})
    response = flow.complete(identifier, txid)
    assert (response.status_code, response.json()["error"]) == (502, "pi_refused")
    assert pi_sandbox.calls("complete") == []
    assert events(identifier, "verification_failed") == []
    # Horizon answers properly again: nothing was held against the payment.
    pi_sandbox.clear_faults()
    assert flow.complete(identifier, txid).json()["payment"]["status"] == "completed"


def test_pi_refusal_is_pi_refused_with_pis_code(flow, pi_sandbox):
    identifier = flow.create()
    pi_sandbox.add_fault(
        "approve", status=400, body={"error": "odd_refusal", "error_message": "Not today."}
    )
    response = flow.approve(identifier)
    assert response.status_code == 502
    assert response.json() == {
        "error": "pi_refused",
        "detail": "Not today.",
        "pi_error": "odd_refusal",
    }


def test_incomplete_accepts_an_upper_case_txid(flow, pi_sandbox, signal_log):
    identifier, txid = flow.paid()
    response = flow.post("incomplete", {"paymentId": identifier, "transactionId": txid.upper()})
    assert response.status_code == 200, response.json()
    assert response.json()["payment"]["status"] == "completed"
    assert response.json()["payment"]["txid"] == txid
    assert signal_log.count("completed", identifier) == 1


@pytest.mark.parametrize("odd", ["\x00", "\ud800"])
def test_characters_a_database_cannot_store_are_stored_replaced(flow, pi_sandbox, odd):
    """NUL (refused by PostgreSQL) and half of a surrogate pair (which JSON escapes but UTF-8
    cannot encode), in the payer's memo and metadata or in the frontend's error text."""
    identifier = flow.create(memo=f"a{odd}book", metadata={f"order{odd}": [f"x{odd}y"]})
    response = flow.approve(identifier)
    assert response.status_code == 200, response.json()
    payment = Payment.objects.get(identifier=identifier)
    assert payment.memo == "a\ufffdbook"
    assert payment.metadata == {"order\ufffd": ["x\ufffdy"]}
    assert payment.raw["memo"] == "a\ufffdbook"
    body = json.dumps({"paymentId": identifier, "error": f"bad{odd}thing"})  # escaped
    response = flow.api.post("/pi_payment/error", body, content_type="application/json")
    assert response.status_code == 200, response.json()
    [reported] = events(identifier, "frontend_error")
    assert reported.detail["error"] == "bad\ufffdthing"


@pytest.mark.parametrize("odd", ["\x00", "\ud800"])
def test_pis_error_message_is_audited_whatever_it_holds(flow, pi_sandbox, odd):
    identifier, txid = flow.paid()
    pi_sandbox.add_fault(
        "complete", status=400, body={"error": "odd_refusal", "error_message": f"No{odd}pe."}
    )
    response = flow.complete(identifier, txid)
    assert (response.status_code, response.json()["error"]) == (502, "pi_refused")
    assert response.json()["detail"] == f"No{odd}pe."
    [failure] = events(identifier, "pi_error")
    assert failure.detail["message"] == "No\ufffdpe."
    assert Payment.objects.get(identifier=identifier).status != S.COMPLETED


@pytest.mark.parametrize("route", ["get_payment", "approve"])
def test_pi_rate_limiting_a_payment_call_is_an_outage(flow, pi_sandbox, route):
    identifier = flow.create()
    pi_sandbox.add_fault(route, status=429, body={"error": "too_many_requests"})
    response = flow.approve(identifier)
    assert (response.status_code, response.json()["error"]) == (503, "pi_unavailable")
    # Nothing was lost: the SDK's next attempt approves it.
    response = flow.approve(identifier)
    assert response.json()["payment"]["status"] == "approved"


def test_an_answer_without_direction_does_not_turn_a_payout_around(app):
    payout = PaymentDTO.from_json(
        {"identifier": "payout1", "amount": "1", "direction": APP_TO_USER, "user_uid": "u1"}
    )
    payment = Payment(identifier="payout1", status=S.APPROVED)
    apply_dto(payment, payout)
    payment.save()
    old_style = PaymentDTO.from_json({"identifier": "payout1", "amount": "1", "user_uid": "u1"})
    apply_dto(payment, old_style)
    payment.save()
    payment.refresh_from_db()
    assert payment.direction == Direction.APP_TO_USER
    assert payment.amount == Decimal(1)


@pytest.mark.parametrize("accept", ["text/html", "application/json", "*/*"])
def test_answers_are_json_whatever_the_accept_header(flow, accept):
    response = flow.post("auth", {"accessToken": flow.shopper.token}, HTTP_ACCEPT=accept)
    assert response["Content-Type"] == "application/json"
    if accept == "text/html":
        assert (response.status_code, response.json()["error"]) == (406, "not_acceptable")
    else:
        assert response.status_code == 200


def test_the_browsable_api_is_not_served(flow):
    response = flow.api.get("/pi_payment/payments?format=api")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("identifier", ["abc.def", "a%00b", "%E2%82%AC", "x" * 65])
def test_a_payment_id_that_cannot_exist_is_a_json_404(flow, identifier):
    response = flow.api.get(
        f"/pi_payment/payments/{identifier}", HTTP_AUTHORIZATION=f"Bearer {flow.shopper.token}"
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_busy_database_is_503_and_nothing_reaches_pi(flow, pi_sandbox, signal_log):
    identifier, txid = flow.paid()
    pi_sandbox.clear_calls()
    with lock_held_elsewhere(identifier):
        response = flow.complete(identifier, txid)
    assert response.status_code == 503
    assert response.json() == {
        "error": "database_busy",
        "detail": "The database is busy; nothing was changed, try again.",
    }
    assert pi_sandbox.calls("complete") == []
    assert Payment.objects.get(identifier=identifier).status == S.APPROVED
    assert signal_log.count("completed") == 0
    # The SDK's retry, once the lock is free, completes it.
    assert flow.complete(identifier, txid).json()["payment"]["status"] == "completed"
    assert signal_log.count("completed") == 1
