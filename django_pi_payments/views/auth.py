"""Sign-in with a Pi access token (``auth``) and the current Pi user (``me``).

CSRF: ``auth`` checks no CSRF token, so that Pi frontends (pi-sdk-js) can post to it as they are,
but it accepts JSON bodies only. A cross-site HTML form cannot send ``application/json``, and a
cross-site script cannot without a CORS preflight the site does not grant, so another site can
neither log a visitor in under the attacker's Pi account (login CSRF) nor make ``USER_MAPPER``
link the attacker's Pi account to the visitor's session user. Logging in rotates the CSRF token
and sets the ``csrftoken`` cookie; session-authenticated writes elsewhere (the payment callbacks)
are CSRF-checked by DRF's ``SessionAuthentication``.
"""

from __future__ import annotations

from django.contrib.auth import login
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from ..authentication import PiAccessTokenAuthentication, get_request_pi_user
from ..serializers import AccessTokenSerializer
from ..throttles import AUTH_SCOPE, PiPaymentsThrottle
from .base import PiPaymentsAPIView

BACKEND = "django_pi_payments.backends.PiAccessTokenBackend"


class SessionUserWithoutCSRF(SessionAuthentication):
    """The session's user, for ``auth`` only: JSON-only instead of CSRF-checked (see above).

    It keeps ``request.user`` the session user, so that ``USER_MAPPER`` can link a Pi account to
    the account already signed in.
    """

    def enforce_csrf(self, request: Request) -> None:
        """No token check: a cross-site page cannot send this view's JSON bodies."""


class AuthView(PiPaymentsAPIView):
    """``POST {"accessToken"}``: verify the token with Pi, then log its user in with a session.

    200 ``{"uid", "username"}``; 400 ``invalid_request`` for a bad body; 401 ``token_expired``,
    ``invalid_token`` or ``user_not_allowed``; 415 for a non-JSON body; 429 when throttled;
    502 ``pi_refused`` when Pi answers the check with another error; 503 ``pi_unavailable`` when
    Pi cannot be reached.
    """

    authentication_classes = (SessionUserWithoutCSRF,)
    permission_classes = (AllowAny,)
    throttle_classes = (PiPaymentsThrottle,)
    throttle_scope = AUTH_SCOPE

    def get_authenticate_header(self, request: Request) -> str:
        """Answer a refused token with 401 and a Bearer challenge (DRF would send 403)."""
        return PiAccessTokenAuthentication().authenticate_header(request)

    @sensitive_variables("serializer")
    def post(self, request: Request) -> Response:
        """Verify ``accessToken`` and log its user in."""
        serializer = AccessTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, pi_user = PiAccessTokenAuthentication().authenticate_credentials(
            serializer.validated_data["accessToken"], request
        )
        login(request._request, user, backend=BACKEND)
        return Response({"uid": pi_user.uid, "username": pi_user.username})


class MeView(PiPaymentsAPIView):
    """``GET``: the Pi user of the session or of the ``Authorization: Bearer`` token.

    200 ``{"uid", "username", "scopes"}``; 401 ``not_authenticated`` when there is none.
    """

    authentication_classes = (PiAccessTokenAuthentication, SessionAuthentication)
    permission_classes = (AllowAny,)
    throttle_classes = (PiPaymentsThrottle,)
    throttle_scope = AUTH_SCOPE

    def get(self, request: Request) -> Response:
        """Describe the current Pi user."""
        pi_user = get_request_pi_user(request)
        if pi_user is None:
            raise exceptions.NotAuthenticated(_("Sign in with Pi first."))
        return Response(
            {"uid": pi_user.uid, "username": pi_user.username, "scopes": pi_user.scopes}
        )
