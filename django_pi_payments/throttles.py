"""Rate limits for the app's endpoints: one DRF scoped throttle with built-in default rates.

Scopes and default rates (override them in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, or set a
scope to ``None`` there to switch it off):

* ``pi_payments_auth``: ``30/min``, for ``auth`` and ``me``;
* ``pi_payments_callbacks``: ``120/min``, for the payment callbacks and the payment lists (the Pi
  SDK retries each callback about every 10 s, so a few in-flight payments per user stay well
  inside it).

Requests are counted per user when authenticated, per client IP otherwise (behind a proxy set
``REST_FRAMEWORK["NUM_PROXIES"]``). The counts live in Django's default cache, so every process
sharing that cache (e.g. Redis) shares the limit. If the cache fails, requests are let through and
a warning is logged: a cache outage must not lock every user out of payments.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache as default_cache
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger("django_pi_payments.throttles")

AUTH_SCOPE = "pi_payments_auth"
CALLBACKS_SCOPE = "pi_payments_callbacks"

DEFAULT_RATES: dict[str, str] = {
    AUTH_SCOPE: "30/min",
    CALLBACKS_SCOPE: "120/min",
}


class _FailOpenCache(BaseCache):
    """Django's default cache, read at use time; a failing backend reads as empty."""

    def __init__(self) -> None:
        super().__init__({})

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        try:
            return default_cache.get(key, default, version)
        except Exception as exc:  # any cache backend failure: let the request through
            logger.warning("Throttle cache read failed (%s); not throttling.", type(exc).__name__)
            return default

    def set(
        self, key: str, value: Any, timeout: float | None = None, version: int | None = None
    ) -> None:
        try:
            default_cache.set(key, value, timeout, version)
        except Exception as exc:  # any cache backend failure: this request goes uncounted
            logger.warning("Throttle cache write failed (%s).", type(exc).__name__)


class PiPaymentsThrottle(ScopedRateThrottle):
    """DRF's :class:`~rest_framework.throttling.ScopedRateThrottle` with this app's default rates.

    A view sets ``throttle_scope`` to :data:`AUTH_SCOPE` or :data:`CALLBACKS_SCOPE`. The rate is
    read from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` at each request, falling back to
    :data:`DEFAULT_RATES`.
    """

    cache = _FailOpenCache()

    def get_rate(self) -> str | None:
        """The configured rate of the view's scope, else the app's default for it."""
        configured = api_settings.DEFAULT_THROTTLE_RATES or {}
        if self.scope in configured:
            rate = configured[self.scope]
            return None if rate is None else str(rate)
        if self.scope in DEFAULT_RATES:
            return DEFAULT_RATES[self.scope]
        raise ImproperlyConfigured(
            f"No throttle rate for scope {self.scope!r}: add it to "
            'REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].'
        )
