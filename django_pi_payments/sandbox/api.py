"""Handlers of the simulated Pi Platform API (``/v2``) and Horizon (``/horizon``) routes."""

from __future__ import annotations

from . import horizon, payments
from .errors import HorizonProblem
from .ids import horizon_time
from .messages import Request, Response, json_response
from .models import LedgerTx, Payment
from .state import SandboxState

__all__ = [
    "approve",
    "cancel",
    "complete",
    "create_payment",
    "get_payment",
    "horizon_account",
    "horizon_account_transactions",
    "horizon_fee_stats",
    "horizon_ledgers",
    "horizon_operations",
    "horizon_root",
    "horizon_submit",
    "horizon_transaction",
    "incomplete_server_payments",
    "me",
]


def _payment(payment: Payment, request: Request) -> Response:
    return json_response(payment.to_dto(request.base_url))


def me(state: SandboxState, request: Request) -> Response:
    """``GET /v2/me``: the UserDTO of the bearer token."""
    user, token = state.authenticate_bearer(request.authorization)
    body = {
        "uid": user.uid,
        "credentials": {
            "scopes": list(user.scopes),
            "valid_until": {
                "timestamp": int(token.valid_until),
                "iso8601": horizon_time(token.valid_until),
            },
        },
    }
    if "username" in user.scopes:
        body["username"] = user.username
    return json_response(body)


def create_payment(state: SandboxState, request: Request) -> Response:
    """``POST /v2/payments``: create an A2U payment."""
    state.check_api_key(request.authorization)
    return _payment(payments.create_a2u(state, request.json()), request)


def get_payment(state: SandboxState, request: Request) -> Response:
    """``GET /v2/payments/{id}``."""
    state.check_api_key(request.authorization)
    return _payment(payments.get_payment(state, request.params["identifier"]), request)


def approve(state: SandboxState, request: Request) -> Response:
    """``POST /v2/payments/{id}/approve`` (the body is ignored)."""
    state.check_api_key(request.authorization)
    return _payment(payments.approve(state, request.params["identifier"]), request)


def complete(state: SandboxState, request: Request) -> Response:
    """``POST /v2/payments/{id}/complete`` with ``{"txid"}``."""
    state.check_api_key(request.authorization)
    identifier = request.params["identifier"]
    return _payment(payments.complete(state, identifier, request.json()), request)


def cancel(state: SandboxState, request: Request) -> Response:
    """``POST /v2/payments/{id}/cancel`` (the body is ignored)."""
    state.check_api_key(request.authorization)
    return _payment(payments.cancel(state, request.params["identifier"]), request)


def incomplete_server_payments(state: SandboxState, request: Request) -> Response:
    """``GET /v2/payments/incomplete_server_payments``: the wrapper object."""
    state.check_api_key(request.authorization)
    found = payments.incomplete_server_payments(state)
    dtos = [payment.to_dto(request.base_url) for payment in found]
    return json_response({"incomplete_server_payments": dtos})


def _transaction(state: SandboxState, txid: str) -> LedgerTx:
    with state.lock:
        tx = state.transactions.get(txid)
    if tx is None:
        raise HorizonProblem(404, "The resource at the url requested was not found.")
    return tx


def horizon_transaction(state: SandboxState, request: Request) -> Response:
    """``GET /horizon/transactions/{txid}``."""
    tx = _transaction(state, request.params["txid"])
    return json_response(horizon.transaction_resource(tx, request.horizon_url))


def horizon_operations(state: SandboxState, request: Request) -> Response:
    """``GET /horizon/transactions/{txid}/operations``."""
    tx = _transaction(state, request.params["txid"])
    return json_response(horizon.operations_resource(tx, request.horizon_url))


def horizon_account(state: SandboxState, request: Request) -> Response:
    """``GET /horizon/accounts/{account_id}``."""
    with state.lock:
        account = state.accounts.get(request.params["account_id"])
        if account is None:
            raise HorizonProblem(404, "The resource at the url requested was not found.")
        return json_response(horizon.account_resource(account, request.horizon_url))


def horizon_account_transactions(state: SandboxState, request: Request) -> Response:
    """``GET /horizon/accounts/{account_id}/transactions``: the account's transactions."""
    account_id = request.params["account_id"]
    page = horizon.account_transactions(state, account_id, request.query, request.horizon_url)
    return json_response(page)


def horizon_fee_stats(state: SandboxState, request: Request) -> Response:
    """``GET /horizon/fee_stats``."""
    return json_response(horizon.fee_stats(state))


def horizon_ledgers(state: SandboxState, request: Request) -> Response:
    """``GET /horizon/ledgers``: the latest ledger."""
    return json_response(horizon.latest_ledgers(state, request.horizon_url))


def horizon_root(state: SandboxState, request: Request) -> Response:
    """``GET /horizon/``."""
    return json_response(horizon.root(state))


def horizon_submit(state: SandboxState, request: Request) -> Response:
    """``POST /horizon/transactions`` with a form-encoded ``tx`` envelope."""
    return json_response(horizon.submit(state, request.body))
