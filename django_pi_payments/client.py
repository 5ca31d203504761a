"""``PiClient``: the Pi Platform API (``/v2``) with typed answers and typed errors."""

from __future__ import annotations

import html
import logging
import re
from decimal import Decimal
from typing import Any

import requests
from django.views.decorators.debug import sensitive_variables

from .conf import SETTINGS_NAME, BuiltFromSettings, pi_settings, redact
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
from .logs import Occasionally

logger = logging.getLogger("django_pi_payments.client")

# What an Authorization credential may hold: visible ASCII. http.client refuses a line break or a
# character outside latin-1 with an error that repeats the whole header, credential included.
_SENDABLE_CREDENTIAL = re.compile(r"[\x21-\x7e]*")

STATUS_ERRORS: dict[int, type[PiAPIError]] = {
    401: PiUnauthorized,
    403: PiForbidden,
    404: PiNotFound,
}


def is_sendable_credential(value: str) -> bool:
    """Whether ``value`` can go in an ``Authorization`` header: visible ASCII only (or empty)."""
    return _SENDABLE_CREDENTIAL.fullmatch(value) is not None


class InvalidAPIKey(PiUnavailable):
    """The API key holds a character an HTTP header cannot carry; nothing was sent to Pi.

    A misconfiguration, not a Pi outage, and reported as such by its message and by
    ``manage.py check`` (``pi_payments.E005``). It is a :class:`PiUnavailable` with
    ``request_sent=False`` because that is how every caller must treat it: the request provably
    never left, so no state at Pi is in doubt, and the endpoints answer 503 (the site cannot
    reach Pi until its operator fixes the key; the browser may retry), the admin reports the
    failure and ``pi_reconcile`` retries later. A 502 would blame Pi, and a 500 would be an
    unhandled error whose traceback carried the key.

    Neither the message nor any attribute holds the key.
    """

    message = (
        f'The Pi API key ({SETTINGS_NAME}["API_KEY"]) cannot be sent in an HTTP header (a space, '
        "a line break or a non-ASCII character): nothing was sent to Pi. Run manage.py check "
        "(pi_payments.E005)."
    )

    def __init__(self) -> None:
        super().__init__(self.message, request_sent=False)


