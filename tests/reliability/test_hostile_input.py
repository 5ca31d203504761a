"""Hostile input on every route: each is answered 4xx (429 for floods) and nothing is stored.

Oversized bodies, JSON nested deeper than Python's parser goes, bodies in other content types
(including well-formed forms carrying valid ids), and floods that must run into the throttles,
forged access tokens included.
Nothing may reach the database and no state-changing call may reach Pi.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from rest_framework.test import APIClient

from django_pi_payments.models import Payment, PaymentEvent, PiUser

ROUTES = [
    ("POST", "auth"),
    ("GET", "me"),
    ("POST", "approve"),
    ("POST", "complete"),
    ("POST", "cancel"),
    ("POST", "error"),
    ("POST", "incomplete"),
    ("GET", "payments"),
    ("GET", "payments/{identifier}"),
]
MEGABYTE = 1024 * 1024


def stored() -> tuple[int, ...]:
    """Row counts of everything the app may write."""
    return (
        Payment.objects.count(),
        PaymentEvent.objects.count(),
        PiUser.objects.count(),
        get_user_model().objects.count(),
        Session.objects.count(),
    )


class Target:
    """A real payment, its payer's token and a txid: the valid ids hostile bodies carry."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        user, self.token = sandbox.login(username="target")
        self.identifier = sandbox.create_payment(user["uid"], "2.5")["identifier"]
        self.txid = "ab" * 32

    def body(self, **extra: Any) -> dict[str, Any]:
        """A body any callback would accept, plus ``extra``."""
        return {
            "paymentId": self.identifier,
            "accessToken": self.token,
            "transactionId": self.txid,
            "error": "boom",
            **extra,
        }

    def path(self, route: str) -> str:
        return "/pi_payment/" + route.format(identifier=self.identifier)

    def state_changing_pi_calls(self) -> list[dict[str, Any]]:
        return [call for call in self.sandbox.calls() if call["method"] == "POST"]


@pytest.fixture
def target(pi_settings_for_sandbox: Any, db: None) -> Target:
    return Target(pi_settings_for_sandbox)


def send(method: str, path: str, body: bytes, content_type: str, **extra: Any) -> Any:
    return APIClient().generic(method, path, body, content_type=content_type, **extra)


