"""Error reports (the DEBUG page, ``mail_admins``) of a failure during token verification, or with
a badly configured API key, hold neither the token nor the key.

The failures are real requests to the app on the sandbox: a ``USER_MAPPER`` that crashes while a
token is being verified, and an API key that cannot be sent in a header.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.views.debug import ExceptionReporter
from rest_framework.test import APIClient

from django_pi_payments.models import PaymentEvent

from ..reporting import PI_FILTER, reporter, reporter_filter
from .conftest import AUTH_URL, ME_URL

APPROVE_URL = "/pi_payment/approve"
CANCEL_URL = "/pi_payment/cancel"


class MapperCrashed(Exception):
    """What the crashing ``USER_MAPPER`` raises."""


def crashing_mapper(user_data: Any, request: Any) -> None:
    raise MapperCrashed("the site's USER_MAPPER failed")


def report_of(response: Any) -> str:
    """The text and HTML (frames with their variables) of the error report of a 500."""
    assert response.status_code == 500
    reporter = ExceptionReporter(response.wsgi_request, *response.exc_info)
    return reporter.get_traceback_text() + reporter.get_traceback_html()


@pytest.fixture
def crashing_sign_in(pi_config: Any) -> Iterator[APIClient]:
    """A client of the app whose first sign-in of a Pioneer crashes inside token verification,
    with the exception reporter filter the docs tell sites to set."""
    pi_config(USER_MAPPER=crashing_mapper)
    with reporter_filter(PI_FILTER):
        yield APIClient(raise_request_exception=False)


def test_bearer_token_is_not_in_the_report(crashing_sign_in, pioneer):
    _user, token = pioneer
    response = crashing_sign_in.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {token}")
    text = report_of(response)
    assert "MapperCrashed" in text
    assert "in verify_access_token" in text
    assert "HTTP_AUTHORIZATION" in text
    assert token not in text


def test_body_token_is_not_in_the_report(crashing_sign_in, pi_sandbox, pioneer):
    user, token = pioneer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    response = crashing_sign_in.post(
        APPROVE_URL, {"paymentId": identifier, "accessToken": token}, format="json"
    )
    text = report_of(response)
    assert "in authenticate_credentials" in text
    assert token not in text


def test_sign_in_token_is_not_in_the_report(crashing_sign_in, pioneer):
    _user, token = pioneer
    response = crashing_sign_in.post(AUTH_URL, {"accessToken": token}, format="json")
    text = report_of(response)
    assert "in post" in text
    assert token not in text


def test_backend_token_is_not_in_the_report(pi_config, pioneer):
    _user, token = pioneer
    pi_config(USER_MAPPER=crashing_mapper)
    with reporter_filter(PI_FILTER), pytest.raises(MapperCrashed) as raised:
        authenticate(None, pi_access_token=token)
    report = reporter(raised.value)
    text = report.get_traceback_text() + report.get_traceback_html()
    assert "in authenticate" in text
    assert token not in text


@pytest.mark.parametrize("api_key", ["k3yReadFromAFile0123456789\n", "k3y\u2013dash0123456789"])
def test_unsendable_api_key_answers_503_and_leaks_nowhere(
    app, pi_config, pi_sandbox, pioneer, watched_secrets, caplog, api_key
):
    user, _token = pioneer
    identifier = pi_sandbox.create_payment(user["uid"], "1", memo="m")["identifier"]
    pi_config(API_KEY=api_key)
    watched_secrets.add(api_key.strip())  # the suite's guard also searches logs and tables
    pi_sandbox.clear_calls()
    with caplog.at_level(logging.DEBUG):
        response = APIClient(raise_request_exception=False).post(
            CANCEL_URL, {"paymentId": identifier}, format="json"
        )
    assert response.status_code == 503
    assert response.json()["error"] == "pi_unavailable"
    assert pi_sandbox.calls() == []
    assert any(
        record.levelno == logging.ERROR and "E005" in record.getMessage()
        for record in caplog.records
    )
    texts = [response.content.decode(), *(record.getMessage() for record in caplog.records)]
    texts += [repr(event.detail) for event in PaymentEvent.objects.all()]
    assert not [text for text in texts if api_key.strip() in text]