def _excerpt(text: str, limit: int = 200) -> str:
    """The start of a non-JSON body, with markup and whitespace runs removed.

    Only the first 8,192 characters are read: an unclosed ``<script>`` or ``<`` makes stripping the
    markup take time quadratic in the text's length, holding the GIL (seconds for 100 KiB)."""
    head = text[:8192]
    without_tags = re.sub(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", " ", head, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(without_tags)).strip()[:limit]


NOT_PI_404 = "Pi API answered 404 without Pi's error body"


def error_from_response(response: Response) -> PiAPIError | PiUnavailable:
    """Build the typed error for a non-2xx answer."""
    body = response.data if isinstance(response.data, dict) else {}
    excerpt = "" if body else _excerpt(response.text)
    if response.status >= 500 or response.status == 429:  # an outage, or a rate limit: wait
        message = f"Pi API answered {response.status}"
        return PiUnavailable(
            f"{message}: {excerpt}" if excerpt else message,
            status=response.status,
            request_sent=response.status != 429,  # a rate limit refuses before acting
        )
    code = body.get("error") if isinstance(body.get("error"), str) else None
    if response.status == 404 and code is None and not isinstance(body.get("error_message"), str):
        # Pi names what it does not know (payment_not_found, user_not_found): a 404 without its
        # error body is another server's (a wrong API_BASE_URL, a proxy), not Pi's word.
        message = f"{NOT_PI_404}: {excerpt}" if excerpt else NOT_PI_404
        return PiUnavailable(message, status=response.status)
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

    A key that an HTTP header cannot carry is reported here, as an error log line naming the
    setting (never the key), and fails every call with :class:`InvalidAPIKey`: callers already
    handle the errors of calls, while an exception from here would escape them.
    """

    @sensitive_variables("api_key")
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
        self._key_header = f"Key {api_key}" if is_sendable_credential(api_key) else None
        # A refused key or a base URL that is not Pi's fails every call: logged when it starts,
        # then once a minute.
        self._misconfiguration_lines = Occasionally(60)
        if self._key_header is None:
            logger.error(InvalidAPIKey.message)
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
        return f"<PiClient {self.transport.shown_url} key={redact(self._api_key)}>"

    def close(self) -> None:
        """Close the client's connections."""
        self.transport.close()

    @sensitive_variables("bearer", "headers", "authorization")
    def _call(self, method: str, path: str, *, json: Any = None, bearer: str | None = None) -> Any:
        if bearer is not None:
            authorization = f"Bearer {bearer}"
        elif self._key_header is not None:
            authorization = self._key_header
        else:
            raise InvalidAPIKey()
        headers = {"Authorization": authorization}
        if method == "POST":
            headers["Content-Type"] = "application/json"
            json = {} if json is None else json
        response = self.transport.request(method, path, headers=headers, json=json)
        if response.status >= 300:
            error = error_from_response(response)
            if bearer is None and isinstance(error, PiUnauthorized):
                self._report_refused_key(method, path, error)
            elif isinstance(error, PiUnavailable) and error.status == 404:
                self._report_not_pi(method, path)
            raise error
        return response.data

    def _report_refused_key(self, method: str, path: str, error: PiUnauthorized) -> None:
        """Log, at most once a minute, that Pi refused the API key: no call to Pi can succeed
        until the operator fixes the setting."""
        self._misconfiguration_lines.log(
            logger,
            logging.ERROR,
            "api_key",
            'Pi refused the API key (%s %s) to %s %s: %s["API_KEY"] is not a Server API Key '
            "of this app at %s (mistyped, regenerated in the Pi Developer Portal, or another "
            "app's). Every call to Pi fails until it is fixed; pi_reconcile then settles the "
            "payments left meanwhile.",
            error.status,
            error.code,
            method,
            path,
            SETTINGS_NAME,
            self.transport.shown_url,
        )

    def _report_not_pi(self, method: str, path: str) -> None:
        """Log, at most once a minute, that the base URL answered 404 without Pi's error body."""
        self._misconfiguration_lines.log(
            logger,
            logging.ERROR,
            "base_url",
            '%s to %s %s: is %s["API_BASE_URL"] (%s) Pi\'s API ("https://api.minepi.com", or '
            "the sandbox's URL)? Another server, or a proxy in Pi's place, may be answering. "
            "While it answers so, the call is treated as Pi being unreachable; pi_reconcile "
            "settles the payments left meanwhile once Pi answers.",
            NOT_PI_404,
            method,
            path,
            SETTINGS_NAME,
            self.transport.shown_url.removesuffix("/v2"),
        )

    def _payment(self, data: Any, identifier: str | None = None) -> PaymentDTO:
        """``data`` as a payment: the one named ``identifier``, when the call named one."""
        try:
            payment = PaymentDTO.from_json(data)
        except ValueError:
            raise PiUnavailable("Pi API answered with an unreadable payment") from None
        if identifier is not None and payment.identifier != identifier:
            raise PiUnavailable("Pi API answered with another payment than the one asked for")
        return payment

    @sensitive_variables("access_token")
    def me(self, access_token: str) -> UserDTO:
        """Verify a user's access token: ``GET /v2/me``.

        A token an HTTP header cannot carry (spaces, line breaks, non-ASCII characters) is refused
        as Pi refuses a malformed one, with :class:`PiUnauthorized` (``invalid_token``), without
        being sent.
        """
        if not access_token or not is_sendable_credential(access_token):
            raise PiUnauthorized(401, "invalid_token", "The access token is malformed.")
        data = self._call("GET", "/me", bearer=access_token)
        try:
            return UserDTO.from_json(data)
        except ValueError:
            raise PiUnavailable("Pi API answered with an unreadable user") from None

    def get_payment(self, identifier: str) -> PaymentDTO:
        """``GET /v2/payments/{identifier}``."""
        return self._payment(self._call("GET", f"/payments/{identifier}"), identifier)

    def approve_payment(self, identifier: str) -> PaymentDTO:
        """``POST /v2/payments/{identifier}/approve``."""
        return self._payment(self._call("POST", f"/payments/{identifier}/approve"), identifier)

    def complete_payment(self, identifier: str, txid: str) -> PaymentDTO:
        """``POST /v2/payments/{identifier}/complete`` with the transaction id."""
        return self._payment(
            self._call("POST", f"/payments/{identifier}/complete", json={"txid": txid}), identifier
        )

    def cancel_payment(self, identifier: str) -> PaymentDTO:
        """``POST /v2/payments/{identifier}/cancel``."""
        return self._payment(self._call("POST", f"/payments/{identifier}/cancel"), identifier)

    def incomplete_server_payments(self, *, skip_unreadable: bool = False) -> list[PaymentDTO]:
        """``GET /v2/payments/incomplete_server_payments``, unwrapped to a list.

        One unreadable payment makes the whole list unreadable (:class:`PiUnavailable`), unless
        ``skip_unreadable``: it is then left out and logged (ERROR), and the others are returned.
        """
        data = self._call("GET", "/payments/incomplete_server_payments")
        items = data.get("incomplete_server_payments") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise PiUnavailable("Pi API answered with an unreadable payment list")
        payments = []
        for item in items:
            try:
                payments.append(self._payment(item))
            except PiUnavailable:
                if not skip_unreadable:
                    raise
                identifier = item.get("identifier") if isinstance(item, dict) else None
                logger.error(
                    "Pi's incomplete payments hold an unreadable payment (%s): left out",
                    identifier if isinstance(identifier, str) else "no identifier",
                )
        return payments

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