def assert_refused(response: Any, *statuses: int) -> dict[str, Any]:
    """A 4xx in the app's error format, one of ``statuses`` when given."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.content[:300])
    document = json.loads(response.content)
    assert set(document) >= {"error", "detail"}, document
    return document


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def padded(target: Target) -> bytes:
    """Valid ids (a real payment, its payer's token) padded past a megabyte."""
    return json.dumps(target.body(pad="x" * (MEGABYTE * 3 // 2))).encode()


def huge_id(target: Target) -> bytes:
    return json.dumps({"paymentId": "A" * 3 * MEGABYTE}).encode()


def garbage(target: Target) -> bytes:
    return b"\xff{" * (MEGABYTE // 2)


def deeply_nested(target: Target) -> bytes:
    """Valid ids beside 20,000 nested lists: small enough to be read, too deep to be parsed."""
    return json.dumps(target.body())[:-1].encode() + b', "deep": ' + nested(20_000) + b"}"


def nested_and_oversized(target: Target) -> bytes:
    return nested(200_000)


OVERSIZED: dict[str, Callable[[Target], bytes]] = {
    "valid ids padded to 1.5 MB": padded,
    "3 MB paymentId": huge_id,
    "1 MB of garbage": garbage,
    "200,000 levels of nesting": nested_and_oversized,
}


@pytest.mark.parametrize("case", OVERSIZED)
@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_oversized_bodies(target: Target, method, route, case):
    before = stored()
    target.sandbox.clear_calls()
    response = send(method, target.path(route), OVERSIZED[case](target), "application/json")
    assert assert_refused(response, 413)["error"] == "request_too_large"
    assert stored() == before
    assert target.state_changing_pi_calls() == []


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_json_nested_too_deeply(target: Target, method, route):
    before = stored()
    target.sandbox.clear_calls()
    response = send(method, target.path(route), deeply_nested(target), "application/json")
    if method == "POST":  # the GET routes never read a body
        assert assert_refused(response, 400)["error"] == "parse_error"
    else:
        assert_refused(response)
    assert stored() == before
    assert target.state_changing_pi_calls() == []


def form(target: Target) -> bytes:
    return "&".join(f"{key}={value}" for key, value in target.body().items()).encode()


def multipart(target: Target) -> bytes:
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        for key, value in target.body().items()
    ]
    return "".join(parts).encode() + b"--b--\r\n"


def json_as_text(target: Target) -> bytes:
    return json.dumps(target.body()).encode()


def xml(target: Target) -> bytes:
    return f"<payment><paymentId>{target.identifier}</paymentId></payment>".encode()


FORMS: dict[str, Callable[[Target], bytes]] = {
    "application/x-www-form-urlencoded": form,
    "multipart/form-data; boundary=b": multipart,
    "text/plain": json_as_text,
    "application/xml": xml,
}


@pytest.mark.parametrize("content_type", FORMS)
@pytest.mark.parametrize(("method", "route"), [r for r in ROUTES if r[0] == "POST"])
def test_wrong_content_types_are_refused_even_with_valid_ids(
    target: Target, method, route, content_type
):
    before = stored()
    target.sandbox.clear_calls()
    response = send(method, target.path(route), FORMS[content_type](target), content_type)
    assert assert_refused(response, 415)["error"] == "unsupported_media_type"
    assert stored() == before
    assert target.state_changing_pi_calls() == []


FLOOD = 150  # over both default rates: 30/min (auth, me) and 120/min (callbacks, payments)


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_floods_hit_the_throttles(target: Target, method, route):
    """Anonymous floods everywhere; the payment lists, which need a user, flooded by one."""
    own_payments = route.startswith("payments")
    extra = {"HTTP_AUTHORIZATION": f"Bearer {target.token}"} if own_payments else {}
    if own_payments:  # the user exists before the flood: it is not what the flood stores
        assert APIClient().get("/pi_payment/me", **extra).status_code == 200
    before = stored()
    target.sandbox.clear_calls()
    body = json.dumps({"paymentId": "NotAPayment0"}).encode() if method == "POST" else b""
    statuses = [
        send(method, target.path(route), body, "application/json", **extra).status_code
        for _ in range(FLOOD)
    ]
    assert 429 in statuses, statuses
    assert all(400 <= status < 500 or (own_payments and status == 200) for status in statuses)
    first_refused = statuses.index(429)
    assert set(statuses[first_refused:]) == {429}
    assert first_refused in (30, 120)  # the auth scope's rate, or the callbacks' one
    assert stored() == before
    assert target.state_changing_pi_calls() == []


TOKEN_ROUTES = [
    ("POST", "auth"),
    ("GET", "me"),
    ("POST", "approve"),
    ("GET", "payments"),
    ("GET", "payments/{identifier}"),
]


@pytest.mark.parametrize(("method", "route"), TOKEN_ROUTES)
def test_floods_of_forged_tokens_hit_the_throttles(target: Target, method, route):
    """Each forged token costs one call to Pi's ``/me`` until the client's refusals reach 30."""
    before = stored()
    target.sandbox.clear_calls()
    forged = "forged-access-token"
    body = json.dumps({"paymentId": target.identifier, "accessToken": forged}).encode()
    extra = {} if method == "POST" else {"HTTP_AUTHORIZATION": f"Bearer {forged}"}
    statuses = [
        send(
            method,
            target.path(route),
            body if method == "POST" else b"",
            "application/json",
            **extra,
        ).status_code
        for _ in range(FLOOD)
    ]
    first_refused = statuses.index(429)
    assert set(statuses[:first_refused]) == {401}
    assert set(statuses[first_refused:]) == {429}
    assert first_refused == 30
    assert len(target.sandbox.calls(route="me")) == 30
    assert len(target.sandbox.calls()) == 30
    assert stored() == before
