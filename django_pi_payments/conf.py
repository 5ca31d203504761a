"""The ``PI_PAYMENTS`` settings dict, read at use time.

``pi_settings.API_KEY`` reads ``settings.PI_PAYMENTS["API_KEY"]`` (or its default) the first time it
is asked for and caches the answer until Django's ``setting_changed`` signal reports a change to
``PI_PAYMENTS``, so ``override_settings`` and pytest-django's ``settings`` fixture work in tests.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

SETTINGS_NAME = "PI_PAYMENTS"

NETWORKS: dict[str, str] = {
    "Pi Network": "https://api.mainnet.minepi.com",
    "Pi Testnet": "https://api.testnet.minepi.com",
}

DEFAULTS: dict[str, Any] = {
    "API_KEY": None,
    "API_BASE_URL": "https://api.minepi.com",
    "NETWORK": "Pi Testnet",
    "HORIZON_URL": None,
    "WALLET_PRIVATE_SEED": None,
    "TIMEOUT": 10,
    "MAX_RETRIES": 2,
    "ME_CACHE_SECONDS": 60,
    "APPROVAL_CHECK": None,
    "VERIFY_TRANSACTIONS": True,
    "CREATE_USERS": True,
    "USER_MAPPER": None,
    "A2U_RESUME_TIMEOUT": 600,
}

# Settings that may hold a dotted path to a callable, imported on first use.
IMPORT_STRINGS = frozenset({"APPROVAL_CHECK", "USER_MAPPER"})

# Settings whose value must never be shown in clear.
SECRET_SETTINGS = frozenset({"API_KEY", "WALLET_PRIVATE_SEED"})


def redact(secret: str | None) -> str:
    """Return ``secret`` shortened to ``abcd…wxyz`` (or ``…`` when it is too short to hint at)."""
    if not secret:
        return ""
    if len(secret) <= 12:
        return "…"
    return f"{secret[:4]}…{secret[-4:]}"


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (a sandbox's host, never Pi's)."""
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def import_setting(name: str, dotted_path: str) -> Callable[..., Any]:
    """The object at ``dotted_path``, the value of the setting ``name`` (one of
    :data:`IMPORT_STRINGS`); :class:`ImproperlyConfigured` when it does not import, whether the
    path is wrong or the module raises while it is imported (a ``NameError``, a ``SyntaxError``)."""
    try:
        imported: Callable[..., Any] = import_string(dotted_path)
    except Exception as exc:
        raise ImproperlyConfigured(
            f"Could not import {dotted_path!r} for {SETTINGS_NAME}[{name!r}]: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return imported


class PiSettings:
    """Attribute access to ``settings.PI_PAYMENTS`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        """The project's ``PI_PAYMENTS`` dict, or an empty one."""
        value = getattr(settings, SETTINGS_NAME, None) or {}
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"settings.{SETTINGS_NAME} must be a dict.")
        return value

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown setting {SETTINGS_NAME}[{name!r}]")
        if name not in self._cache:
            value = self.user_settings.get(name, DEFAULTS[name])
            if name in IMPORT_STRINGS and isinstance(value, str):
                value = import_setting(name, value)
            self._cache[name] = value
        return self._cache[name]

    @property
    def horizon_url(self) -> str:
        """``HORIZON_URL`` when set, otherwise the Horizon server of ``NETWORK``."""
        configured: str | None = self.HORIZON_URL
        if configured:
            return configured.rstrip("/")
        return NETWORKS.get(self.NETWORK, NETWORKS["Pi Testnet"])

    @property
    def api_is_loopback(self) -> bool:
        """Whether ``API_BASE_URL`` is a loopback host (a local sandbox, not Pi), read as the
        transport reads it."""
        try:
            host = parse_url(str(self.API_BASE_URL)).host
        except LocationParseError:
            return False
        return is_loopback_host((host or "").strip("[]").lower())

    @property
    def reads_horizon(self) -> bool:
        """Whether the app reads Horizon: to verify payers' transactions
        (``VERIFY_TRANSACTIONS``), or to send payouts (a ``WALLET_PRIVATE_SEED``)."""
        return bool(self.VERIFY_TRANSACTIONS or self.WALLET_PRIVATE_SEED)

    @property
    def api_url(self) -> str:
        """The Platform API root including ``/v2``."""
        base: str = self.API_BASE_URL
        return base.rstrip("/") + "/v2"

    def redacted(self) -> dict[str, Any]:
        """The effective settings with every secret redacted, for display."""
        shown: dict[str, Any] = {}
        for name in DEFAULTS:
            value = self.user_settings.get(name, DEFAULTS[name])
            shown[name] = redact(value) if name in SECRET_SETTINGS and value else value
        return shown

    def reload(self) -> None:
        """Forget cached values; the next access reads the settings again."""
        self._cache.clear()


pi_settings = PiSettings()

T = TypeVar("T")


class BuiltFromSettings(Generic[T]):
    """One shared object built from the settings on first use, and again after they change.

    Holds the process-wide API clients: one HTTP session each, dropped (and closed, when it has
    ``close``) when ``PI_PAYMENTS`` changes.
    """

    instances: list[BuiltFromSettings[Any]] = []

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()
        BuiltFromSettings.instances.append(self)

    def get(self) -> T:
        """The shared object, built now if needed."""
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value

    def reset(self) -> None:
        """Forget the object; the next :meth:`get` builds a new one."""
        with self._lock:
            close = getattr(self._value, "close", None)
            if callable(close):
                close()
            self._value = None


@receiver(setting_changed)
def _reload_pi_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        pi_settings.reload()
        for built in BuiltFromSettings.instances:
            built.reset()
