"""What an operator reads in the logs when Pi or Horizon fails: one line per failed call naming
the host and the path (the payment identifier or the transaction id), at the right level, never a
secret; a refused API key is an error that says which setting to fix, logged once a minute, not
once per request; an unreadable Horizon answer is an outage, not proof that a payer did not pay.
"""

from __future__ import annotations

import logging
import socket

import pytest

from django_pi_payments.client import PiClient
from django_pi_payments.exceptions import HorizonError, PiNotFound, PiUnauthorized, PiUnavailable
from django_pi_payments.horizon import HorizonClient, verify_payment_transaction

WRONG_KEY = "an0ther-app-s-server-api-key-0123456789"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("django_pi_payments") and record.levelno >= level
    ]


def test_a_refused_api_key_is_an_error_naming_the_setting_once_a_minute(pi_sandbox, caplog):
    user, _token = pi_sandbox.login(username="alice")
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    wrong = PiClient(WRONG_KEY, base_url=pi_sandbox.url, backoff=0)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            with pytest.raises(PiUnauthorized):
                wrong.get_payment(identifier)
        with pytest.raises(PiUnauthorized):
            wrong.incomplete_server_payments()
    [error] = _records(caplog, logging.ERROR)
    assert 'PI_PAYMENTS["API_KEY"]' in error
    assert f"/payments/{identifier}" in error
    assert "invalid_api_key" in error
    assert WRONG_KEY not in caplog.text
    wrong.close()


def test_a_refused_access_token_is_no_error_of_the_site(pi_sandbox, caplog):
    client = PiClient(pi_sandbox.api_key, base_url=pi_sandbox.url, backoff=0)
    with caplog.at_level(logging.DEBUG), pytest.raises(PiUnauthorized):
        client.me("forged-token-0123456789")
    assert _records(caplog, logging.WARNING) == []
    client.close()


def test_a_post_that_fails_is_logged_once_with_its_host_and_path(caplog):
    port = _closed_port()
    refused = PiClient("key-123456789", base_url=f"http://127.0.0.1:{port}", backoff=0)
    with caplog.at_level(logging.DEBUG), pytest.raises(PiUnavailable):
        refused.approve_payment("A" * 28)
    [warning] = _records(caplog, logging.WARNING)
    assert f"127.0.0.1:{port}/v2/payments/{'A' * 28}/approve" in warning
    assert "could not connect" in warning
    # The retries before it are no warnings: a retry that succeeds is no failure.
    assert len([m for m in _records(caplog, logging.INFO) if "retrying" in m]) == 2
    refused.close()


def test_an_error_status_from_pi_is_logged_with_the_payment(pi_sandbox, caplog):
    user, _token = pi_sandbox.login(username="alice")
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    client = PiClient(pi_sandbox.api_key, base_url=pi_sandbox.url, backoff=0)
    pi_sandbox.add_fault("approve", status=500)
    with caplog.at_level(logging.DEBUG), pytest.raises(PiUnavailable):
        client.approve_payment(identifier)
    [warning] = _records(caplog, logging.WARNING)
    assert f"/v2/payments/{identifier}/approve" in warning
    assert "500" in warning
    client.close()


@pytest.fixture
def paid(pi_sandbox):
    user, _token = pi_sandbox.login(username="payer")
    pi = PiClient(pi_sandbox.api_key, base_url=pi_sandbox.url, timeout=2, backoff=0)
    identifier = pi_sandbox.create_payment(user["uid"], "2", memo="m")["identifier"]
    pi.approve_payment(identifier)
    txid = pi_sandbox.submit_transaction(identifier)["txid"]
    dto = pi.get_payment(identifier)
    pi.close()
    horizon = HorizonClient(pi_sandbox.horizon_url, timeout=2, max_retries=0)
    yield dto, txid, horizon
    horizon.close()


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("horizon_transaction", {"status": "maintenance"}),
        ("horizon_transaction", {"hash": "0" * 64, "successful": False}),
    ],
)
def test_an_unreadable_horizon_answer_is_no_verification_failure(pi_sandbox, paid, route, body):
    dto, txid, horizon = paid
    pi_sandbox.add_fault(route, status=200, body=body, count=None)
    with pytest.raises(HorizonError) as caught:
        verify_payment_transaction(dto, txid, horizon)
    assert "Horizon" in str(caught.value)
    assert txid in str(caught.value)


def test_a_user_and_password_in_the_base_url_reach_no_log_line(pi_sandbox, caplog):
    host = pi_sandbox.url.removeprefix("http://")
    client = PiClient("k" * 40, base_url=f"http://opuser:S3CRETPASS@{host}", backoff=0)
    dead = f"http://opuser:S3CRETPASS@127.0.0.1:{_closed_port()}"
    unreachable = PiClient("k" * 40, base_url=dead, max_retries=1, backoff=0)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(PiUnauthorized):
            client.get_payment("a" * 28)  # the sandbox refuses the key: an ERROR naming the URL
        with pytest.raises(PiUnavailable) as failure:
            unreachable.get_payment("a" * 28)
    assert "S3CRETPASS" not in str(failure.value)
    assert "S3CRETPASS" not in repr(client)
    assert len(_records(caplog, logging.WARNING)) >= 2
    assert "S3CRETPASS" not in caplog.text
    assert "opuser" not in caplog.text
    client.close()
    unreachable.close()


def test_a_token_in_a_horizon_url_s_path_reaches_no_log_line(caplog):
    horizon = HorizonClient(
        f"http://127.0.0.1:{_closed_port()}/v1/PROVIDER-TOKEN-abc123", timeout=1, max_retries=0
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(PiUnavailable):
        horizon.transaction("a" * 64)
    [line] = _records(caplog, logging.WARNING)
    assert f"/transactions/{'a' * 64}" in line
    assert "PROVIDER-TOKEN" not in caplog.text
    horizon.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": "payment_not_found", "error_message": "No such payment."}, PiNotFound),
        ({"error_message": "No such payment."}, PiNotFound),  # Pi's, if without its code
        ("<html>Not Found</html>", PiUnavailable),  # another server's, or no route of Pi's
        ({"detail": "Not found."}, PiUnavailable),
    ],
)
def test_a_404_is_pi_s_word_only_in_pi_s_error_body(pi_sandbox, caplog, body, expected):
    client = PiClient(pi_sandbox.api_key, base_url=pi_sandbox.url, backoff=0)
    pi_sandbox.add_fault("get_payment", status=404, body=body)
    with caplog.at_level(logging.DEBUG), pytest.raises(expected):
        client.get_payment("a" * 28)
    errors = _records(caplog, logging.ERROR)
    assert len(errors) == (1 if expected is PiUnavailable else 0)
    client.close()
