"""The API key and access tokens stay out of errors and tracebacks, even when they are malformed.

http.client refuses a header value with a line break or a character outside latin-1 with an error
that repeats the whole header; the client refuses such a key or token before it is sent.
"""

from __future__ import annotations

import logging

import pytest

from django_pi_payments.client import InvalidAPIKey, PiClient
from django_pi_payments.exceptions import PiUnauthorized, PiUnavailable
from django_pi_payments.http import Transport

from ..reporting import report

# Trailing line break (read from a file), an inner space, a character outside latin-1.
UNSENDABLE = ["k3yFromAFile0123456789\n", "k3y with 0123456789", "k3y\u2013dash0123456789"]


@pytest.mark.parametrize("api_key", UNSENDABLE)
def test_unsendable_api_key_is_refused_before_sending(pi_sandbox, api_key, caplog):
    client = PiClient(api_key, base_url=pi_sandbox.url, backoff=0)
    pi_sandbox.clear_calls()
    with caplog.at_level(logging.DEBUG), pytest.raises(InvalidAPIKey) as caught:
        client.incomplete_server_payments()
    assert isinstance(caught.value, PiUnavailable)
    assert caught.value.request_sent is False
    assert 'PI_PAYMENTS["API_KEY"]' in str(caught.value)
    assert pi_sandbox.calls() == []
    texts = [str(caught.value), repr(caught.value), repr(client), report(caught.value)]
    texts += [record.getMessage() for record in caplog.records]
    assert not [text for text in texts if api_key.strip() in text]


@pytest.mark.parametrize("token", ["t0ken-with-newline\n", "t0ken with space", "t0k\u00e9n"])
def test_unsendable_access_token_is_refused_before_sending(pi_sandbox, token):
    client = PiClient(pi_sandbox.api_key, base_url=pi_sandbox.url)
    pi_sandbox.clear_calls()
    with pytest.raises(PiUnauthorized) as caught:
        client.me(token)
    assert caught.value.code == "invalid_token"
    assert pi_sandbox.calls() == []
    assert token.strip() not in str(caught.value) + report(caught.value)


def test_header_refused_by_http_client_names_no_header(pi_sandbox):
    secret = "s3cretHeaderValue0123456789"
    transport = Transport(pi_sandbox.url + "/v2", timeout=2, max_retries=0)
    with pytest.raises(PiUnavailable) as caught:
        transport.request("GET", "/me", headers={"Authorization": f"Bearer {secret}\n"})
    assert caught.value.__context__ is None
    assert "/me" in str(caught.value)
    assert secret not in str(caught.value) + report(caught.value)
    transport.close()


def test_traceback_of_a_failed_pi_call_hides_the_api_key(pi_sandbox):
    api_key = "r3alLookingServerApiKey0123456789abcdef"
    client = PiClient(api_key, base_url=pi_sandbox.url, timeout=2, max_retries=0)
    pi_sandbox.add_fault("incomplete_server_payments", status=503)
    with pytest.raises(PiUnavailable) as caught:
        client.incomplete_server_payments()
    text = report(caught.value)
    # The report does show the frames the key went through, with their variables hidden.
    assert "in _call" in text
    assert "headers" in text
    assert api_key not in text


def test_traceback_of_a_refused_token_check_hides_the_token(pi_sandbox):
    client = PiClient(pi_sandbox.api_key, base_url=pi_sandbox.url, timeout=2, max_retries=0)
    _user, token = pi_sandbox.login(username="alice")
    pi_sandbox.add_fault("me", status=503)
    with pytest.raises(PiUnavailable) as caught:
        client.me(token)
    text = report(caught.value)
    assert "in me" in text
    assert token not in text
    assert pi_sandbox.api_key not in text


def test_variables_are_shown_where_no_secret_is_held(pi_sandbox):
    """The report is not blank everywhere: the hiding above is the decorators' doing."""
    client = PiClient("k" * 32, base_url=pi_sandbox.url, timeout=2, max_retries=0)
    identifier = "VisibleIdentifier0123456789a"
    pi_sandbox.add_fault("get_payment", status=503)
    with pytest.raises(PiUnavailable) as caught:
        client.get_payment(identifier)
    assert identifier not in str(caught.value)
    assert identifier in report(caught.value)


@pytest.mark.parametrize("proxy", ["socks5://user:s3cret@127.0.0.1:9", "http://user:s3cret@[bad"])
def test_a_proxy_that_cannot_be_used_is_an_outage_naming_no_credentials(
    pi_sandbox, monkeypatch, caplog, proxy
):
    """Under a WSGI server no system check runs: the first call meets the unusable proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    transport = Transport(pi_sandbox.url, timeout=2, max_retries=0)
    with caplog.at_level(logging.DEBUG), pytest.raises(PiUnavailable) as failure:
        transport.request("GET", "/v2/payments/x")
    assert "pi_payments.E009, E010" in str(failure.value)
    assert failure.value.request_sent is False
    assert failure.value.__context__ is None
    assert "s3cret" not in caplog.text + str(failure.value)
    assert pi_sandbox.calls() == []


def test_a_base_url_that_cannot_be_used_is_an_outage_not_a_500():
    transport = Transport("http://localhost:99999", timeout=2, max_retries=0)
    with pytest.raises(PiUnavailable, match=r"pi_payments\.E009") as failure:
        transport.request("GET", "/v2/me")
    assert failure.value.request_sent is False
