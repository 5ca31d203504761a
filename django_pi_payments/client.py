"""``PiClient``: the Pi Platform API (``/v2``) with typed answers and typed errors."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

import requests

from .conf import BuiltFromSettings, pi_settings, redact
from .dto import PaymentDTO, UserDTO
from .exceptions import (
    STATE_ERROR_CODES,
    PiAPIError,
    PiBadRequest,
    PiConflict,
    PiForbidden,
    PiNotFound,
    PiUnauthorized,
    PiUnavailable,
)
from .http import Response, Transport

STATUS_ERRORS: dict[int, type[PiAPIError]] = {
    401: PiUnauthorized,
    403: PiForbidden,
    404: PiNotFound,
}


def _excerpt(text: str, limit: int = 200) -> str:
    """The start of a non-JSON body, with markup and whitespace runs removed."""
    without_tags = re.sub(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", " ", text, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(without_tags)).strip()[:limit]


def error_from_response(response: Response) -> PiAPIError | PiUnavailable:
    """Build the typed error for a non-2xx answer."""
    body = response.data if isinstance(response.data, dict) else {}
    excerpt = "" if body else _excerpt(response.text)
    if response.status >= 500:
        message = f"Pi API answered {response.status}"
        return PiUnavailable(
            f"{message}: {excerpt}" if excerpt else message, status=response.status
        )
    code = body.get("error") if isinstance(body.get("error"), str) else None
    payment = None
    if isinstance(body.get("payment"), dict):
        try:
            payment = PaymentDTO.from_json(body["payment"])
        except ValueError:
            payment = None
    if response.status in STATUS_ERRORS:
        error_class = STATUS_ERRORS[response.status]
    elif code in STATE_ERROR_CODES:
        error_class = PiConflict
    else:
        error_class = PiBadRequest
    pi_message = body.get("error_message")
    verification_error = body.get("verification_error")
    return error_class(
        response.status,
        code,
        pi_message if isinstance(pi_message, str) else None,
        verification_error=verification_error if isinstance(verification_error, str) else None,
        payment=payment,
        body_excerpt=excerpt,
    )


class PiClient:
    """A client of the Pi Platform API for one app (one API key).

    Reuse one instance: it keeps one HTTP session, so successive calls share one connection. It is
    safe to share between threads. :func:`get_client` returns the instance configured from
    ``PI_PAYMENTS``.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.minepi.com",
        timeout: float = 10,
        max_retries: int = 2,
        backoff: float = 0.2,
        session: requests.Session | None = None,
    ) -> None:
        self._api_key = api_key
        self.transport = Transport(
            base_url.rstrip("/") + "/v2",
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            session=session,
        )

    @classmethod
    def from_settings(cls) -> PiClient:
        """A client configured from ``PI_PAYMENTS``."""
        return cls(
            pi_settings.API_KEY or "",
            base_url=pi_settings.API_BASE_URL,
            timeout=pi_settings.TIMEOUT,
            max_retries=pi_settings.MAX_RETRIES,
        )

    def __repr__(self) -> str:
        return f"<PiClient {self.transport.base_url} key={redact(self._api_key)}>"

    def close(self) -> None:
        """Close the client's connections."""
        self.transport.close()

    def _call(self, method: str, path: str, *, json: Any = None, bearer: str | None = None) -> Any:
        headers = (
            {"Authorization": f"Bearer {bearer}"}
            if bearer is not None
            else {"Authorization": f"Key {self._api_key}"}
        )
        if method == "POST":
            headers["Content-Type"] = "application/json"
            json = {} if json is None else json
        response = self.transport.request(method, path, headers=headers, json=json)
        if response.status >= 300:
            raise error_from_response(response)
        return response.data

    def _payment(self, data: Any) -> PaymentDTO:
        try:
            return PaymentDTO.from_json(data)
        except ValueError:
            raise PiUnavailable("Pi API answered with an unreadable payment") from None

    def me(self, access_token: str) -> UserDTO:
        """Verify a user's access token: ``GET /v2/me``."""
        data = self._call("GET", "/me", bearer=access_token)
        try:
            return UserDTO.from_json(data)
        except ValueError:
            raise PiUnavailable("Pi API answered with an unreadable user") from None

    def get_payment(self, identifier: str) -> PaymentDTO:
        """``GET /v2/payments/{identifier}``."""
        return self._payment(self._call("GET", f"/payments/{identifier}"))

    def approve_payment(self, identifier: str) -> PaymentDTO:
        """``POST /v2/payments/{identifier}/approve``."""
        return self._payment(self._call("POST", f"/payments/{identifier}/approve"))

    def complete_payment(self, identifier: str, txid: str) -> PaymentDTO:
        """``POST /v2/payments/{identifier}/complete`` with the transaction id."""
        return self._payment(
            self._call("POST", f"/payments/{identifier}/complete", json={"txid": txid})
        )

    def cancel_payment(self, identifier: str) -> PaymentDTO:
        """``POST /v2/payments/{identifier}/cancel``."""
        return self._payment(self._call("POST", f"/payments/{identifier}/cancel"))

    def incomplete_server_payments(self) -> list[PaymentDTO]:
        """``GET /v2/payments/incomplete_server_payments``, unwrapped to a list."""
        data = self._call("GET", "/payments/incomplete_server_payments")
        items = data.get("incomplete_server_payments") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise PiUnavailable("Pi API answered with an unreadable payment list")
        return [self._payment(item) for item in items]

    def create_payment(
        self, uid: str, amount: Decimal, memo: str, metadata: dict[str, Any] | None = None
    ) -> PaymentDTO:
        """Create an app-to-user payment: ``POST /v2/payments``."""
        body = {
            "payment": {
                "amount": float(amount),
                "memo": memo,
                "metadata": metadata or {},
                "uid": uid,
            }
        }
        return self._payment(self._call("POST", "/payments", json=body))


_shared_client = BuiltFromSettings(PiClient.from_settings)


def get_client() -> PiClient:
    """The process-wide client built from ``PI_PAYMENTS``, rebuilt when the settings change."""
    return _shared_client.get()
