"""``SandboxHandle``: a client of a running sandbox's control API, for tests of any kind.

It plays the Pioneer and the operator (users, tokens, payments, transactions, faults, the call
log) over :mod:`http.client`: it needs neither Django nor pytest, so it serves Django's own test
runner as well as the pytest fixtures of :mod:`django_pi_payments.testing`.
"""

from __future__ import annotations

import http.client
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from . import wire

__all__ = ["SandboxControlError", "SandboxHandle"]


class SandboxControlError(Exception):
    """A control API call answered with an error status, or with no JSON (not a sandbox)."""

    def __init__(self, status: int, body: Any, message: str | None = None) -> None:
        super().__init__(message or f"sandbox control call failed with HTTP {status}: {body!r}")
        self.status = status
        self.body = body


def _amount(value: Decimal | int | float | str) -> Decimal | int | float:
    if not isinstance(value, str):
        return value
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount (such as '3.14').") from None


class SandboxHandle:
    """Drives a running sandbox through its control API (``/sandbox/...``).

    JSON numbers in answers come back as ``Decimal`` (exact amounts); send amounts as ``Decimal``,
    ``int`` or a decimal string.
    """

    def __init__(self, url: str, api_key: str, network: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.api_key = api_key
        self.network = network
        self.timeout = timeout
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80

    @property
    def horizon_url(self) -> str:
        """Base URL of the sandbox's Horizon."""
        return f"{self.url}/horizon"

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``method path`` on the sandbox and return the decoded JSON answer.

        Raises :class:`SandboxControlError` for a status of 400 or more, and for an answer
        that is not JSON (``url`` is not a sandbox).
        """
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            payload = None if body is None else wire.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            data = wire.loads(raw) if raw else None
        except ValueError:
            text = raw.decode(errors="replace")
            raise SandboxControlError(
                response.status,
                text,
                f"{method} {path}: {self.url} answered HTTP {response.status} without JSON"
                f" (is it a Pi sandbox?): {text[:200]!r}",
            ) from None
        if response.status >= 400:
            raise SandboxControlError(response.status, data)
        return data

    def reset(self, *, config: bool = True) -> None:
        """Clear users, payments, ledger, faults and calls (and the config unless told not to)."""
        self.request("POST", "/sandbox/reset", {"config": config})

    def set_config(self, **changes: Any) -> dict[str, Any]:
        """Change sandbox settings (``latency_ms``, ``duplicate_approve_error``...)."""
        result: dict[str, Any] = self.request("POST", "/sandbox/config", changes)
        return result

    def create_user(self, **fields: Any) -> dict[str, Any]:
        """Create a Pioneer (``username``, ``scopes``, ``uid``, ``wallet_address`` optional)."""
        user: dict[str, Any] = self.request("POST", "/sandbox/users", fields)
        return user

    def create_token(self, uid: str, ttl_seconds: float = 3600) -> str:
        """Issue an access token for ``uid``."""
        body = {"uid": uid, "ttl_seconds": ttl_seconds}
        return str(self.request("POST", "/sandbox/tokens", body)["access_token"])

    def login(self, **fields: Any) -> tuple[dict[str, Any], str]:
        """Create a Pioneer and a token for them: ``(user, access_token)``."""
        user = self.create_user(**fields)
        return user, self.create_token(user["uid"])

    def expire_token(self, access_token: str) -> None:
        """Make the token expired (``/v2/me`` then answers ``expired_access_token``)."""
        self.request("POST", "/sandbox/tokens/expire", {"access_token": access_token})

    def revoke_token(self, access_token: str) -> None:
        """Revoke the token (``/v2/me`` then answers ``invalid_access_token``)."""
        self.request("POST", "/sandbox/tokens/revoke", {"access_token": access_token})

    def create_payment(
        self,
        uid: str,
        amount: Decimal | int | float | str,
        memo: str = "Sandbox payment",
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start a U2A payment as the Pioneer ``uid``; return its PaymentDTO."""
        body = {"uid": uid, "amount": _amount(amount), "memo": memo, "metadata": metadata or {}}
        payment: dict[str, Any] = self.request("POST", "/sandbox/payments", body)
        return payment

    def submit_transaction(self, identifier: str, **overrides: Any) -> dict[str, Any]:
        """Put the payment's transaction on the ledger: ``{"txid", "payment"}``.

        ``overrides``: ``memo``, ``amount``, ``to_address``, ``from_address``, ``verified``,
        ``successful``.
        """
        if "amount" in overrides:
            overrides["amount"] = _amount(overrides["amount"])
        path = f"/sandbox/payments/{quote(identifier)}/transaction"
        result: dict[str, Any] = self.request("POST", path, overrides)
        return result

    def user_cancel(self, identifier: str) -> dict[str, Any]:
        """The Pioneer cancels the payment."""
        return self._payment_action(identifier, "user_cancel")

    def expire_payment(self, identifier: str) -> dict[str, Any]:
        """Fire the approval timeout of the payment now."""
        return self._payment_action(identifier, "expire")

    def _payment_action(self, identifier: str, action: str) -> dict[str, Any]:
        payment: dict[str, Any] = self.request(
            "POST", f"/sandbox/payments/{quote(identifier)}/{action}"
        )
        return payment

    def payment(self, identifier: str) -> dict[str, Any]:
        """Return the current PaymentDTO."""
        payment: dict[str, Any] = self.request("GET", f"/sandbox/payments/{quote(identifier)}")
        return payment

    def payments(self) -> list[dict[str, Any]]:
        """Return every payment's DTO."""
        payments: list[dict[str, Any]] = self.request("GET", "/sandbox/payments")
        return payments

    def add_fault(self, route: str, **options: Any) -> str:
        """Inject a fault on a route id (or ``"*"``); return its id. See the faults module."""
        return str(self.request("POST", "/sandbox/faults", {"route": route, **options})["id"])

    def clear_faults(self) -> None:
        """Remove every fault."""
        self.request("DELETE", "/sandbox/faults")

    def calls(self, route: str | None = None) -> list[dict[str, Any]]:
        """Return the logged ``/v2`` and ``/horizon`` calls, optionally of one route id."""
        query = f"?{urlencode({'route': route})}" if route else ""
        calls: list[dict[str, Any]] = self.request("GET", f"/sandbox/calls{query}")
        return calls

    def clear_calls(self) -> None:
        """Clear the call log and the traffic counters."""
        self.request("DELETE", "/sandbox/calls")

    def stats(self) -> dict[str, int]:
        """Return ``{"connections", "requests"}`` since the last reset."""
        stats: dict[str, int] = self.request("GET", "/sandbox/stats")
        return stats

    def add_account(
        self,
        account_id: str,
        balance: Decimal | int | str | None = None,
        sequence: int | None = None,
    ) -> dict[str, Any]:
        """Register or update a Horizon account; return its Horizon resource."""
        body: dict[str, Any] = {"account_id": account_id}
        if balance is not None:
            body["balance"] = _amount(balance)
        if sequence is not None:
            body["sequence"] = sequence
        account: dict[str, Any] = self.request("POST", "/sandbox/accounts", body)
        return account

    def ledger(self) -> list[dict[str, Any]]:
        """Return every ledger transaction, oldest first."""
        ledger: list[dict[str, Any]] = self.request("GET", "/sandbox/ledger")
        return ledger
