"""The pi-sdk-js callbacks against the sandbox: approve, complete, cancel, error, incomplete."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework import versioning
from rest_framework.views import APIView

from django_pi_payments import services
from django_pi_payments.auth import verify_access_token
from django_pi_payments.client import get_client
from django_pi_payments.exceptions import MissingScope, PaymentRejected
from django_pi_payments.models import Payment, PaymentStatus
from django_pi_payments.services import payments as payments_service

from .conftest import events

S = PaymentStatus


def reject_expensive(payment, request):
    if payment.amount > 10:
        raise PaymentRejected("Amount does not match the order.", code="amount_mismatch")


def test_approve_with_body_token(flow, pi_sandbox, signal_log):
    identifier = flow.create(amount="3.5")
    response = flow.approve(identifier)
    assert response.status_code == 200
    body = response.json()["payment"]
    assert body["identifier"] == identifier
    assert body["status"] == "approved"
    assert body["amount"] == "3.5000000"
    assert pi_sandbox.payment(identifier)["status"]["developer_approved"] is True
    payment = Payment.objects.get(identifier=identifier)
    assert payment.pi_user is not None
    assert payment.pi_user.uid == flow.shopper.uid
    assert signal_log.count("approved", identifier) == 1


def test_approve_with_bearer_header_and_with_session(flow, api, pi_sandbox):
    first = flow.create()
    response = api.post(
        "/pi_payment/approve/",
        {"paymentId": first},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {flow.shopper.token}",
    )
    assert response.status_code == 200, response.json()
    login = api.post("/pi_payment/auth", {"accessToken": flow.shopper.token}, format="json")
    assert login.status_code == 200
    second = flow.create()
    assert flow.post("approve", {"paymentId": second}).status_code == 200


def test_repeated_callbacks_give_one_transition_event_and_signal(flow, pi_sandbox, signal_log):
    identifier = flow.create()
    for _ in range(5):
        assert flow.approve(identifier).status_code == 200
    txid = pi_sandbox.submit_transaction(identifier)["txid"]
    for _ in range(5):
        response = flow.complete(identifier, txid)
        assert response.status_code == 200
        assert response.json()["payment"]["status"] == "completed"
    assert len(events(identifier, "approved")) == 1
    assert len(events(identifier, "completed")) == 1
    assert len(events(identifier)) == 2
    assert signal_log.count("approved", identifier) == 1
    assert signal_log.count("completed", identifier) == 1
    accepted = [c for c in pi_sandbox.calls("complete") if c["status"] == 200]
    assert len(accepted) == 1


def test_approve_someone_elses_payment_is_403_and_reaches_no_pi_approve(flow, pi_sandbox, api):
    identifier = flow.create()
    _other, other_token = pi_sandbox.login(username="mallory")
    pi_sandbox.clear_calls()
    response = flow.post("approve", {"paymentId": identifier, "accessToken": other_token})
    assert response.status_code == 403
    assert response.json()["error"] == "not_payer"
    assert pi_sandbox.calls("approve") == []
    assert not Payment.objects.filter(identifier=identifier).exists()


def test_approve_without_payments_scope_is_403(flow, pi_sandbox):
    identifier = flow.create()
    pi_user = verify_access_token(flow.shopper.token)
    pi_user.scopes = ["username"]
    pi_user.save()
    pi_sandbox.clear_calls()
    with pytest.raises(MissingScope):
        services.approve(identifier, pi_user)
    assert pi_sandbox.calls("approve") == []
    assert not Payment.objects.filter(identifier=identifier).exists()


def test_approve_unauthenticated_is_401(flow):
    identifier = flow.create()
    response = flow.post("approve", {"paymentId": identifier})
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_approval_check_rejects_and_cancels_at_pi(flow, pi_sandbox, settings, signal_log):
    settings.PI_PAYMENTS = {
        **settings.PI_PAYMENTS,
        "APPROVAL_CHECK": "tests.payments.test_callbacks.reject_expensive",
    }
    identifier = flow.create(amount="25")
    response = flow.approve(identifier)
    assert response.status_code == 400
    assert response.json() == {
        "error": "amount_mismatch",
        "detail": "Amount does not match the order.",
    }
    assert pi_sandbox.payment(identifier)["status"]["cancelled"] is True
    assert Payment.objects.get(identifier=identifier).status == S.CANCELLED
    assert signal_log.count("cancelled", identifier) == 1
    assert signal_log.count("approved") == 0
    assert flow.approve(flow.create(amount="5")).status_code == 200


def test_wrong_network_is_rejected(flow, pi_sandbox, settings):
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "NETWORK": "Pi Network"}
    identifier = flow.create()
    response = flow.approve(identifier)
    assert response.status_code == 400
    assert response.json()["error"] == "wrong_network"
    assert pi_sandbox.payment(identifier)["status"]["developer_approved"] is False


def test_app_to_user_payment_is_not_approved(flow, pi_sandbox):
    payout = get_client().create_payment(flow.shopper.uid, Decimal(1), "x")
    pi_sandbox.clear_calls()
    response = flow.approve(payout.identifier)
    assert response.status_code == 400
    assert response.json()["error"] == "wrong_direction"
    assert pi_sandbox.calls("approve") == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"memo": "another memo", "verified": True}, "tx_memo_mismatch"),
        ({"amount": "1.25", "verified": True}, "tx_payment_mismatch"),
        (
            {
                "to_address": "GBGCDFTLN3VZABN6DVQZYFXBXRLYKKTL2PKHIDQSAWGC2CVPALW2GDBT",
                "verified": True,
            },
            "tx_payment_mismatch",
        ),
        ({"verified": False}, "not_verified"),
    ],
)
def test_wrong_transaction_is_refused_before_pi_complete(flow, pi_sandbox, overrides, code):
    identifier, txid = flow.paid(**overrides)
    pi_sandbox.clear_calls()
    response = flow.complete(identifier, txid)
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert pi_sandbox.calls("complete") == []
    assert Payment.objects.get(identifier=identifier).status != S.COMPLETED


def test_wrong_txid_is_refused(flow, pi_sandbox):
    identifier, _txid = flow.paid()
    pi_sandbox.clear_calls()
    response = flow.complete(identifier, "e" * 64)
    assert response.status_code == 400
    assert response.json()["error"] == "txid_mismatch"
    assert pi_sandbox.calls("complete") == []


def test_the_first_verification_failures_of_a_payment_are_kept(flow, monkeypatch):
    # The complete route is anonymous: whoever knows an open payment's identifier must not grow
    # its audit log without end by posting transaction ids that do not prove it.
    monkeypatch.setattr(payments_service, "MAX_VERIFICATION_FAILURES", 3)
    identifier, txid = flow.paid(amount="1")  # the payer's transaction pays too little
    for n in range(5):
        response = flow.complete(identifier, f"{n:x}" * 64)
        assert response.status_code == 400
        assert response.json()["error"] == "txid_mismatch"
    kept = events(identifier, "verification_failed")
    assert sorted(event.detail["txid"] for event in kept) == ["0" * 64, "1" * 64, "2" * 64]

    # Counted per code: made-up ids do not crowd out the failure of the payer's transaction.
    response = flow.complete(identifier, txid)
    assert response.status_code == 400
    own = [
        event for event in events(identifier, "verification_failed") if event.detail["txid"] == txid
    ]
    assert [event.detail["code"] for event in own] == [response.json()["error"]]
    assert response.json()["error"] != "txid_mismatch"


def test_wrong_network_is_refused_at_complete(flow, pi_sandbox, settings):
    identifier, txid = flow.paid()
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "NETWORK": "Pi Network"}
    pi_sandbox.clear_calls()
    response = flow.complete(identifier, txid)
    assert response.status_code == 400
    assert response.json()["error"] == "wrong_network"
    assert pi_sandbox.calls("complete") == []


def test_without_horizon_verification_pi_flags_suffice(flow, pi_sandbox, settings):
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "VERIFY_TRANSACTIONS": False}
    identifier, txid = flow.paid()
    pi_sandbox.clear_calls()
    assert flow.complete(identifier, txid).status_code == 200
    assert [c["route"] for c in pi_sandbox.calls()] == ["get_payment", "complete"]


def test_complete_verifies_on_horizon(flow, pi_sandbox):
    identifier, txid = flow.paid()
    pi_sandbox.clear_calls()
    assert flow.complete(identifier, txid).status_code == 200
    routes = [c["route"] for c in pi_sandbox.calls()]
    # The transaction and its operations are read at the same time: either may be logged first.
    assert routes[0] == "get_payment"
    assert sorted(routes[1:3]) == ["horizon_operations", "horizon_transaction"]
    assert routes[3:] == ["complete"]


@pytest.mark.parametrize(
    ("setup", "route"),
    [
        ("cancelled", "approve"),
        ("cancelled", "complete"),
        ("created", "complete"),
        ("completed_other_txid", "complete"),
    ],
)
def test_illegal_transitions_are_409(flow, pi_sandbox, setup, route):
    if setup == "cancelled":
        identifier = flow.approved()
        pi_sandbox.user_cancel(identifier)
        assert flow.post("cancel", {"paymentId": identifier}).status_code == 200
        txid = "f" * 64
    elif setup == "created":
        identifier = flow.create()
        flow.post("error", {"paymentId": identifier, "error": "x"})
        txid = "f" * 64
    else:
        identifier, real = flow.paid()
        assert flow.complete(identifier, real).status_code == 200
        txid = "0" * 64
    body = {"paymentId": identifier, "accessToken": flow.shopper.token, "transactionId": txid}
    response = flow.post(route, body)
    assert response.status_code == 409, response.json()
    assert response.json()["error"] == "illegal_transition"


def test_timeout_after_complete_reached_pi_is_success(flow, pi_sandbox, signal_log, settings):
    identifier, txid = flow.paid()
    pi_sandbox.add_fault("complete", after="respond", drop=True, count=1)
    response = flow.complete(identifier, txid)
    assert response.status_code == 200, response.json()
    assert response.json()["payment"]["status"] == "completed"
    assert signal_log.count("completed", identifier) == 1
    assert flow.complete(identifier, txid).status_code == 200
    assert signal_log.count("completed", identifier) == 1


def test_pi_outage_at_approve_is_503_and_recoverable(flow, pi_sandbox):
    identifier = flow.create()
    pi_sandbox.add_fault("approve", status=503, count=1)
    response = flow.approve(identifier)
    assert response.status_code == 503
    assert response.json()["error"] == "pi_unavailable"
    payment = Payment.objects.get(identifier=identifier)
    assert payment.status == S.CREATED
    assert [e.kind for e in events(identifier)] == ["pi_error"]
    assert flow.approve(identifier).status_code == 200


def test_pi_unreachable_at_fetch_is_503(flow, pi_sandbox):
    identifier = flow.create()
    pi_sandbox.add_fault("get_payment", status=503, count=10)
    response = flow.approve(identifier)
    assert response.status_code == 503


def test_unknown_payment_is_404(flow):
    response = flow.post("approve", {"paymentId": "A" * 28, "accessToken": flow.shopper.token})
    assert response.status_code == 404
    assert response.json()["error"] == "payment_not_found"


def test_cancel_route_records_user_cancel(flow, pi_sandbox, signal_log):
    identifier = flow.approved()
    pi_sandbox.user_cancel(identifier)
    response = flow.post("cancel/", {"paymentId": identifier})
    assert response.status_code == 200
    assert response.json()["payment"]["status"] == "user_cancelled"
    assert flow.post("cancel", {"paymentId": identifier}).status_code == 200
    assert signal_log.count("cancelled", identifier) == 1


def test_error_route_records_an_event(flow):
    identifier = flow.approved()
    response = flow.post("error", {"paymentId": identifier, "error": {"message": "boom"}})
    assert response.status_code == 200
    (event,) = events(identifier, "frontend_error")
    assert "boom" in event.detail["error"]


def test_the_first_frontend_errors_of_a_payment_are_kept(flow, monkeypatch):
    monkeypatch.setattr(payments_service, "MAX_FRONTEND_ERRORS", 3)
    identifier = flow.approved()
    for n in range(5):
        response = flow.post("error", {"paymentId": identifier, "error": f"boom {n}"})
        assert response.status_code == 200
    kept = events(identifier, "frontend_error")
    assert sorted(event.detail["error"] for event in kept) == ["boom 0", "boom 1", "boom 2"]


@pytest.mark.parametrize("raw", [b'"bad \\ud800"', b'"bad \\udfff\\u0000"'])
def test_error_text_with_a_lone_surrogate_is_stored_readable(flow, raw):
    # JSON may escape half of a UTF-16 pair; PostgreSQL's jsonb and UTF-8 refuse it.
    identifier = flow.approved()
    body = b'{"paymentId": "' + identifier.encode() + b'", "error": ' + raw + b"}"
    response = flow.api.generic("POST", "/pi_payment/error", body, content_type="application/json")
    assert response.status_code == 200, response.content
    (event,) = events(identifier, "frontend_error")
    assert event.detail["error"].startswith("bad \ufffd")
    event.detail["error"].encode("utf-8")


def test_incomplete_completes_a_verified_payment(flow, pi_sandbox, signal_log):
    identifier, txid = flow.paid()
    response = flow.post("incomplete", {"paymentId": identifier, "transactionId": txid})
    assert response.status_code == 200
    assert response.json()["payment"]["status"] == "completed"
    assert signal_log.count("completed", identifier) == 1


def test_incomplete_accepts_the_demo_payment_shape(flow, pi_sandbox, signal_log):
    identifier, _txid = flow.paid()
    dto = pi_sandbox.payment(identifier)
    dto["amount"] = 0.0001
    response = flow.post("incomplete", {"payment": dto})
    assert response.status_code == 200
    payment = response.json()["payment"]
    assert payment["status"] == "completed"
    assert payment["amount"] == "3.5000000"


def test_incomplete_syncs_a_cancelled_payment(flow, pi_sandbox):
    identifier = flow.approved()
    pi_sandbox.user_cancel(identifier)
    response = flow.post("incomplete", {"paymentId": identifier, "transactionId": None})
    assert response.json()["payment"]["status"] == "user_cancelled"


def test_incomplete_reports_an_unpaid_payment(flow, pi_sandbox):
    identifier = flow.approved()
    response = flow.post("incomplete", {"paymentId": identifier, "transactionId": None})
    assert response.status_code == 200
    assert response.json()["payment"]["status"] == "approved"


def test_payments_list_and_detail_are_the_users_own(flow, pi_sandbox, api):
    mine = flow.approved()
    other, other_token = pi_sandbox.login(username="other")
    theirs = pi_sandbox.create_payment(other["uid"], "2", memo="m")["identifier"]
    assert (
        flow.post("approve", {"paymentId": theirs, "accessToken": other_token}).status_code == 200
    )
    assert api.get("/pi_payment/payments").status_code == 401
    auth = {"HTTP_AUTHORIZATION": f"Bearer {flow.shopper.token}"}
    listed = api.get("/pi_payment/payments/", **auth).json()["payments"]
    assert [p["identifier"] for p in listed] == [mine]
    assert api.get(f"/pi_payment/payments/{mine}", **auth).status_code == 200
    assert api.get(f"/pi_payment/payments/{theirs}/", **auth).status_code == 404


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("approve", {}),
        ("approve", {"paymentId": 5}),
        ("complete", {"paymentId": "abc"}),
        ("complete", {"paymentId": "abc", "transactionId": "zz"}),
        ("cancel", {"paymentId": "../../etc"}),
        ("error", {}),
        ("incomplete", {"payment": {"identifier": None}}),
        ("incomplete", []),
    ],
)
def test_bad_bodies_are_400(flow, route, body):
    response = flow.post(route, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert not Payment.objects.exists()


def test_not_json_is_400(flow, api):
    response = api.post("/pi_payment/complete", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_approve_links_the_payer_to_a_payment_a_callback_stored_before(flow, pi_sandbox, api):
    identifier = flow.create()
    # The error callback is anonymous, and the payer has not signed in to the site yet.
    assert flow.post("error", {"paymentId": identifier, "error": "retrying"}).status_code == 200
    assert Payment.objects.get(identifier=identifier).pi_user is None
    assert flow.approve(identifier).status_code == 200
    payment = Payment.objects.get(identifier=identifier)
    assert payment.pi_user is not None and payment.pi_user.uid == flow.shopper.uid
    auth = {"HTTP_AUTHORIZATION": f"Bearer {flow.shopper.token}"}
    listed = api.get("/pi_payment/payments", **auth).json()["payments"]
    assert [p["identifier"] for p in listed] == [identifier]


@pytest.mark.parametrize(
    "scheme",
    [
        versioning.URLPathVersioning,
        versioning.NamespaceVersioning,
        versioning.AcceptHeaderVersioning,
    ],
)
def test_the_sites_api_versioning_does_not_apply(flow, monkeypatch, scheme):
    # DRF reads DEFAULT_VERSIONING_CLASS and ALLOWED_VERSIONS into class attributes at import:
    # this is a site with "REST_FRAMEWORK": {..., "ALLOWED_VERSIONS": ["v1"]}.
    monkeypatch.setattr(
        APIView, "versioning_class", type("Site", (scheme,), {"allowed_versions": ["v1"]})
    )
    identifier = flow.create()
    assert flow.approve(identifier).status_code == 200
    assert flow.post("cancel", {"paymentId": identifier}).status_code == 200
    auth = {"HTTP_AUTHORIZATION": f"Bearer {flow.shopper.token}"}
    assert flow.api.get("/pi_payment/me", **auth).status_code == 200
    assert flow.api.get(f"/pi_payment/payments/{identifier}", **auth).status_code == 200
