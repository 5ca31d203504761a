"""The test URLconf plus plain DRF views (the site's exception handler) using the auth class."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework.authentication import BasicAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_pi_payments.authentication import PiAccessTokenAuthentication, get_request_pi_user


class WhoAmI(APIView):
    """A site's own view: Pi Bearer tokens first, then HTTP Basic."""

    authentication_classes = (PiAccessTokenAuthentication, BasicAuthentication)
    permission_classes = (IsAuthenticated,)

    def get(self, request: Request) -> Response:
        pi_user = get_request_pi_user(request)
        body: dict[str, Any] = {
            "user": request.user.get_username(),
            "pi_uid": pi_user.uid if pi_user else None,
            "auth": type(request.successful_authenticator).__name__,
        }
        return Response(body)


urlpatterns = [
    path("whoami", WhoAmI.as_view()),
    path("", include("tests.urls")),
]
