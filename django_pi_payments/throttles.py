"""Rate limits for the app's endpoints: one DRF scoped throttle with built-in default rates.

Scopes and default rates (override them in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, or set a
scope to ``None`` there to switch it off):

* ``pi_payments_auth``: ``30/min``, for ``auth`` and ``me``;
* ``pi_payments_callbacks``: ``120/min``, for the payment callbacks and the payment lists (the Pi
  SDK retries each callback about every 10 s, so a few in-flight payments per user stay well
  inside it);
* ``pi_payments_refused_tokens``: ``30/min`` access tokens refused, per client IP, wherever a token
  is verified through DRF (see :class:`RefusedTokensThrottle`).

Requests are counted per user when authenticated, per client IP otherwise: the connection's
``REMOTE_ADDR``, or behind ``REST_FRAMEWORK["NUM_PROXIES"]`` proxies DRF's pick from
``X-Forwarded-For``. The counts live in Django's default cache, so every process
sharing that cache (e.g. Redis) shares the limit. If the cache fails, requests are let through and
a warning is logged when it starts, then at most once a minute per process: a cache outage must
neither lock every user out of payments nor fill the logs.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache as default_cache
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from .logs import Occasionally

logger = logging.getLogger("django_pi_payments.throttles")
# A cache outage fails every request's throttle: its warnings when it starts, then once a minute.
cache_failure_lines = Occasionally(60)

AUTH_SCOPE = "pi_payments_auth"
CALLBACKS_SCOPE = "pi_payments_callbacks"
REFUSED_TOKENS_SCOPE = "pi_payments_refused_tokens"

DEFAULT_RATES: dict[str, str] = {
    AUTH_SCOPE: "30/min",
    CALLBACKS_SCOPE: "120/min",
    REFUSED_TOKENS_SCOPE: "30/min",
}


class _FailOpenCache(BaseCache):
    """Django's default cache, read at use time; a failing backend reads as empty."""

    def __init__(self) -> None:
        super().__init__({})

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        try:
            return default_cache.get(key, default, version)
        except Exception as exc:  # any cache backend failure: let the request through
            cache_failure_lines.log(
                logger,
                logging.WARNING,
                "read",
                "Throttle cache read failed (%s); not throttling.",
                type(exc).__name__,
            )
            return default

    def set(
        self, key: str, value: Any, timeout: float | None = None, version: int | None = None
    ) -> None:
        try:
            default_cache.set(key, value, timeout, version)
        except Exception as exc:  # any cache backend failure: this request goes uncounted
            cache_failure_lines.log(
                logger,
                logging.WARNING,
                "write",
                "Throttle cache write failed (%s).",
                type(exc).__name__,
            )


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

    def get_ident(self, request: Request) -> str:
        """The client's address: ``REMOTE_ADDR``, or DRF's pick from ``X-Forwarded-For`` when
        ``REST_FRAMEWORK["NUM_PROXIES"]`` is set.

        Without ``NUM_PROXIES`` DRF would use the whole ``X-Forwarded-For`` header, which the
        client writes: a new value on each request would escape every count by address.
        """
        if api_settings.NUM_PROXIES is None:
            return str(request.META.get("REMOTE_ADDR") or "")
        return super().get_ident(request)


class RefusedTokensThrottle(PiPaymentsThrottle):
    """The access tokens Pi refused, counted per client IP, whatever the view.

    DRF authenticates before it throttles, so a view's own throttle never sees a request whose
    token is refused: without this count, a flood of forged tokens would be answered 401 after
    one ``/me`` call to Pi each, for as long as it lasts. Once a client has had
    ``pi_payments_refused_tokens`` tokens refused, its tokens are no longer sent to Pi until the
    window passes: they are answered 429, unless a recent answer of Pi's about the token is cached.
    Tokens Pi accepted are never counted, and the users who share the client's address keep the
    tokens Pi has already vouched for.
    """

    scope = REFUSED_TOKENS_SCOPE

    def __init__(self, request: Request) -> None:
        # Nothing is read yet: most tokens are answered from the /me cache and never need this.
        self.request = request

    def _load_history(self) -> bool:
        """Read the rate and the client's refusals still inside the window; ``False`` when the
        scope is switched off."""
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)  # both None when off
        if self.duration is None:
            return False
        self.key = self.cache_format % {"scope": self.scope, "ident": self.get_ident(self.request)}
        self.now = self.timer()
        self.history = self.cache.get(str(self.key), [])
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return True

    def check(self) -> None:
        """Raise :class:`~rest_framework.exceptions.Throttled` (429) when the client had its
        rate of tokens refused."""
        if self._load_history() and len(self.history) >= (self.num_requests or 0):
            raise exceptions.Throttled(self.wait())

    def record_refusal(self) -> None:
        """Count one refused token against the client."""
        if self._load_history():
            self.throttle_success()  # DRF's: add now to the history and store it
