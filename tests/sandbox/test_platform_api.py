"""The Platform API routes: auth, shapes, A2U creation, verification and error envelopes."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest

from django_pi_payments.sandbox import horizon
from django_pi_payments.sandbox.errors import STATUS_BY_CODE, status_for
from django_pi_payments.testing import SandboxHandle

from .conftest import API_KEY, Api, FakeClock, error_of

PAYMENT_ROUTES = [
    ("POST", "/v2/payments"),
    ("GET", "/v2/payments/abc"),
    ("POST", "/v2/payments/abc/approve"),
    ("POST", "/v2/payments/abc/complete"),
    ("POST", "/v2/payments/abc/cancel"),
    ("GET", "/v2/payments/incomplete_server_payments"),
]


def a2u_body(uid: str, amount: Any = 1.5, **extra: Any) -> dict[str, Any]:
    return {
        "payment": {"amount": amount, "memo": "payout", "metadata": {"k": 1}, "uid": uid, **extra}
    }


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PAYMENT_ROUTES)
@pytest.mark.parametrize(
    "auth",
    [None, API_KEY, f"key {API_KEY}", f"Bearer {API_KEY}", "Key wrong", "Key", f"Token {API_KEY}"],
)
def test_payment_routes_need_the_exact_key_scheme(
    api: Api, method: str, path: str, auth: str | None
) -> None:
    response = api.call(method, path, auth=auth)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_api_key",
        "error_message": "This endpoint requires either a Server API Key or Access Token "
        "authorization.",
    }


def test_me_returns_the_user_dto(sb: SandboxHandle, api: Api) -> None:
    user, token = sb.login(username="alice")
    response = api.get("/v2/me", auth=f"Bearer {token}")
    assert response.status_code == 200
    body = response.json()
    assert body["uid"] == user["uid"]
    assert body["username"] == "alice"
    assert body["credentials"]["scopes"] == ["username", "payments", "wallet_address"]
    valid_until = body["credentials"]["valid_until"]
    assert isinstance(valid_until["timestamp"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", valid_until["iso8601"])
    uuid.UUID(user["uid"], version=4)


def test_me_hides_username_without_the_scope(sb: SandboxHandle, api: Api) -> None:
    _, token = sb.login(scopes=["payments"])
    body = api.get("/v2/me", auth=f"Bearer {token}").json()
    assert "username" not in body
    assert body["credentials"]["scopes"] == ["payments"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("expire", "expired_access_token"),
        ("revoke", "invalid_access_token"),
        ("clock", "expired_access_token"),
        ("scheme", "invalid_access_token"),
        ("key", "invalid_access_token"),
        ("unknown", "invalid_access_token"),
        ("reset", "invalid_access_token"),
    ],
)
def test_me_rejects_bad_tokens(
    sb: SandboxHandle, api: Api, clock: FakeClock, change: str, code: str
) -> None:
    user = sb.create_user()
    token = sb.create_token(user["uid"], ttl_seconds=10)
    auth = f"Bearer {token}"
    if change == "expire":
        sb.expire_token(token)
    elif change == "revoke":
        sb.revoke_token(token)
    elif change == "clock":
        clock.advance(10)
    elif change == "scheme":
        auth = f"bearer {token}"
    elif change == "key":
        auth = f"Key {API_KEY}"
    elif change == "unknown":
        auth = "Bearer nope"
    else:
        sb.reset(config=False)
    response = api.get("/v2/me", auth=auth)
    assert response.status_code == 401
    assert error_of(response) == code


def test_token_control_errors(sb: SandboxHandle, api: Api) -> None:
    for path in ("/sandbox/tokens/expire", "/sandbox/tokens/revoke"):
        response = api.post(path, json={"access_token": "nope"}, auth=None)
        assert (response.status_code, error_of(response)) == (404, "token_not_found")
    response = api.post("/sandbox/tokens", json={"uid": "ghost"}, auth=None)
    assert (response.status_code, error_of(response)) == (404, "user_not_found")
    user = sb.create_user()
    for ttl in ("x", Decimal("1e20"), Decimal("-1e20"), 10**400):
        response = api.post("/sandbox/tokens", json={"uid": user["uid"], "ttl_seconds": ttl})
        assert (response.status_code, error_of(response)) == (400, "invalid_arguments")


# -- A2U creation -----------------------------------------------------------------------------


def test_a2u_create_returns_an_approved_payment(sb: SandboxHandle, api: Api) -> None:
    user = sb.create_user()
    response = api.post("/v2/payments", json=a2u_body(user["uid"], Decimal("0.0000001")))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert '"amount":0.0000001' in response.text
    dto = response.json()
    assert re.fullmatch(r"[A-Za-z0-9]{28}", dto["identifier"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", dto["created_at"])
    assert dto["direction"] == "app_to_user"
    assert dto["from_address"] == sb.set_config()["app_wallet_address"]
    assert dto["to_address"] == user["wallet_address"]
    assert dto["network"] == "Pi Testnet"
    assert dto["metadata"] == {"k": 1}
    assert dto["transaction"] is None
    assert dto["status"] == {
        "developer_approved": True,
        "transaction_verified": False,
        "developer_completed": False,
        "cancelled": False,
        "user_cancelled": False,
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "invalid_arguments"),
        ([], "invalid_arguments"),
        ({"amount": 1, "memo": "m", "metadata": {}, "uid": "u"}, "invalid_arguments"),
        ({"payment": "x"}, "invalid_arguments"),
        ({"payment": {"memo": "m", "uid": "U"}}, "missing_param"),
        ({"payment": {"amount": 1, "uid": "U"}}, "missing_param"),
        ({"payment": {"amount": 1, "memo": "m"}}, "missing_param"),
        ({"payment": {"amount": 0, "memo": "m", "uid": "U"}}, "invalid_amount"),
        ({"payment": {"amount": -1, "memo": "m", "uid": "U"}}, "invalid_amount"),
        ({"payment": {"amount": "1", "memo": "m", "uid": "U"}}, "invalid_amount"),
        ({"payment": {"amount": True, "memo": "m", "uid": "U"}}, "invalid_amount"),
        ({"payment": {"amount": Decimal("1.00000001"), "memo": "m", "uid": "U"}}, "invalid_amount"),
        ({"payment": {"amount": Decimal("1E+12"), "memo": "m", "uid": "U"}}, "invalid_amount"),
        ({"payment": {"amount": 1, "memo": 5, "uid": "U"}}, "invalid_arguments"),
        ({"payment": {"amount": 1, "memo": "m", "uid": 5}}, "invalid_arguments"),
        ({"payment": {"amount": 1, "memo": "m", "uid": "U", "metadata": [1]}}, "invalid_metadata"),
        ({"payment": {"amount": 1, "memo": "m", "uid": "ghost"}}, "user_not_found"),
    ],
)
def test_a2u_create_validation(sb: SandboxHandle, api: Api, body: Any, code: str) -> None:
    user = sb.create_user(uid="U")
    assert user["uid"] == "U"
    response = api.post("/v2/payments", json=body) if body is not None else api.post("/v2/payments")
    assert error_of(response) == code
    assert response.status_code == status_for(code)
    assert sb.payments() == []


def test_user_not_found_message(api: Api) -> None:
    response = api.post("/v2/payments", json=a2u_body("ghost"))
    assert response.status_code == 404
    assert response.json()["error_message"] == (
        "User with uid ghost was not found. Please check the uid again."
    )


def test_invalid_json_body(api: Api) -> None:
    response = api.post("/v2/payments", data=b"{nope", headers={"Content-Type": "application/json"})
    assert error_of(response) == "invalid_arguments"
    response = api.post("/v2/payments", data=b'{"payment": NaN}')
    assert error_of(response) == "invalid_arguments"


def test_lenient_create_body_accepts_the_flat_form(sb: SandboxHandle, api: Api) -> None:
    user = sb.create_user()
    flat = a2u_body(user["uid"])["payment"]
    assert error_of(api.post("/v2/payments", json=flat)) == "invalid_arguments"
    sb.set_config(lenient_create_body=True)
    assert api.post("/v2/payments", json=flat).status_code == 200


def test_missing_wallet(sb: SandboxHandle, api: Api) -> None:
    user = sb.create_user(wallet_address=None)
    assert user["wallet_address"] is None
    assert error_of(api.post("/v2/payments", json=a2u_body(user["uid"]))) == "missing_wallet"
    response = api.post(
        "/sandbox/payments", json={"uid": user["uid"], "amount": 1, "memo": "m"}, auth=None
    )
    assert error_of(response) == "missing_wallet"


@pytest.mark.parametrize(
    ("scope", "same_user", "blocked"),
    [("app", True, True), ("app", False, True), ("user", True, True), ("user", False, False)],
)
def test_one_a2u_in_flight(
    sb: SandboxHandle, api: Api, scope: str, same_user: bool, blocked: bool
) -> None:
    sb.set_config(a2u_lock_scope=scope)
    first_user, second_user = sb.create_user(), sb.create_user()
    first = api.post("/v2/payments", json=a2u_body(first_user["uid"])).json()
    uid = first_user["uid"] if same_user else second_user["uid"]
    response = api.post("/v2/payments", json=a2u_body(uid))
    if blocked:
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "ongoing_payment_found"
        assert body["error_message"] == (
            "You need to complete the ongoing payment first to create a new one."
        )
        assert body["payment"]["identifier"] == first["identifier"]
        api.post(f"/v2/payments/{first['identifier']}/cancel")
        assert api.post("/v2/payments", json=a2u_body(uid)).status_code == 200
    else:
        assert response.status_code == 200


def test_incomplete_server_payments(sb: SandboxHandle, api: Api) -> None:
    def listed() -> set[str]:
        response = api.get("/v2/payments/incomplete_server_payments")
        assert response.status_code == 200
        assert list(response.json()) == ["incomplete_server_payments"]
        return {p["identifier"] for p in response.json()["incomplete_server_payments"]}

    assert listed() == set()
    a2u = api.post("/v2/payments", json=a2u_body(sb.create_user()["uid"])).json()["identifier"]
    u2a = sb.create_payment(sb.create_user()["uid"], 1)["identifier"]
    assert listed() == {a2u}
    api.post(f"/v2/payments/{u2a}/approve")
    assert listed() == {a2u}
    txid = sb.submit_transaction(u2a)["txid"]
    assert listed() == {a2u, u2a}
    api.post(f"/v2/payments/{u2a}/complete", json={"txid": txid})
    api.post(f"/v2/payments/{a2u}/cancel")
    assert listed() == set()


def test_get_payment_and_not_found(sb: SandboxHandle, api: Api) -> None:
    payment = sb.create_payment(sb.create_user()["uid"], 2, memo="hello", metadata={"order": 7})
    response = api.get(f"/v2/payments/{payment['identifier']}")
    assert response.json() == payment
    assert payment["amount"] == 2
    assert payment["direction"] == "user_to_app"
    assert payment["to_address"] == sb.set_config()["app_wallet_address"]
    response = api.get("/v2/payments/nope")
    assert (response.status_code, error_of(response)) == (404, "payment_not_found")


# -- approve / complete specifics -------------------------------------------------------------


def test_duplicate_approve_is_configurable(sb: SandboxHandle, api: Api) -> None:
    identifier = sb.create_payment(sb.create_user()["uid"], 1)["identifier"]
    assert api.post(f"/v2/payments/{identifier}/approve").status_code == 200
    assert api.post(f"/v2/payments/{identifier}/approve", data=b"").status_code == 200
    sb.set_config(duplicate_approve_error="already_approved")
    response = api.post(f"/v2/payments/{identifier}/approve")
    assert (response.status_code, error_of(response)) == (400, "already_approved")
    assert response.json()["payment"]["identifier"] == identifier


def _ledger_tx(sb: SandboxHandle, identifier: str, override: dict[str, Any]) -> str:
    return str(sb.submit_transaction(identifier, **override)["txid"])


@pytest.mark.parametrize(
    ("override", "verification_error"),
    [
        ({"memo": "another memo"}, "tx_memo_payment_identifier_mismatch"),
        ({"memo": None}, "tx_memo_payment_identifier_mismatch"),
        ({"amount": 1.4}, "tx_amount_mismatch"),
        ({"to_address": "other"}, "tx_destination_mismatch"),
        ({"from_address": "other"}, "tx_source_mismatch"),
        ({"successful": False}, "tx_not_successful"),
        (None, "tx_not_found"),
    ],
)
def test_a2u_complete_verifies_the_ledger_tx(
    sb: SandboxHandle, api: Api, override: dict[str, Any] | None, verification_error: str
) -> None:
    user = sb.create_user()
    identifier = api.post("/v2/payments", json=a2u_body(user["uid"])).json()["identifier"]
    if override is None:
        txid = "0" * 64
    else:
        for key in ("to_address", "from_address"):
            if override.get(key) == "other":
                override[key] = sb.create_user()["wallet_address"]
        txid = _ledger_tx(sb, identifier, override)
    response = api.post(f"/v2/payments/{identifier}/complete", json={"txid": txid})
    assert response.status_code == 400
    assert response.json()["error"] == "verification_failed"
    assert response.json()["verification_error"] == verification_error
    good = _ledger_tx(sb, identifier, {})
    response = api.post(f"/v2/payments/{identifier}/complete", json={"txid": good})
    assert response.status_code == 200
    assert response.json()["transaction"]["txid"] == good
    assert response.json()["transaction"]["verified"] is True


def test_u2a_tx_verification_follows_the_tx(sb: SandboxHandle, api: Api) -> None:
    identifier = sb.create_payment(sb.create_user()["uid"], 1)["identifier"]
    api.post(f"/v2/payments/{identifier}/approve")
    result = sb.submit_transaction(identifier, amount=Decimal("0.5"))
    assert result["payment"]["transaction"]["verified"] is False
    assert result["payment"]["status"]["transaction_verified"] is False
    assert re.fullmatch(r"[0-9a-f]{64}", result["txid"])
    link = result["payment"]["transaction"]["_link"]
    assert link == f"{sb.horizon_url}/transactions/{result['txid']}"
    response = api.post(f"/v2/payments/{identifier}/complete", json={"txid": result["txid"]})
    assert error_of(response) == "not_verified"
    response = api.post(f"/v2/payments/{identifier}/cancel")
    assert error_of(response) == "payment_tx_present"
    assert "blockchain transaction" in response.json()["error_message"]


# -- U2A creation as the Pioneer --------------------------------------------------------------


def test_new_u2a_cancels_the_open_one_without_tx(sb: SandboxHandle, api: Api) -> None:
    user = sb.create_user()
    first = sb.create_payment(user["uid"], 1)["identifier"]
    second = sb.create_payment(user["uid"], 2)["identifier"]
    assert sb.payment(first)["status"]["cancelled"] is True
    assert sb.payment(first)["status"]["user_cancelled"] is False
    api.post(f"/v2/payments/{second}/approve")
    sb.submit_transaction(second)
    response = api.post("/sandbox/payments", json={"uid": user["uid"], "amount": 3, "memo": "m"})
    assert response.status_code == 400
    assert response.json()["error"] == "ongoing_payment_found"
    assert response.json()["payment"]["identifier"] == second


def test_u2a_by_access_token_and_scope(sb: SandboxHandle, api: Api) -> None:
    user, token = sb.login()
    body = {"access_token": token, "amount": 1, "memo": "m"}
    created = api.post("/sandbox/payments", json=body, auth=None).json()
    assert created["user_uid"] == user["uid"]
    sb.revoke_token(token)
    response = api.post("/sandbox/payments", json=body, auth=None)
    assert error_of(response) == "invalid_access_token"
    limited = sb.create_user(scopes=["username"])
    response = api.post("/sandbox/payments", json={"uid": limited["uid"], "amount": 1, "memo": "m"})
    assert error_of(response) == "missing_scope"


# -- control API validation and generic errors ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/sandbox/config", {"latency_ms": -1}, "invalid_arguments"),
        ("/sandbox/config", {"nope": 1}, "invalid_arguments"),
        ("/sandbox/config", {"a2u_lock_scope": "galaxy"}, "invalid_arguments"),
        ("/sandbox/config", {"lenient_create_body": "yes"}, "invalid_arguments"),
        ("/sandbox/config", {"duplicate_approve_error": 3}, "invalid_arguments"),
        ("/sandbox/config", {"approval_timeout_seconds": "1"}, "invalid_arguments"),
        ("/sandbox/config", {"approval_timeout_seconds": 10**400}, "invalid_arguments"),
        ("/sandbox/config", {"approval_timeout_seconds": 10**9}, "invalid_arguments"),
        ("/sandbox/config", {"latency_ms": 10**12}, "invalid_arguments"),
        ("/sandbox/config", {"network": ""}, "invalid_arguments"),
        ("/sandbox/config", {"app_wallet_address": "GABC"}, "invalid_address"),
        ("/sandbox/users", {"wallet_address": "G" * 56}, "invalid_address"),
        ("/sandbox/users", {"scopes": "payments"}, "invalid_arguments"),
        ("/sandbox/users", {"uid": ""}, "invalid_arguments"),
        ("/sandbox/users", {"username": 1}, "invalid_arguments"),
        ("/sandbox/accounts", {"account_id": "nope"}, "invalid_address"),
        ("/sandbox/reset", {"config": "yes"}, "invalid_arguments"),
        ("/sandbox/users", [1], "invalid_arguments"),
    ],
)
def test_control_validation(api: Api, path: str, body: Any, code: str) -> None:
    response = api.post(path, json=body, auth=None)
    assert (response.status_code, error_of(response)) == (400, code)


def test_unknown_routes_and_methods(api: Api) -> None:
    response = api.get("/v3/nothing")
    assert (response.status_code, error_of(response)) == (404, "not_found")
    response = api.call("DELETE", "/v2/payments/abc")
    assert (response.status_code, error_of(response)) == (405, "method_not_allowed")
    response = api.call("PUT", "/horizon/fee_stats")
    assert (response.status_code, error_of(response)) == (405, "method_not_allowed")


def test_unexpected_failure_is_a_json_500(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(state: object) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(horizon, "fee_stats", broken)
    response = api.get("/horizon/fee_stats")
    assert (response.status_code, error_of(response)) == (500, "sandbox_internal_error")


def test_status_table() -> None:
    assert {code: status_for(code) for code in STATUS_BY_CODE} == STATUS_BY_CODE
    assert status_for("already_completed") == 400
    assert status_for("forbidden") == 403


def test_users_upsert_and_list(sb: SandboxHandle) -> None:
    user = sb.create_user(username="bob")
    updated = sb.create_user(uid=user["uid"], scopes=["payments"])
    assert updated == {**user, "scopes": ["payments"]}
    assert sb.request("GET", "/sandbox/users") == [updated]


@pytest.mark.parametrize("path", ["/v2/payments", "/v2/payments/abc/complete", "/sandbox/users"])
def test_deeply_nested_json_body_is_invalid_arguments(api: Api, path: str) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    response = api.post(path, data=nested, headers={"Content-Type": "application/json"})
    assert (response.status_code, error_of(response)) == (400, "invalid_arguments")


@pytest.mark.parametrize(
    "body",
    [
        b'{"payment": {"amount": 1e9999999, "memo": "m", "metadata": {}, "uid": "U"}}',
        b'{"payment": {"amount": 1, "memo": "m", "metadata": {"x": 1e9999999}, "uid": "U"}}',
    ],
)
def test_numbers_out_of_range_are_refused_and_leave_the_state_usable(
    sb: SandboxHandle, api: Api, body: bytes
) -> None:
    sb.create_user(uid="U")
    response = api.post("/v2/payments", data=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, error_of(response)) == (400, "invalid_arguments")
    listed = api.get("/v2/payments/incomplete_server_payments")
    assert listed.json() == {"incomplete_server_payments": []}


def test_an_amount_beyond_the_blockchain_s_maximum_is_refused(sb: SandboxHandle, api: Api) -> None:
    user = sb.create_user()
    response = api.post(
        "/sandbox/payments", json={"uid": user["uid"], "amount": 10**30, "memo": "m"}, auth=None
    )
    assert (response.status_code, error_of(response)) == (400, "invalid_amount")
    response = api.post(
        "/sandbox/accounts",
        json={"account_id": user["wallet_address"], "balance": 10**30},
        auth=None,
    )
    assert (response.status_code, error_of(response)) == (400, "invalid_arguments")
    assert api.get(f"/horizon/accounts/{user['wallet_address']}").status_code == 200
