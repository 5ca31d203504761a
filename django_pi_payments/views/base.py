"""The base of every endpoint: bounded JSON bodies in, one error format out.

Errors are ``{"error": "<code>", "detail": "<text>"}`` with the statuses 400 bad input,
401 not authenticated, 403 not the payer, 404 unknown payment, 409 illegal transition, 413 body
too large, 415 body not JSON, 429 throttled, 502 Pi refused, 503 Pi unreachable or the database
busy (a lock held past its timeout: the request changed nothing and may be sent again).

Bodies are parsed as JSON only (a form post cannot reach a service) and only up to
:data:`MAX_BODY_BYTES`: DRF reads a body without Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` check,
and no Pi frontend sends a callback body anywhere near that size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from ..authentication import PiServiceRefused
from ..exceptions import (
    PaymentError,
    PaymentRejected,
    PiAPIError,
    PiError,
    PiRefused,
    PiUnavailable,
    VerificationFailed,
    is_database_busy,
)
from ..logs import Occasionally
from ..services.payments import IDENTIFIER_RE

logger = logging.getLogger("django_pi_payments.views")
# Verification failures: each code's line when it starts, then once a minute.
verification_failure_lines = Occasionally(60)

# The largest request body any endpoint reads; pi-sdk-js callbacks are a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024


class RequestTooLarge(exceptions.APIException):
    """413 ``request_too_large``: the body is larger than :data:`MAX_BODY_BYTES`."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "request_too_large"


class JSONBodyParser(JSONParser):
    """DRF's JSON parser, answering 400 (not 500) to JSON nested deeper than Python can parse."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        """Parse the body; ``ParseError`` for invalid or too deeply nested JSON."""
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - nested too deeply.")) from None


def error_response(status_code: int, code: str, detail: str, **extra: Any) -> Response:
    """A response in the app's error format."""
    return Response({"error": code, "detail": detail, **extra}, status=status_code)


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def _first_code(codes: Any) -> str:
    if isinstance(codes, dict):
        return "invalid_request"
    if isinstance(codes, list):
        return _first_code(codes[0]) if codes else "invalid_request"
    return str(codes)


def _payment_named(request: Any) -> str:
    """The payment a callback's body names (``paymentId``, or the ``payment`` object the Pi
    demo's ``incomplete`` sends), when it reads and names one; ``?`` otherwise."""
    try:
        data = request.data
    except Exception:  # a body not read yet (a busy database at sign-in) that does not parse
        return "?"
    if not isinstance(data, dict):
        return "?"
    identifier = data.get("paymentId")
    payment = data.get("payment")
    if identifier is None and isinstance(payment, dict):
        identifier = payment.get("identifier")
    if isinstance(identifier, str) and IDENTIFIER_RE.fullmatch(identifier):
        return identifier
    return "?"


def _log_failure(context: dict[str, Any], status_code: int, code: str, detail: object) -> None:
    """Log at WARNING a callback that failed because of Pi, Horizon, the transaction or a busy
    database, naming its route and its payment; the transport's log line before it names the
    cause of a failed call."""
    request = context.get("request")
    logger.warning(
        "%s %s: payment %s: %s %s: %s",
        getattr(request, "method", "?"),
        # A path may hold a line break (%0A): escaped, it cannot forge a log line.
        str(getattr(request, "path", "?")).encode("unicode_escape").decode("ascii"),
        _payment_named(request),
        status_code,
        code,
        detail,
    )


def handle_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn service, Pi and DRF errors into the app's error format.

    A failure of Pi or Horizon (5xx) and a transaction that does not prove its payment are
    logged at WARNING, the latter at most once a minute per error code (anyone may post made-up
    transaction ids; the payment's audit log keeps those of ``complete``, up to
    ``MAX_VERIFICATION_FAILURES`` of each code); the other 4xx are the caller's, which Django's
    request log records.
    """
    if isinstance(exc, VerificationFailed):
        held_back = verification_failure_lines.due(exc.code)
        if held_back is not None:
            _log_failure(context, exc.status_code, exc.code, f"{exc.detail}{held_back}")
    elif isinstance(exc, PaymentError) and exc.status_code >= 500:
        _log_failure(context, exc.status_code, exc.code, exc.detail)
    if isinstance(exc, PiRefused):
        pi_error = None if exc.code == PiRefused.default_code else exc.code
        return error_response(
            exc.status_code, PiRefused.default_code, exc.detail, pi_error=pi_error
        )
    if isinstance(exc, PaymentError):
        return error_response(exc.status_code, exc.code, exc.detail)
    if isinstance(exc, PaymentRejected):
        return error_response(status.HTTP_400_BAD_REQUEST, exc.code, exc.reason)
    if isinstance(exc, PiUnavailable):
        logger.warning("Pi unavailable: %s", exc)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE, "pi_unavailable", "Pi Network is unreachable."
        )
    if isinstance(exc, PiAPIError):
        logger.warning("Pi refused: %s", exc)
        return error_response(
            status.HTTP_502_BAD_GATEWAY, "pi_refused", str(exc), pi_error=exc.code
        )
    if isinstance(exc, PiError):  # e.g. an unexpected answer from Horizon
        logger.warning("Unexpected answer from Pi Network: %s", exc)
        return error_response(status.HTTP_502_BAD_GATEWAY, "pi_refused", str(exc), pi_error=None)
    if isinstance(exc, PiServiceRefused):
        return error_response(exc.status_code, "pi_refused", str(exc.detail), pi_error=exc.pi_error)
    if isinstance(exc, DatabaseError) and is_database_busy(exc):
        _log_failure(context, status.HTTP_503_SERVICE_UNAVAILABLE, "database_busy", exc)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "database_busy",
            "The database is busy; nothing was changed, try again.",
        )
    if isinstance(exc, Http404):
        return error_response(status.HTTP_404_NOT_FOUND, "not_found", "Not found.")
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        code = (
            "invalid_request"
            if isinstance(exc, exceptions.ValidationError)
            else _first_code(exc.get_codes())
        )
        response.data = {"error": code, "detail": _flatten(exc.detail)}
    return response


class EscapedJSONRenderer(JSONRenderer):
    """JSON with every character beyond ASCII escaped, whatever the site's ``UNICODE_JSON``: a
    text from Pi or from the request that holds half of a UTF-16 surrogate pair cannot be encoded
    as UTF-8, and would turn the answer into a 500; escaped, it is valid JSON."""

    ensure_ascii = True


class PiPaymentsAPIView(APIView):
    """Base view: JSON in and out, bodies of at most :data:`MAX_BODY_BYTES`, the app's errors.

    Answers are JSON whatever the site's ``DEFAULT_RENDERER_CLASSES`` (no browsable API). The
    routes are a fixed, unversioned contract: a site's ``DEFAULT_VERSIONING_CLASS`` and
    ``ALLOWED_VERSIONS`` do not apply (they would answer every route 404 or 406).
    """

    parser_classes = [JSONBodyParser]
    renderer_classes = [EscapedJSONRenderer]
    versioning_class = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Refuse an oversized body before anything, authentication included, reads it."""
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise RequestTooLarge()
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return handle_exception
