"""Django authentication backend for Pi access tokens.

Add it to ``AUTHENTICATION_BACKENDS`` (next to ``ModelBackend``) and call
``django.contrib.auth.authenticate(request, pi_access_token=token)`` (or ``await``
``aauthenticate`` with the same arguments).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from .auth import PiAuthenticationError, verify_access_token

if TYPE_CHECKING:
    from django.contrib.auth.models import _User


class PiAccessTokenBackend(ModelBackend):
    """Authenticates a user by a Pi access token, verified with Pi's ``/v2/me``.

    Permissions and :meth:`get_user` come from :class:`~django.contrib.auth.backends.ModelBackend`,
    so inactive users are refused as there.
    """

    @sensitive_variables("pi_access_token", "password", "kwargs")
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        *,
        pi_access_token: object = None,
        **kwargs: Any,
    ) -> _User | None:
        """The user owning ``pi_access_token``, or ``None`` when there is no token or Pi refuses it.

        Other credentials (``username``/``password``) are left to the other backends. When Pi
        cannot be reached, :class:`~django_pi_payments.exceptions.PiUnavailable` propagates, and
        when Pi answers the check with an error other than refusing the token,
        :class:`~django_pi_payments.exceptions.PiAPIError` (both are ``PiError``), so that the
        caller can answer "try again" instead of "wrong credentials".
        """
        if not isinstance(pi_access_token, str):
            return None
        try:
            pi_user = verify_access_token(pi_access_token, request=request)
        except PiAuthenticationError:
            return None
        user = pi_user.user
        return user if self.user_can_authenticate(user) else None

    @sensitive_variables("pi_access_token", "password", "kwargs")
    async def aauthenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        *,
        pi_access_token: object = None,
        **kwargs: Any,
    ) -> _User | None:
        """:meth:`authenticate`, run in a thread for ``django.contrib.auth.aauthenticate``.

        ``ModelBackend``'s own ``aauthenticate`` checks a username and password: inherited, it
        would ignore ``pi_access_token`` and answer for password credentials.
        """
        return await sync_to_async(self.authenticate)(
            request, username, password, pi_access_token=pi_access_token, **kwargs
        )
