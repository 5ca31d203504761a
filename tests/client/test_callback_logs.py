"""What the logs say when a payment callback fails because of Pi, Horizon or the transaction: one
WARNING on ``django_pi_payments.views`` naming the route, the payment and the error code, beside
the transport's line with the cause; an ERROR only for what the operator must fix (a refused API
key), and never a secret."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

import pytest
from rest_framework.test import APIClient

from django_pi_payments.models import Payment, PiUser
from django_pi_payments.testing import SandboxHandle

from ..database_lock import lock_held_elsewhere, rows_locked_elsewhere

WRONG_KEY = "an0ther-app-s-server-api-key-0123456789"


@pytest.fixture
def shop(pi_settings_for_sandbox, transactional_db, pi_sandbox):
    user, token = pi_sandbox.login(username="shopper")
    return pi_sandbox, APIClient(), user, token


def _post(api: APIClient, route: str, body: dict[str, str]):
    return api.post(f"/pi_payment/{route}", body, format="json")


def _approved(sandbox: SandboxHandle, api: APIClient, user: dict[str, str], token: str) -> str:
    """A new payment of ``user``, approved through the callback: its identifier."""
    identifier = sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    assert _post(api, "approve", {"paymentId": identifier, "accessToken": token}).status_code == 200
    return str(identifier)


def _lines(caplog: pytest.LogCaptureFixture, name: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name and r.levelno == level]


def test_an_outage_during_approve_names_the_payment_and_the_cause(shop, caplog):
    sandbox, api, user, token = shop
    identifier = sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    sandbox.add_fault("approve", status=500, count=None)
    with caplog.at_level(logging.DEBUG):
        response = _post(api, "approve", {"paymentId": identifier, "accessToken": token})
    assert response.status_code == 503
    [view_line] = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert identifier in view_line
    assert "503 pi_unavailable" in view_line
    assert "/pi_payment/approve" in view_line
    [http_line] = _lines(caplog, "django_pi_payments.http", logging.WARNING)
    assert f"/payments/{identifier}/approve answered 500" in http_line
    assert not [r for r in caplog.records if r.name.startswith("django_pi") and r.levelno >= 40]


def test_a_transaction_that_does_not_pay_is_a_warning_naming_the_payment(shop, caplog):
    sandbox, api, user, token = shop
    identifier = _approved(sandbox, api, user, token)
    txid = sandbox.submit_transaction(identifier, memo="another", verified=True)["txid"]
    with caplog.at_level(logging.DEBUG):
        response = _post(api, "complete", {"paymentId": identifier, "transactionId": txid})
    assert response.status_code == 400
    [line] = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert identifier in line
    assert "tx_memo_mismatch" in line


def test_a_refused_api_key_is_one_error_and_a_warning_per_callback(shop, settings, caplog):
    sandbox, api, user, token = shop
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "API_KEY": WRONG_KEY}
    identifier = sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            response = _post(api, "approve", {"paymentId": identifier, "accessToken": token})
            assert response.status_code == 502
            assert response.json()["pi_error"] == "invalid_api_key"
    [error] = _lines(caplog, "django_pi_payments.client", logging.ERROR)
    assert 'PI_PAYMENTS["API_KEY"]' in error
    views = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert len(views) == 3
    assert all(identifier in line and "invalid_api_key" in line for line in views)
    assert WRONG_KEY not in caplog.text


def test_an_ordinary_refusal_is_left_to_django_s_request_log(shop, caplog):
    sandbox, api, user, _token = shop
    identifier = sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    with caplog.at_level(logging.DEBUG):
        response = _post(api, "complete", {"paymentId": identifier, "transactionId": "a" * 64})
    assert response.status_code == 409
    assert _lines(caplog, "django_pi_payments.views", logging.WARNING) == []


def test_a_busy_database_names_the_payment(shop, caplog):
    sandbox, api, user, token = shop
    identifier = _approved(sandbox, api, user, token)
    txid = sandbox.submit_transaction(identifier)["txid"]
    with lock_held_elsewhere(identifier), caplog.at_level(logging.DEBUG):
        response = _post(api, "complete", {"paymentId": identifier, "transactionId": txid})
    assert response.status_code == 503
    [line] = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert identifier in line
    assert "503 database_busy" in line


def test_a_base_url_that_is_not_pi_s_is_an_error_naming_the_setting(shop, caplog):
    # A 404 without Pi's error body: another server, or no route of Pi's, answers.
    sandbox, api, user, token = shop
    identifier = sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    sandbox.add_fault("get_payment", status=404, body="<html>Not Found</html>", count=None)
    with caplog.at_level(logging.DEBUG):
        for _ in range(2):
            response = _post(api, "approve", {"paymentId": identifier, "accessToken": token})
            assert response.status_code == 503
            assert response.json()["error"] == "pi_unavailable"
    [error] = _lines(caplog, "django_pi_payments.client", logging.ERROR)
    assert 'PI_PAYMENTS["API_BASE_URL"]' in error
    assert f"GET /payments/{identifier}" in error
    assert Payment.objects.count() == 0
    assert sandbox.calls("approve") == []
    sandbox.clear_faults()
    response = _post(api, "approve", {"paymentId": identifier, "accessToken": token})
    assert response.json()["payment"]["status"] == "approved"


def _busy_sign_in(sandbox: SandboxHandle) -> tuple[str, AbstractContextManager[None]]:
    """A fresh access token of a known Pioneer, and a block in which his sign-in waits for his
    Pi user's row past the lock timeout."""
    newcomer, first_token = sandbox.login(username="newcomer")
    signed_in = APIClient().get("/pi_payment/me", HTTP_AUTHORIZATION=f"Bearer {first_token}")
    assert signed_in.status_code == 200
    token = sandbox.create_token(newcomer["uid"])
    rows = PiUser.objects.filter(uid=newcomer["uid"])
    rows.update(token_valid_until=None)  # Pi's answer changes the row: the sign-in locks it
    return token, rows_locked_elsewhere(rows, "token_valid_until")


