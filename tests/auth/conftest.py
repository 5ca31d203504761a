"""Fixtures for the authentication tests: the app on the sandbox, clients and Pioneers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from django_pi_payments.signals import pi_user_authenticated

AUTH_URL = "/pi_payment/auth"
ME_URL = "/pi_payment/me"


@pytest.fixture
def app(pi_settings_for_sandbox: Any, db: None) -> Any:
    """The app configured for the sandbox, with a database."""
    return pi_settings_for_sandbox


@pytest.fixture
def pi_config(settings: Any, app: Any) -> Callable[..., None]:
    """Change ``PI_PAYMENTS`` entries for one test: ``pi_config(CREATE_USERS=False)``."""

    def change(**values: Any) -> None:
        settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, **values}

    return change


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def pioneer(pi_sandbox: Any) -> tuple[dict[str, Any], str]:
    """A sandbox Pioneer with every scope, and a fresh access token."""
    user, token = pi_sandbox.login(username="alice")
    return user, token


@pytest.fixture
def pi_user_signals() -> Iterator[list[Any]]:
    """Every ``pi_user_authenticated`` received, as ``(pi_user, request)``."""
    received: list[Any] = []

    def receiver(sender: Any, pi_user: Any, request: Any = None, **kwargs: Any) -> None:
        received.append((pi_user, request))

    pi_user_authenticated.connect(receiver, weak=False)
    yield received
    pi_user_authenticated.disconnect(receiver)


def sign_in(api: APIClient, token: str, **extra: Any) -> Any:
    """POST the token to ``auth`` as a Pi frontend does."""
    return api.post(AUTH_URL, {"accessToken": token}, format="json", **extra)
