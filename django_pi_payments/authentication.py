"""DRF authentication by Pi access token: ``Authorization: Bearer <token>``.

Configure it per view or globally::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "django_pi_payments.authentication.PiAccessTokenAuthentication",
            "rest_framework.authentication.SessionAuthentication",
        ],
    }

Put it first: DRF takes the ``WWW-Authenticate`` challenge of the first class, and a 401 needs one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from .auth import INVALID_TOKEN, USER_NOT_ALLOWED, PiAuthenticationError, verify_access_token
from .exceptions import PiAPIError, PiUnavailable
from .models import PiUser
from .throttles import RefusedTokensThrottle

if TYPE_CHECKING:
    from django.contrib.auth.models import _User

logger = logging.getLogger("django_pi_payments.authentication")


class PiServiceUnavailable(exceptions.APIException):
    """503 ``pi_unavailable``: Pi could not be reached to verify a token."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("Pi Network is unreachable; try again shortly.")
    default_code = "pi_unavailable"


class PiServiceRefused(exceptions.APIException):
    """502 ``pi_refused``: Pi answered a token check with an error other than refusing the token.

    ``pi_error`` is Pi's error code.
    """

    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = _("Pi Network could not check the access token; try again later.")
    default_code = "pi_refused"

    def __init__(self, pi_error: str | None = None) -> None:
        super().__init__()
        self.pi_error = pi_error


class PiAccessTokenAuthentication(BaseAuthentication):
    """Authenticates ``Authorization: Bearer <Pi access token>`` with Pi's ``/v2/me``.

    Follows DRF's contract: ``None`` when the header is absent or of another scheme (so other
    classes may try), :class:`~rest_framework.exceptions.AuthenticationFailed` (401, with the code
    ``token_expired``, ``invalid_token`` or ``user_not_allowed``) when the token is bad,
    :class:`PiServiceUnavailable` (503) when Pi is unreachable, and :class:`PiServiceRefused`
    (502) when Pi answers the check with another error. On success ``request.user`` is the
    site user and ``request.auth`` its :class:`~django_pi_payments.models.PiUser`.
    """

    keyword = "Bearer"
    realm = "api"

    @sensitive_variables("parts", "token")
    def authenticate(self, request: Request) -> tuple[_User, PiUser] | None:
        """Verify the Bearer token of ``request``, if it carries one."""
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Invalid Authorization header: expected “Bearer <access token>”."),
                code=INVALID_TOKEN,
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                _("The Pi access token is malformed."), code=INVALID_TOKEN
            ) from None
        return self.authenticate_credentials(token, request)

    @sensitive_variables("access_token")
    def authenticate_credentials(self, access_token: str, request: Request) -> tuple[_User, PiUser]:
        """Verify ``access_token``, turning refusals into DRF's 401, an outage into 503 and
        another error answer of Pi's into 502.

        A client that has had too many tokens refused gets 429 instead of a call to Pi
        (:class:`~django_pi_payments.throttles.RefusedTokensThrottle`).
        """
        refusals = RefusedTokensThrottle(request)
        try:
            pi_user = verify_access_token(
                access_token, request=request._request, before_asking_pi=refusals.check
            )
        except PiAuthenticationError as exc:
            if exc.code != USER_NOT_ALLOWED:
                refusals.record_refusal()
            raise exceptions.AuthenticationFailed(exc.detail, code=exc.code) from None
        except PiUnavailable as exc:
            logger.warning("Pi unavailable while verifying an access token: %s", exc)
            raise PiServiceUnavailable() from None
        except PiAPIError as exc:
            raise PiServiceRefused(pi_error=exc.code) from None
        return pi_user.user, pi_user

    def authenticate_header(self, request: Request) -> str:
        """The ``WWW-Authenticate`` challenge, which makes DRF answer 401 rather than 403."""
        return f'{self.keyword} realm="{self.realm}"'


def get_request_pi_user(request: Request) -> PiUser | None:
    """The Pi user of an authenticated DRF request: from the Bearer token or the session user."""
    if isinstance(request.auth, PiUser):
        return request.auth
    user = request.user
    if not user or not user.is_authenticated:
        return None
    return PiUser.objects.filter(user_id=user.pk).first()
