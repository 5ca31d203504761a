"""Error envelopes of the sandbox and the table that maps error codes to HTTP statuses.

Platform API errors use Pi's envelope ``{"error": code, "error_message": text, ...extra}`` where
extra is ``payment`` (a PaymentDTO) or ``verification_error``. Horizon errors use Horizon's
problem JSON ``{"type", "title", "status", "detail", "extras"?}``.

Codes marked *sim* are simulator-specific: Pi's documentation is silent on them.

==============================  ======  ===========================================================
code                            status  emitted when
==============================  ======  ===========================================================
invalid_api_key *sim*           401     payment route without ``Authorization: Key <api key>``
invalid_access_token *sim*      401     ``/v2/me`` without a known, unrevoked ``Bearer`` token
expired_access_token *sim*      401     ``/v2/me`` with a token past its ``valid_until``
forbidden                       403     never by itself; status used when a fault body names it
forbidden_origin *sim*          403     a web page of an origin the sandbox does not answer
                                        (``access.py``: loopback pages and ``--allow-origin``)
forbidden_host *sim*            403     a ``Host`` name the sandbox does not answer (DNS
                                        rebinding; ``access.py``: IPs, localhost, ``--allow-host``)
payment_not_found               404     unknown payment identifier
user_not_found                  404     unknown uid (A2U create, control API)
token_not_found *sim*           404     control API: unknown access token
not_found *sim*                 404     unknown route
method_not_allowed *sim*        405     known route, other method
length_required *sim*           411     a body without a valid ``Content-Length`` (chunked)
payload_too_large *sim*         413     a body over 1 MiB (left unread; the connection closes)
invalid_arguments               400     body not a JSON object / bad field type; **approve on an A2U
                                        payment** (*sim* choice); control API misuse
missing_param                   400     a required field of the payment is missing
invalid_amount                  400     amount not a JSON number, not positive, or > 7 decimals
invalid_metadata                400     metadata is not a JSON object
invalid_address                 400     control API: a wallet address that is not a valid strkey
missing_scope                   400     U2A payment by a user without the ``payments`` scope
missing_wallet                  400     payment with a user that has no wallet address
ongoing_payment_found           400     A2U while another is open (lock scope ``app`` or ``user``,
                                        *sim* config), U2A while the user's has a tx; + ``payment``
missing_txid                    400     complete without ``txid``
not_verified                    400     complete with no tx linked, or a linked unverified tx
txid_mismatch                   400     complete with a txid other than the linked one
verification_failed             400     A2U complete whose tx does not match; + verification_error
already_completed               400     complete twice; cancel after complete (+ ``payment``)
cancelled_payment               400     approve/complete/cancel a cancelled payment (cancel:
                                        + ``payment``)
payment_tx_present              400     cancel (or user cancel) with a linked tx; control API
                                        submit on a payment that already has a tx
payment_not_approved *sim*      400     control API: user submits a tx before approval
sandbox_fault *sim*             any     injected fault status without a body (500 is HTML)
sandbox_internal_error *sim*    500     a bug in the sandbox (the exception is logged)
==============================  ======  ===========================================================

Any other code (e.g. a configured ``duplicate_approve_error``) maps to 400.

Other simulator-specific choices (Pi's documentation is silent):

* a second approve is an idempotent 200 unless config ``duplicate_approve_error`` names a code,
  which is then answered (400 unless the table says otherwise) with the ``payment``;
* a Pioneer's cancel (``/sandbox/payments/{id}/user_cancel``) sets both ``cancelled`` and
  ``user_cancelled``; developer cancels and approval timeouts set ``cancelled`` only;
* one A2U payment in flight per app (config ``a2u_lock_scope: "app"``; ``"user"``: per user);
* the approval timeout (default 60 s; 0 disables it) is evaluated lazily on each access;
* ``error_message`` is present on every error, ``verification_failed`` included.

``verification_error`` values: ``tx_memo_payment_identifier_mismatch`` (seen from Pi), and
*sim*: ``tx_not_found``, ``tx_not_successful``, ``tx_source_mismatch``,
``tx_destination_mismatch``, ``tx_amount_mismatch``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Payment

__all__ = ["DEFAULT_STATUS", "STATUS_BY_CODE", "HorizonProblem", "SandboxError", "status_for"]

AUTH_MESSAGE = "This endpoint requires either a Server API Key or Access Token authorization."

STATUS_BY_CODE: dict[str, int] = {
    "invalid_api_key": 401,
    "invalid_access_token": 401,
    "expired_access_token": 401,
    "forbidden": 403,
    "forbidden_origin": 403,
    "forbidden_host": 403,
    "payment_not_found": 404,
    "user_not_found": 404,
    "token_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "length_required": 411,
    "payload_too_large": 413,
    "sandbox_internal_error": 500,
}
DEFAULT_STATUS = 400


def status_for(code: str) -> int:
    """Return the HTTP status of an error ``code`` (400 unless the table says otherwise)."""
    return STATUS_BY_CODE.get(code, DEFAULT_STATUS)


class SandboxError(Exception):
    """A Platform API error: rendered as ``{"error", "error_message", ...extra}``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        payment: Payment | None = None,
        verification_error: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.payment = payment
        self.verification_error = verification_error

    @property
    def status(self) -> int:
        """The HTTP status of this error, from :data:`STATUS_BY_CODE`."""
        return status_for(self.code)

    def body(self, base_url: str) -> dict[str, Any]:
        """Return the JSON error envelope (``base_url`` renders an attached payment)."""
        body: dict[str, Any] = {"error": self.code, "error_message": self.message}
        if self.verification_error is not None:
            body["verification_error"] = self.verification_error
        if self.payment is not None:
            body["payment"] = self.payment.to_dto(base_url)
        return body


_HORIZON_TITLES = {
    400: "Bad Request",
    404: "Resource Missing",
    501: "Not Implemented",
}
_HORIZON_TYPES = {
    400: "bad_request",
    404: "not_found",
    501: "not_implemented",
}


class HorizonProblem(Exception):
    """A Horizon error: rendered as problem JSON with optional ``extras``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        extras: dict[str, Any] | None = None,
        kind: str | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extras = extras
        self.kind = kind or _HORIZON_TYPES.get(status, "sandbox_error")
        self.title = title or _HORIZON_TITLES.get(status, "Error")

    def body(self) -> dict[str, Any]:
        """Return the problem JSON document."""
        body: dict[str, Any] = {
            "type": f"https://stellar.org/horizon-errors/{self.kind}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.extras is not None:
            body["extras"] = self.extras
        return body
