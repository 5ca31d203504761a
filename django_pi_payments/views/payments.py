"""The payment callbacks of pi-sdk-js 2.0 (approve, complete, cancel, error, incomplete) and the
current user's payments. Each view validates the ids, calls one service, and answers
``{"payment": {...}}``; the service re-reads everything else from Pi.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from .. import services
from ..auth import MAX_TOKEN_LENGTH
from ..authentication import PiAccessTokenAuthentication, get_request_pi_user
from ..models import Payment, PiUser
from ..serializers import (
    ApproveRequestSerializer,
    CancelRequestSerializer,
    CompleteRequestSerializer,
    ErrorRequestSerializer,
    IncompleteRequestSerializer,
    payment_data,
)
from ..services.payments import IDENTIFIER_RE
from ..throttles import CALLBACKS_SCOPE, PiPaymentsThrottle
from .base import PiPaymentsAPIView


def payment_response(payment: Payment) -> Response:
    """``200 {"payment": {...}}`` for the stored payment."""
    return Response({"payment": payment_data(payment)})


class BodyAccessTokenAuthentication(BaseAuthentication):
    """Authenticates with the ``accessToken`` pi-sdk-js puts in the approve body.

    It runs before session authentication, so a frontend that proves the user with the token is
    not also asked for a CSRF token; without a body token the next class decides.
    """

    @sensitive_variables("data", "token")
    def authenticate(self, request: Request) -> tuple[Any, PiUser] | None:
        """``(user, pi_user)`` for a valid body token, ``None`` when there is none."""
        data = request.data
        token = data.get("accessToken") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return None
        if len(token) > MAX_TOKEN_LENGTH:
            raise exceptions.ValidationError(_("accessToken is too long."))
        return PiAccessTokenAuthentication().authenticate_credentials(token, request)

    def authenticate_header(self, request: Request) -> str:
        """Ask for credentials with 401, as the Bearer class does."""
        return PiAccessTokenAuthentication().authenticate_header(request)


class CallbackView(PiPaymentsAPIView):
    """Base of the callbacks: throttled, open to anonymous callers unless a subclass says not."""

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes: list[Any] = []
    throttle_classes = [PiPaymentsThrottle]
    throttle_scope = CALLBACKS_SCOPE

    def validated(self, serializer_class: type[Any], request: Request) -> dict[str, Any]:
        """The request body validated by ``serializer_class`` (400 ``invalid_request`` if bad)."""
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError(_("The body must be a JSON object."))
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        return data


class ApproveView(CallbackView):
    """``POST approve {"paymentId", "accessToken"?}``: approve the payer's own payment.

    The payer is proven by the ``accessToken`` in the body (pi-sdk-js), a Bearer header, or a
    session (which DRF guards with CSRF).
    """

    authentication_classes = [
        BodyAccessTokenAuthentication,
        PiAccessTokenAuthentication,
        SessionAuthentication,
    ]

    def post(self, request: Request) -> Response:
        """Approve the payment."""
        data = self.validated(ApproveRequestSerializer, request)
        pi_user = get_request_pi_user(request)
        if pi_user is None:
            raise exceptions.NotAuthenticated(_("Sign in with Pi to approve a payment."))
        payment = services.approve(data["paymentId"], pi_user, request=request._request)
        return payment_response(payment)


class CompleteView(CallbackView):
    """``POST complete {"paymentId", "transactionId"}``: complete after proving the transaction."""

    def post(self, request: Request) -> Response:
        """Complete the payment."""
        data = self.validated(CompleteRequestSerializer, request)
        return payment_response(services.complete(data["paymentId"], data["txid"]))


class CancelView(CallbackView):
    """``POST cancel {"paymentId"}``: the user cancelled; record Pi's state."""

    def post(self, request: Request) -> Response:
        """Sync the cancelled payment from Pi."""
        data = self.validated(CancelRequestSerializer, request)
        return payment_response(services.sync(data["paymentId"], source="callback"))


class ErrorView(CallbackView):
    """``POST error {"paymentId", "error"}``: audit the frontend's error and sync from Pi."""

    def post(self, request: Request) -> Response:
        """Record the error."""
        data = self.validated(ErrorRequestSerializer, request)
        payment = services.record_frontend_error(data["paymentId"], data["error"])
        return payment_response(payment)


class IncompleteView(CallbackView):
    """``POST incomplete``: settle what the Pi SDK reported as incomplete, from Pi's truth.

    Accepts pi-sdk-js's ``{"paymentId", "transactionId"}`` and the Pi demo's
    ``{"payment": PaymentDTO}``; only the ids are read from the body.
    """

    def post(self, request: Request) -> Response:
        """Complete, sync or report the payment."""
        data = self.validated(IncompleteRequestSerializer, request)
        payment = services.resolve_incomplete(data["paymentId"], data.get("txid"))
        return payment_response(payment)


class OwnPaymentsView(PiPaymentsAPIView):
    """Base of the views of the signed-in user's payments (session or Bearer)."""

    authentication_classes = [PiAccessTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [PiPaymentsThrottle]
    throttle_scope = CALLBACKS_SCOPE

    def own_payments(self) -> QuerySet[Payment]:
        """Payments whose payer is the current user."""
        pi_user = get_request_pi_user(self.request)
        if pi_user is None:
            return Payment.objects.none()
        return Payment.objects.filter(pi_user=pi_user).select_related("refund_of")


class PaymentListView(OwnPaymentsView):
    """``GET payments``: the current user's payments, newest first."""

    def get(self, request: Request) -> Response:
        """List the payments."""
        payments = self.own_payments()[:100]
        return Response({"payments": [payment_data(payment) for payment in payments]})


class PaymentDetailView(OwnPaymentsView):
    """``GET payments/<identifier>``: one of the current user's payments (404 for others')."""

    def get(self, request: Request, identifier: str) -> Response:
        """Show the payment; 404 (in the app's format) for anything not a Pi payment identifier."""
        if not IDENTIFIER_RE.fullmatch(identifier):
            raise Http404
        return payment_response(get_object_or_404(self.own_payments(), identifier=identifier))
