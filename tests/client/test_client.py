"""PiClient against the sandbox over HTTP: every endpoint, every error code, retries, reuse."""

from __future__ import annotations

import logging
import socket
from decimal import Decimal

import pytest

from django_pi_payments.client import PiClient
from django_pi_payments.dto import APP_TO_USER, USER_TO_APP
from django_pi_payments.exceptions import (
    PiAPIError,
    PiBadRequest,
    PiConflict,
    PiNotFound,
    PiUnauthorized,
    PiUnavailable,
)


def _approved_with_tx(pi_sandbox, client, payer, **tx_overrides):
    user, _token = payer
    created = pi_sandbox.create_payment(user["uid"], "3.25", memo="book")
    client.approve_payment(created["identifier"])
    submitted = pi_sandbox.submit_transaction(created["identifier"], **tx_overrides)
    return created["identifier"], submitted["txid"]


def test_me_returns_typed_user(pi_sandbox, client, payer):
    user, token = payer
    me = client.me(token)
    assert me.uid == user["uid"]
    assert me.username == "alice"
    assert "payments" in me.scopes
    assert me.valid_until is not None


def test_me_with_expired_and_forged_tokens(pi_sandbox, client, payer):
    _user, token = payer
    with pytest.raises(PiUnauthorized) as forged:
        client.me("forged-token")
    assert forged.value.status == 401
    pi_sandbox.expire_token(token)
    with pytest.raises(PiUnauthorized):
        client.me(token)


def test_full_user_to_app_lifecycle(pi_sandbox, client, payer):
    user, _token = payer
    created = pi_sandbox.create_payment(user["uid"], "3.25", memo="book", metadata={"o": 1})
    identifier = created["identifier"]
    fetched = client.get_payment(identifier)
    assert fetched.amount == Decimal("3.25")
    assert fetched.direction == USER_TO_APP
    assert fetched.metadata == {"o": 1}
    assert not fetched.status.developer_approved
    approved = client.approve_payment(identifier)
    assert approved.status.developer_approved
    txid = pi_sandbox.submit_transaction(identifier)["txid"]
    verified = client.get_payment(identifier)
    assert verified.has_verified_transaction and verified.txid == txid
    completed = client.complete_payment(identifier, txid)
    assert completed.status.developer_completed


def test_cancel_payment(pi_sandbox, client, payer):
    user, _token = payer
    created = pi_sandbox.create_payment(user["uid"], "1", memo="m")
    cancelled = client.cancel_payment(created["identifier"])
    assert cancelled.status.cancelled and cancelled.is_cancelled


def test_create_payment_and_incomplete_server_payments(pi_sandbox, client, payer):
    user, _token = payer
    created = client.create_payment(user["uid"], Decimal("0.5"), "payout", {"kind": "reward"})
    assert created.direction == APP_TO_USER
    assert created.status.developer_approved
    assert created.amount == Decimal("0.5")
    incomplete = client.incomplete_server_payments()
    assert [p.identifier for p in incomplete] == [created.identifier]


@pytest.mark.parametrize(
    ("scenario", "error_class", "code"),
    [
        ("unknown_payment", PiNotFound, "payment_not_found"),
        ("complete_twice", PiConflict, "already_completed"),
        ("complete_cancelled", PiConflict, "cancelled_payment"),
        ("approve_cancelled", PiConflict, "cancelled_payment"),
        ("cancel_with_tx", PiConflict, "payment_tx_present"),
        ("cancel_completed", PiConflict, "already_completed"),
        ("complete_without_tx", PiConflict, "not_verified"),
        ("complete_wrong_txid", PiConflict, "txid_mismatch"),
        ("create_unknown_user", PiNotFound, "user_not_found"),
        ("create_bad_amount", PiBadRequest, "invalid_amount"),
        ("create_second_a2u", PiConflict, "ongoing_payment_found"),
    ],
)
def test_documented_error_codes(pi_sandbox, client, payer, scenario, error_class, code):
    user, _token = payer
    uid = user["uid"]

    def new_payment():
        return pi_sandbox.create_payment(uid, "2", memo="m")["identifier"]

    def with_tx():
        identifier = new_payment()
        client.approve_payment(identifier)
        return identifier, pi_sandbox.submit_transaction(identifier)["txid"]

    with pytest.raises(PiAPIError) as caught:
        if scenario == "unknown_payment":
            client.get_payment("A" * 28)
        elif scenario == "complete_twice":
            identifier, txid = with_tx()
            client.complete_payment(identifier, txid)
            client.complete_payment(identifier, txid)
        elif scenario == "complete_cancelled":
            identifier = new_payment()
            client.cancel_payment(identifier)
            client.complete_payment(identifier, "a" * 64)
        elif scenario == "approve_cancelled":
            identifier = new_payment()
            client.cancel_payment(identifier)
            client.approve_payment(identifier)
        elif scenario == "cancel_with_tx":
            identifier, _txid = with_tx()
            client.cancel_payment(identifier)
        elif scenario == "cancel_completed":
            identifier, txid = with_tx()
            client.complete_payment(identifier, txid)
            client.cancel_payment(identifier)
        elif scenario == "complete_without_tx":
            identifier = new_payment()
            client.approve_payment(identifier)
            client.complete_payment(identifier, "b" * 64)
        elif scenario == "complete_wrong_txid":
            identifier, _txid = with_tx()
            client.complete_payment(identifier, "c" * 64)
        elif scenario == "create_unknown_user":
            client.create_payment("00000000-0000-4000-8000-000000000000", Decimal(1), "m")
        elif scenario == "create_bad_amount":
            client.create_payment(uid, Decimal("-1"), "m")
        elif scenario == "create_second_a2u":
            first = client.create_payment(uid, Decimal(1), "m")
            try:
                client.create_payment(uid, Decimal(1), "m")
            except PiConflict as exc:
                assert exc.payment is not None
                assert exc.payment.identifier == first.identifier
                raise
    assert isinstance(caught.value, error_class)
    assert caught.value.code == code
    assert code in str(caught.value)


