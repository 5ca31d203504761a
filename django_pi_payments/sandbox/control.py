"""Handlers of the control API (``/sandbox/...``): the Pioneer's and the operator's side.

No authentication; JSON in and out. These calls are neither logged, delayed nor faulted.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from . import horizon, payments
from .errors import SandboxError
from .faults import API_ROUTE_IDS
from .ids import iso_millis
from .messages import Request, Response, json_response
from .models import Token
from .state import SandboxState

__all__ = [
    "add_fault",
    "calls",
    "clear_calls",
    "clear_faults",
    "config",
    "create_payment",
    "create_token",
    "create_user",
    "expire_payment",
    "expire_token",
    "faults",
    "incomplete_payment",
    "ledger",
    "list_payments",
    "list_users",
    "payment",
    "pi_sdk_js",
    "put_account",
    "reset",
    "revoke_token",
    "stats",
    "submit_transaction",
    "update_config",
    "user_cancel",
]


def _fields(request: Request, *names: str) -> dict[str, Any]:
    """The request's JSON object; ``invalid_arguments`` naming each field not in ``names``.

    A misspelt field would otherwise be ignored without a word: a test that asks for a bad
    transaction would get a good one.
    """
    data = request.json_object()
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SandboxError(
            "invalid_arguments", f"unknown fields: {unknown}; this route takes {sorted(names)}."
        )
    return data


def reset(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/reset``: clear everything but the config (``{"config": true}``: it too)."""
    restore = _fields(request, "config").get("config", False)
    if not isinstance(restore, bool):
        raise SandboxError("invalid_arguments", '"config" must be a boolean.')
    state.reset(restore_config=restore)
    return json_response({"reset": True, "config": state.config.to_dict()})


def config(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/config``."""
    return json_response(state.config.to_dict())


def update_config(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/config``: change some settings, return them all."""
    return json_response(state.update_config(request.json_object()).to_dict())


def create_user(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/users``: create (or update, by ``uid``) a Pioneer."""
    data = _fields(request, "uid", "username", "scopes", "wallet_address")
    return json_response(state.upsert_user(data).to_dict())


def list_users(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/users``."""
    with state.lock:
        return json_response([user.to_dict() for user in state.users.values()])


def _token(token: Token) -> dict[str, Any]:
    return {
        "access_token": token.token,
        "valid_until": iso_millis(token.valid_until),
        "uid": token.uid,
    }


def create_token(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/tokens`` ``{"uid", "ttl_seconds"?}``."""
    data = _fields(request, "uid", "ttl_seconds")
    return json_response(_token(state.create_token(data.get("uid"), data.get("ttl_seconds", 3600))))


def expire_token(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/tokens/expire`` ``{"access_token"}``."""
    token = _fields(request, "access_token").get("access_token")
    return json_response(_token(state.change_token(token, revoke=False)))


def revoke_token(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/tokens/revoke`` ``{"access_token"}``."""
    token = _fields(request, "access_token").get("access_token")
    return json_response(_token(state.change_token(token, revoke=True)))


def create_payment(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/payments``: a Pioneer starts a U2A payment."""
    data = _fields(request, "uid", "access_token", "amount", "memo", "metadata")
    created = payments.create_u2a(state, data)
    return json_response(created.to_dto(request.base_url))


def list_payments(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/payments``: every payment's DTO."""
    with state.lock:
        payments.sweep(state)
        found = list(state.payments.values())
        return json_response([item.to_dto(request.base_url) for item in found])


def payment(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/payments/{id}``."""
    found = payments.get_payment(state, request.params["identifier"])
    return json_response(found.to_dto(request.base_url))


def incomplete_payment(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/payments/incomplete`` with ``Authorization: Bearer <access token>``.

    ``{"exists": bool, "payment": PaymentDTO | null}``: the shape of Pi's client route
    ``GET /v2/payments/incomplete``, which the Pi SDK checks at ``authenticate``.
    """
    user, _ = state.authenticate_bearer(request.authorization)
    found = payments.incomplete_user_payment(state, user)
    dto = found.to_dto(request.base_url) if found is not None else None
    return json_response({"exists": found is not None, "payment": dto})


def pi_sdk_js(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/pi-sdk.js``: the browser's ``window.Pi`` that drives this sandbox."""
    script = resources.files("django_pi_payments.sandbox").joinpath("static", "pi-sdk.js")
    return Response(
        200,
        script.read_bytes(),
        "text/javascript; charset=utf-8",
        headers=(("Cache-Control", "no-cache"),),
    )


def submit_transaction(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/payments/{id}/transaction``: the Pioneer's tx reaches the ledger."""
    overrides = _fields(
        request, "amount", "memo", "to_address", "from_address", "verified", "successful"
    )
    tx, found = payments.submit_user_transaction(state, request.params["identifier"], overrides)
    return json_response({"txid": tx.hash, "payment": found.to_dto(request.base_url)})


def user_cancel(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/payments/{id}/user_cancel``."""
    found = payments.user_cancel(state, request.params["identifier"])
    return json_response(found.to_dto(request.base_url))


def expire_payment(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/payments/{id}/expire``: the approval timeout fires now."""
    found = payments.expire(state, request.params["identifier"])
    return json_response(found.to_dto(request.base_url))


def put_account(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/accounts`` ``{"account_id", "balance"?, "sequence"?}``."""
    account = state.put_account(_fields(request, "account_id", "balance", "sequence"))
    with state.lock:
        return json_response(horizon.account_resource(account, request.horizon_url))


def ledger(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/ledger``: every transaction, oldest first."""
    with state.lock:
        return json_response([tx.to_dict() for tx in state.transactions.values()])


def add_fault(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/faults``: register a fault, return its ``id``."""
    return json_response({"id": state.faults.add(request.json_object()).id})


def faults(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/faults``."""
    return json_response(state.faults.to_list())


def clear_faults(state: SandboxState, request: Request) -> Response:
    """``DELETE /sandbox/faults``."""
    state.faults.clear()
    return json_response({"cleared": True})


def calls(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/calls[?route=ID]``."""
    route = request.query.get("route")
    if route is not None and route not in API_ROUTE_IDS:
        raise SandboxError("invalid_arguments", f'"route" must be one of {list(API_ROUTE_IDS)}.')
    return json_response(state.traffic.calls(route))


def clear_calls(state: SandboxState, request: Request) -> Response:
    """``DELETE /sandbox/calls``: clear the call log and the traffic counters."""
    state.traffic.reset()
    return json_response({"cleared": True})


def stats(state: SandboxState, request: Request) -> Response:
    """``GET /sandbox/stats``: ``{"connections", "requests"}``."""
    return json_response(state.traffic.stats())
