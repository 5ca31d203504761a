"""pytest plugin of django-pi-payments: a live Pi sandbox for tests (entry point ``pi_payments``).

Fixtures:

``pi_sandbox``
    A :class:`SandboxHandle` on a sandbox server shared by the whole session and reset (state,
    faults, call log and config) before each test.
``pi_settings_for_sandbox``
    Also points ``settings.PI_PAYMENTS`` at that sandbox (needs pytest-django's ``settings``),
    and starts the app's throttle counts afresh.
``pi_sandbox_server``
    The session's :class:`~django_pi_payments.sandbox.SandboxServer` itself.

The module imports neither Django nor any third-party HTTP client. The handle,
:class:`~django_pi_payments.sandbox.SandboxHandle`, lives in the sandbox package (re-exported
here), so that tests run by Django's own runner can use it without pytest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from django_pi_payments.sandbox import SandboxServer
from django_pi_payments.sandbox.handle import SandboxControlError, SandboxHandle

__all__ = [
    "SandboxControlError",
    "SandboxHandle",
    "pi_sandbox",
    "pi_sandbox_server",
    "pi_settings_for_sandbox",
]


@pytest.fixture(scope="session")
def pi_sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox server for the whole test session."""
    server = SandboxServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pi_sandbox(pi_sandbox_server: SandboxServer) -> SandboxHandle:
    """A freshly reset sandbox (state, faults, calls and config)."""
    handle = SandboxHandle(
        pi_sandbox_server.url, pi_sandbox_server.api_key, pi_sandbox_server.network
    )
    handle.reset(config=True)
    return handle


@pytest.fixture
def pi_settings_for_sandbox(
    pi_sandbox: SandboxHandle, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> SandboxHandle:
    """Point ``settings.PI_PAYMENTS`` at the sandbox; return the handle.

    The app's throttles also count afresh in each test: their counts stay in Django's default
    cache, which nothing empties between tests, under keys of the test's own. Otherwise the
    sign-ins of earlier tests (30 a minute by default) would get later ones answered 429.
    """
    from django_pi_payments.throttles import PiPaymentsThrottle  # needs Django configured

    namespace = f"pi_payments_test_{uuid.uuid4().hex}:"
    monkeypatch.setattr(
        PiPaymentsThrottle, "cache_format", namespace + PiPaymentsThrottle.cache_format
    )
    settings.PI_PAYMENTS = {
        "API_KEY": pi_sandbox.api_key,
        "API_BASE_URL": pi_sandbox.url,
        "NETWORK": pi_sandbox.network,
        "HORIZON_URL": pi_sandbox.horizon_url,
    }
    return pi_sandbox
