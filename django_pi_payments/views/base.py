"""The error format shared by every endpoint: ``{"error": "<code>", "detail": "<text>"}``.

Statuses: 400 bad input, 401 not authenticated, 403 not the payer, 404 unknown payment,
409 illegal transition, 429 throttled, 502 Pi refused, 503 Pi unreachable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from ..exceptions import PaymentError, PaymentRejected, PiAPIError, PiUnavailable

logger = logging.getLogger("django_pi_payments.views")


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


def handle_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn service, Pi and DRF errors into the app's error format."""
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


class PiPaymentsAPIView(APIView):
    """Base view: JSON in and out, the app's error format."""

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return handle_exception
