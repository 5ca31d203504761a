"""What the browser's ``window.Pi`` needs from the sandbox: the script, CORS, incomplete lookup."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources

import pytest

from django_pi_payments.testing import SandboxHandle

from .conftest import Api, error_of

SCRIPT = resources.files("django_pi_payments.sandbox").joinpath("static", "pi-sdk.js")


def test_the_script_is_served(api: Api) -> None:
    response = api.get("/sandbox/pi-sdk.js", auth=None)  # a <script src> sends no Origin

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.content == SCRIPT.read_bytes()
    assert b"window.Pi = Object.freeze({ init, authenticate, createPayment });" in response.content


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_script_parses() -> None:
    with resources.as_file(SCRIPT) as path:
        result = subprocess.run(
            ["node", "--check", str(path)], capture_output=True, text=True, check=False
        )
    assert result.returncode == 0, result.stderr


def test_route_literals_are_not_patterns(api: Api) -> None:
    response = api.get("/sandbox/pi-sdkXjs", auth=None)
    assert (response.status_code, error_of(response)) == (404, "not_found")


def test_control_answers_allow_a_shop_on_loopback(api: Api) -> None:
    shop = {"Origin": "http://127.0.0.1:8000"}
    for response in (
        api.get("/sandbox/pi-sdk.js", auth=None, headers=shop),
        api.get("/sandbox/users", auth=None, headers=shop),
        api.post("/sandbox/tokens", json={"uid": "nobody"}, auth=None, headers=shop),  # an error
        api.get("/sandbox/nothing-here", auth=None, headers=shop),
    ):
        assert response.headers["Access-Control-Allow-Origin"] == shop["Origin"], response.url
    for response in (
        api.get("/v2/payments/incomplete_server_payments", headers=shop),
        api.get("/horizon/", headers=shop),
        api.get("/sandbox/users", auth=None),  # not a browser's cross-origin call
    ):
        assert "Access-Control-Allow-Origin" not in response.headers, response.url


def test_control_preflights_are_granted(api: Api) -> None:
    response = api.call(
        "OPTIONS",
        "/sandbox/payments/incomplete",
        auth=None,
        headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization"
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"
    assert api.get("/sandbox/users", auth=None).status_code == 200  # the connection lives on


def test_preflights_elsewhere_are_not_granted(api: Api) -> None:
    response = api.call("OPTIONS", "/v2/me", auth=None)
    assert (response.status_code, error_of(response)) == (405, "method_not_allowed")
    assert "Access-Control-Allow-Origin" not in response.headers


def _incomplete(api: Api, token: str) -> tuple[bool, str | None]:
    response = api.get("/sandbox/payments/incomplete", auth=f"Bearer {token}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"exists", "payment"}
    return body["exists"], body["payment"] and body["payment"]["identifier"]


def test_incomplete_payment_needs_a_valid_access_token(api: Api, sb: SandboxHandle) -> None:
    _, token = sb.login()
    sb.revoke_token(token)
    for auth in (None, f"Key {sb.api_key}", "Bearer forged", f"Bearer {token}"):
        response = api.get("/sandbox/payments/incomplete", auth=auth)
        assert (response.status_code, error_of(response)) == (401, "invalid_access_token")
    assert api.post("/sandbox/payments/incomplete", auth=None).status_code == 405


def test_incomplete_payment_is_the_users_paid_uncompleted_one(api: Api, sb: SandboxHandle) -> None:
    user, token = sb.login()
    other, _ = sb.login()
    assert _incomplete(api, token) == (False, None)

    open_one = sb.create_payment(user["uid"], 1)["identifier"]
    assert api.post(f"/v2/payments/{open_one}/approve").status_code == 200
    assert _incomplete(api, token) == (False, None)  # approved, no transaction yet

    sb.submit_transaction(open_one)
    assert _incomplete(api, token) == (True, open_one)

    others = sb.create_payment(other["uid"], 1)["identifier"]
    assert api.post(f"/v2/payments/{others}/approve").status_code == 200
    sb.submit_transaction(others)
    assert _incomplete(api, token) == (True, open_one)  # never another user's

    txid = sb.payment(open_one)["transaction"]["txid"]
    assert api.post(f"/v2/payments/{open_one}/complete", json={"txid": txid}).status_code == 200
    assert _incomplete(api, token) == (False, None)


def test_cancelled_and_app_to_user_payments_are_not_incomplete(api: Api, sb: SandboxHandle) -> None:
    user, token = sb.login()
    cancelled = sb.create_payment(user["uid"], 1)["identifier"]
    sb.user_cancel(cancelled)
    payout = {"payment": {"amount": 1, "memo": "payout", "metadata": {}, "uid": user["uid"]}}
    assert api.post("/v2/payments", json=payout).status_code == 200
    assert _incomplete(api, token) == (False, None)


def test_the_incomplete_payment_is_a_payment_dto(api: Api, sb: SandboxHandle) -> None:
    user, token = sb.login()
    identifier = sb.create_payment(user["uid"], "2.5", memo="pie")["identifier"]
    assert api.post(f"/v2/payments/{identifier}/approve").status_code == 200
    sb.submit_transaction(identifier)

    body = api.get("/sandbox/payments/incomplete", auth=f"Bearer {token}").json()
    assert body["payment"] == api.get(f"/v2/payments/{identifier}").json()