def test_verification_failed_carries_verification_error(pi_sandbox, client, payer):
    user, _token = payer
    payout = client.create_payment(user["uid"], Decimal(1), "m")
    with pytest.raises(PiConflict) as caught:
        client.complete_payment(payout.identifier, "d" * 64)
    assert caught.value.code == "verification_failed"
    assert caught.value.verification_error


def test_bad_api_key_is_unauthorized(pi_sandbox):
    bad = PiClient("wrong-key", base_url=pi_sandbox.url, timeout=2)
    with pytest.raises(PiUnauthorized) as caught:
        bad.incomplete_server_payments()
    assert "wrong-key" not in str(caught.value) + repr(caught.value)


def test_html_500_body_becomes_readable_unavailable(pi_sandbox, client, payer):
    user, _token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    pi_sandbox.add_fault("approve", status=500)
    with pytest.raises(PiUnavailable) as caught:
        client.approve_payment(identifier)
    assert caught.value.status == 500
    assert "<" not in str(caught.value)
    assert "went wrong" in str(caught.value)


def test_get_is_retried_through_a_503(pi_sandbox, client, payer):
    user, _token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    pi_sandbox.clear_calls()
    pi_sandbox.add_fault("get_payment", status=503, count=1)
    assert client.get_payment(identifier).identifier == identifier
    assert [c["status"] for c in pi_sandbox.calls("get_payment")] == [503, 200]


def test_get_is_retried_after_a_dropped_connection(pi_sandbox, client, payer):
    user, _token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    pi_sandbox.add_fault("get_payment", drop=True, count=1)
    assert client.get_payment(identifier).identifier == identifier


def test_get_gives_up_after_max_retries(pi_sandbox, client, payer):
    user, _token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    pi_sandbox.clear_calls()
    pi_sandbox.add_fault("get_payment", status=503, count=10)
    with pytest.raises(PiUnavailable) as caught:
        client.get_payment(identifier)
    assert caught.value.status == 503
    assert len(pi_sandbox.calls("get_payment")) == 3


def test_post_is_not_retried_after_a_read_timeout(pi_sandbox, payer):
    user, _token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    impatient = PiClient(pi_sandbox.api_key, base_url=pi_sandbox.url, timeout=0.5, backoff=0.01)
    pi_sandbox.clear_calls()
    pi_sandbox.add_fault("approve", hang=True, hang_seconds=2, count=1)
    with pytest.raises(PiUnavailable) as caught:
        impatient.approve_payment(identifier)
    assert caught.value.request_sent is True
    assert len(pi_sandbox.calls("approve")) == 1


def test_post_is_not_retried_after_a_503(pi_sandbox, client, payer):
    user, _token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    pi_sandbox.clear_calls()
    pi_sandbox.add_fault("approve", status=503, count=1)
    with pytest.raises(PiUnavailable):
        client.approve_payment(identifier)
    assert len(pi_sandbox.calls("approve")) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_post_is_retried_when_the_connection_is_refused(caplog):
    refused = PiClient("key-123456789", base_url=f"http://127.0.0.1:{_closed_port()}", backoff=0)
    with (
        caplog.at_level(logging.INFO, logger="django_pi_payments"),
        pytest.raises(PiUnavailable) as caught,
    ):
        refused.approve_payment("A" * 28)
    assert caught.value.request_sent is False
    assert sum("retrying" in record.getMessage() for record in caplog.records) == 2


def test_one_connection_for_many_calls(pi_sandbox, client, payer):
    user, token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    before = pi_sandbox.stats()["connections"]
    for _ in range(10):
        client.get_payment(identifier)
    client.me(token)
    client.approve_payment(identifier)
    assert pi_sandbox.stats()["connections"] - before == 1


def test_user_agent_and_key_header(pi_sandbox, client):
    assert client.transport.session.headers["User-Agent"].startswith("django-pi-payments/")
    client.incomplete_server_payments()
    call = pi_sandbox.calls("incomplete_server_payments")[-1]
    assert call["auth"] == "key"


def test_secrets_never_reach_repr_errors_or_logs(pi_sandbox, payer, caplog):
    _user, token = payer
    secret_key = "super-secret-api-key-1234567890"
    leaky = PiClient(secret_key, base_url=pi_sandbox.url, timeout=1, backoff=0)
    texts = [repr(leaky), str(leaky)]
    with caplog.at_level(logging.DEBUG):
        for call in (
            lambda: leaky.get_payment("A" * 28),
            lambda: leaky.me(token + "x"),
        ):
            with pytest.raises(PiAPIError) as caught:
                call()
            texts += [str(caught.value), repr(caught.value)]
    texts += [record.getMessage() for record in caplog.records]
    blob = "\n".join(texts)
    assert secret_key not in blob
    assert token not in blob


def test_calls_go_through_the_environment_s_http_proxy(pi_sandbox, payer, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", pi_sandbox.url)
    # api.minepi.com is reached only through the proxy: the sandbox answers proxy requests.
    proxied = PiClient(pi_sandbox.api_key, base_url="http://api.minepi.com", backoff=0)
    user, _token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    assert proxied.get_payment(identifier).identifier == identifier
    assert proxied.approve_payment(identifier).status.developer_approved is True
    calls = pi_sandbox.calls()[-2:]
    assert [(call["route"], call["status"]) for call in calls] == [
        ("get_payment", 200),
        ("approve", 200),
    ]
    proxied.close()