def test_a_busy_database_at_sign_in_with_a_body_that_does_not_parse_is_503(shop, caplog):
    # The body is read after sign-in: the failure's log line must not read it into a 500.
    sandbox, api, _user, _token = shop
    token, busy = _busy_sign_in(sandbox)
    with busy, caplog.at_level(logging.DEBUG):
        response = api.generic(
            "GET",
            "/pi_payment/payments",
            "{not json",
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert response.status_code == 503
    assert response.json()["error"] == "database_busy"
    [line] = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert "payment ?: 503 database_busy" in line


def test_made_up_transaction_ids_log_one_line_a_minute(shop, caplog):
    sandbox, api, user, token = shop
    identifier = _approved(sandbox, api, user, token)
    with caplog.at_level(logging.DEBUG):
        for n in range(20):
            body = {"paymentId": identifier, "transactionId": f"{n:064x}"}
            assert _post(api, "complete", body).status_code == 400
    lines = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert len(lines) == 1
    assert identifier in lines[0]


def test_the_pi_demo_s_incomplete_body_names_its_payment(shop, caplog):
    sandbox, api, user, token = shop
    identifier = _approved(sandbox, api, user, token)
    txid = sandbox.submit_transaction(identifier)["txid"]
    sandbox.add_fault("get_payment", status=500, count=None)
    payment = {"identifier": identifier, "transaction": {"txid": txid}}
    with caplog.at_level(logging.DEBUG):
        response = api.post("/pi_payment/incomplete", {"payment": payment}, format="json")
    assert response.status_code == 503
    [line] = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert f"payment {identifier}: 503" in line


def test_a_horizon_outage_during_complete_names_horizon_not_pi(shop, caplog):
    sandbox, api, user, token = shop
    identifier = _approved(sandbox, api, user, token)
    txid = sandbox.submit_transaction(identifier)["txid"]
    sandbox.add_fault("horizon_transaction", status=503, count=None)
    with caplog.at_level(logging.DEBUG):
        response = _post(api, "complete", {"paymentId": identifier, "transactionId": txid})
    assert response.status_code == 503
    assert response.json()["error"] == "pi_unavailable"
    assert response.json()["detail"].startswith("Horizon (Pi Network's blockchain) could not")
    [line] = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert f"payment {identifier}: 503 pi_unavailable: Horizon" in line
    assert sandbox.calls("complete") == []


def test_a_line_break_in_the_path_cannot_forge_a_log_line(shop, caplog):
    sandbox, api, _user, _token = shop
    token, busy = _busy_sign_in(sandbox)
    with busy, caplog.at_level(logging.DEBUG):
        response = api.get(
            "/pi_payment/payments/abc%0AFORGED LINE", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
    assert response.status_code == 503
    [line] = _lines(caplog, "django_pi_payments.views", logging.WARNING)
    assert "\nFORGED" not in line
    assert "/pi_payment/payments/abc\\nFORGED LINE" in line
