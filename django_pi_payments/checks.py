"""System checks: misconfiguration shows in ``manage.py check``, not at the first payment."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import NETWORKS, SETTINGS_NAME, pi_settings
from .strkey import is_valid_seed


def _is_loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register(Tags.security, deploy=False)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Check ``PI_PAYMENTS``: key present, network known, base URL safe, wallet seed well formed."""
    messages: list[CheckMessage] = []
    user = pi_settings.user_settings
    if not user.get("API_KEY"):
        messages.append(
            Error(
                f'{SETTINGS_NAME}["API_KEY"] is not set.',
                hint=f'Add your app\'s Server API Key to settings.{SETTINGS_NAME}["API_KEY"] '
                "(from the Pi Developer Portal; read it from the environment).",
                id="pi_payments.E001",
            )
        )
    network = user.get("NETWORK", pi_settings.NETWORK)
    if network not in NETWORKS:
        messages.append(
            Error(
                f'{SETTINGS_NAME}["NETWORK"] is {network!r}, which is not a Pi network.',
                hint=f'Set {SETTINGS_NAME}["NETWORK"] to one of: {", ".join(sorted(NETWORKS))}.',
                id="pi_payments.E002",
            )
        )
    base_url = str(user.get("API_BASE_URL", pi_settings.API_BASE_URL))
    parts = urlsplit(base_url)
    if not settings.DEBUG and (parts.scheme != "https" or _is_loopback(parts.hostname or "")):
        messages.append(
            Error(
                f'{SETTINGS_NAME}["API_BASE_URL"] is {base_url!r} while DEBUG is off.',
                hint=f'In production set {SETTINGS_NAME}["API_BASE_URL"] to '
                '"https://api.minepi.com"; plain http and loopback (sandbox) URLs are for '
                "development and tests only.",
                id="pi_payments.E003",
            )
        )
    seed = user.get("WALLET_PRIVATE_SEED")
    if seed is not None and not is_valid_seed(str(seed)):
        messages.append(
            Error(
                f'{SETTINGS_NAME}["WALLET_PRIVATE_SEED"] is not a valid Stellar secret seed.',
                hint=f'Set {SETTINGS_NAME}["WALLET_PRIVATE_SEED"] to your app wallet\'s '
                '56-character seed starting with "S", or to None when you make no app-to-user '
                "payments.",
                id="pi_payments.E004",
            )
        )
    return messages


BACKEND = "django_pi_payments.backends.PiAccessTokenBackend"


@register(Tags.security)
def check_auth_backend(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn when the ``auth`` route's session logins would not survive the next request."""
    if BACKEND in settings.AUTHENTICATION_BACKENDS:
        return []
    return [
        Warning(
            f"{BACKEND} is not in settings.AUTHENTICATION_BACKENDS.",
            hint=f'Add "{BACKEND}" to settings.AUTHENTICATION_BACKENDS: without it a user signed '
            "in through the pi_payment/auth route is anonymous again on the next request.",
            id="pi_payments.W001",
        )
    ]


PROCESS_LOCAL_CACHES = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)


@register(Tags.caches, deploy=True)
def check_shared_cache(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn (``check --deploy``) when the default cache lives inside each process."""
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    if settings.DEBUG or backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        Warning(
            f'settings.CACHES["default"] uses {backend.rsplit(".", 1)[-1]}, a per-process cache.',
            hint="The Pi /me verification cache and the throttles of django_pi_payments live in "
            'the default cache; with several processes set CACHES["default"] to a shared cache '
            'such as "django.core.cache.backends.redis.RedisCache".',
            id="pi_payments.W002",
        )
    ]
