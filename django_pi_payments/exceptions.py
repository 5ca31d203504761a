"""Errors raised by the Pi client and the payment services.

Nothing here ever carries the API key or an access token: messages are built from the HTTP status,
Pi's error code and Pi's own message text only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dto import PaymentDTO

# Pi error codes that describe the payment's state rather than a bad request.
STATE_ERROR_CODES = frozenset(
    {
        "already_completed",
        "cancelled_payment",
        "payment_tx_present",
        "ongoing_payment_found",
        "not_verified",
        "txid_mismatch",
        "verification_failed",
    }
)


class PiError(Exception):
    """Base class of every error about talking to Pi Network."""


class PiAPIError(PiError):
    """Pi answered with an error status.

    ``status`` is the HTTP status, ``code`` Pi's ``error`` field, ``message`` its ``error_message``,
    ``verification_error`` the detail of ``verification_failed``, and ``payment`` the
    :class:`~django_pi_payments.dto.PaymentDTO` some errors carry (``ongoing_payment_found``,
    ``already_completed``...). For non-JSON bodies (Pi's HTML 500 page) ``body_excerpt`` holds the
    start of the body with the markup stripped.
    """

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        *,
        verification_error: str | None = None,
        payment: PaymentDTO | None = None,
        body_excerpt: str = "",
    ) -> None:
        self.status = status
        self.code = code or "unknown_error"
        self.message = message or ""
        self.verification_error = verification_error
        self.payment = payment
        self.body_excerpt = body_excerpt
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"Pi API error {self.status} {self.code}"
        if self.verification_error:
            text += f" ({self.verification_error})"
        detail = self.message or self.body_excerpt
        if detail:
            text += f": {detail}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r})"

    def as_detail(self) -> dict[str, Any]:
        """A JSON-safe summary for audit events and API answers."""
        detail: dict[str, Any] = {"status": self.status, "code": self.code}
        if self.message:
            detail["message"] = self.message
        if self.verification_error:
            detail["verification_error"] = self.verification_error
        return detail


class PiBadRequest(PiAPIError):
    """Pi refused the request as invalid (400 with a validation code)."""


class PiConflict(PiAPIError):
    """Pi refused because of the payment's state (already completed, cancelled, tx present...)."""


class PiUnauthorized(PiAPIError):
    """401: the API key or the access token was refused, expired or revoked."""


class PiForbidden(PiAPIError):
    """403: the app may not act on this payment."""


class PiNotFound(PiAPIError):
    """404: unknown payment or user."""


class PiUnavailable(PiError):
    """Pi could not be reached or answered 5xx or timed out.

    ``request_sent`` is ``False`` only when the request provably never left (connection refused);
    otherwise Pi may have acted on it, and the caller must re-read Pi's state before concluding.
    """

    def __init__(
        self, message: str, *, status: int | None = None, request_sent: bool = True
    ) -> None:
        self.status = status
        self.request_sent = request_sent
        super().__init__(message)

    def as_detail(self) -> dict[str, Any]:
        """A JSON-safe summary for audit events."""
        return {"code": "pi_unavailable", "status": self.status, "message": str(self)}


class HorizonError(PiError):
    """The Horizon server could not be read or returned an unexpected answer."""


class PaymentRejected(Exception):
    """Raised by a site's ``APPROVAL_CHECK`` (or by the checks) to refuse a payment.

    ``reason`` is shown to the frontend; ``code`` is a short machine-readable word.
    """

    def __init__(self, reason: str, code: str = "payment_rejected") -> None:
        self.reason = reason
        self.code = code
        super().__init__(reason)


class PaymentError(Exception):
    """A payment operation was refused; ``status_code`` and ``code`` become the HTTP answer."""

    status_code = 400
    default_code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        self.detail = detail
        self.code = code or self.default_code
        super().__init__(detail)


class InvalidRequest(PaymentError):
    """The request itself is unusable (missing or malformed ids)."""

    default_code = "invalid_request"


class VerificationFailed(PaymentError):
    """The transaction does not prove the payment (wrong txid, memo, amount, address, network)."""

    default_code = "verification_failed"


class MissingScope(PaymentError):
    """The Pi user did not grant a scope the operation needs."""

    status_code = 403
    default_code = "missing_scope"


class NotPayer(PaymentError):
    """The authenticated user is not the payment's payer."""

    status_code = 403
    default_code = "not_payer"


class PaymentNotFound(PaymentError):
    """No such payment, here or at Pi."""

    status_code = 404
    default_code = "payment_not_found"


class IllegalTransition(PaymentError):
    """The payment's status does not allow the operation."""

    status_code = 409
    default_code = "illegal_transition"


class PiRefused(PaymentError):
    """Pi answered the operation with an error."""

    status_code = 502
    default_code = "pi_refused"


class PiUnreachable(PaymentError):
    """Pi could not be reached; the payment stays recoverable by ``pi_reconcile``."""

    status_code = 503
    default_code = "pi_unavailable"


# The codes of the errors that say Pi or Horizon could not be reached.
UNREACHABLE_CODES = frozenset({PiUnreachable.default_code, "horizon_unavailable"})


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says Pi or Horizon could not be reached, directly or as the cause of an
    app-to-user failure: the next call would most likely wait for its timeouts too."""
    for candidate in (error, error.__cause__):
        if isinstance(candidate, PiUnavailable):
            return True
        if isinstance(candidate, PaymentError) and candidate.code in UNREACHABLE_CODES:
            return True
    return False


# SQLite's "database is locked" (SQLITE_BUSY, SQLITE_LOCKED, extended codes included), and
# PostgreSQL's lock timeout, deadlock and serialization failure.
BUSY_SQLITE_CODES = frozenset({5, 6})
BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})


def is_database_busy(error: BaseException) -> bool:
    """Whether a database error says another transaction held a lock too long: a conflict that
    is over once that transaction ends, unlike a broken query or connection."""
    cause = error.__cause__
    code = getattr(cause, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in BUSY_SQLITE_CODES
    return getattr(cause, "sqlstate", None) in BUSY_SQLSTATES
