"""The HTTP transport shared by the Pi Platform API and Horizon clients.

One :class:`requests.Session` per transport so that calls reuse one keep-alive connection, a
timeout on every call, a versioned User-Agent, and retries with exponential backoff and jitter
only where repeating the request is safe:

* GET: on connection errors, timeouts and 502/503/504 answers;
* POST: only when the connection was refused, i.e. the request provably never left.

Log lines name the method, the path and the status; never a header, so neither the API key nor an
access token can reach a log.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from json import loads as json_loads
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from . import __version__
from .exceptions import PiUnavailable

logger = logging.getLogger("django_pi_payments.http")

USER_AGENT = f"django-pi-payments/{__version__} python-requests/{requests.__version__}"
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Response:
    """What came back: the status, the parsed JSON body (``None`` when the body is not JSON) and,
    only then, the body's text, for error messages."""

    status: int
    data: Any
    text: str = ""


def _connection_refused(exc: requests.ConnectionError) -> bool:
    """True when the error proves the request never reached the server."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectionRefusedError):
            return True
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else current.__context__
    return False


class Transport:
    """Sends JSON requests to one base URL with timeouts and safe retries."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_retries: int,
        backoff: float = 0.2,
        pool_size: int = 32,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        # requests reads the proxy and CA-bundle environment variables again on every call (about
        # half a millisecond of CPU each): read them once, for our one host, and stop.
        environment = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        self.session.proxies.update(environment["proxies"])
        self.session.verify = environment["verify"]
        self.session.trust_env = False

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def _prepare(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        json: Any,
        data: Mapping[str, str] | None,
    ) -> requests.PreparedRequest:
        """The request with the session's headers, prepared without ``Session.request``.

        ``Session.request`` merges the session's cookies, auth, params, hooks and environment
        into every request, a third of requests' CPU per call; this session carries none of
        them (its environment was read once, above), so only its headers need merging.
        """
        merged = {**self.session.headers, **(headers or {})}
        return requests.Request(method, url, headers=merged, json=json, data=data).prepare()

    def _sleep_before_retry(self, attempt: int) -> None:
        delay = self.backoff * (2**attempt)
        time.sleep(delay + random.uniform(0, delay))

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request, retrying as the module docstring says; return any HTTP answer.

        Raises :class:`PiUnavailable` when no answer could be had, or when a retryable status
        persisted on a GET after every retry.
        """
        url = self.base_url + path
        safe = method.upper() == "GET"
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                raw = self.session.send(
                    self._prepare(method, url, headers, json, data),
                    timeout=self.timeout,
                    allow_redirects=False,
                    proxies=self.session.proxies,
                )
            except requests.ConnectionError as exc:
                refused = isinstance(exc, requests.ConnectTimeout) or _connection_refused(exc)
                failure = PiUnavailable(
                    f"could not connect to {urlsplit(url).netloc}"
                    if refused
                    else f"connection to {urlsplit(url).netloc} failed during {method} {path}",
                    request_sent=not refused,
                )
                if (safe or refused) and attempt < self.max_retries:
                    logger.warning("%s %s: %s; retrying", method, path, failure)
                    self._sleep_before_retry(attempt)
                    attempt += 1
                    continue
                raise failure from None
            except requests.Timeout:
                failure = PiUnavailable(f"{method} {path} timed out after {self.timeout}s")
                if safe and attempt < self.max_retries:
                    logger.warning("%s %s: %s; retrying", method, path, failure)
                    self._sleep_before_retry(attempt)
                    attempt += 1
                    continue
                raise failure from None
            except requests.RequestException as exc:
                raise PiUnavailable(f"{method} {path} failed: {type(exc).__name__}") from None
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.debug("%s %s -> %s in %.0f ms", method, path, raw.status_code, elapsed_ms)
            if safe and raw.status_code in RETRY_STATUSES and attempt < self.max_retries:
                logger.warning("%s %s -> %s; retrying", method, path, raw.status_code)
                self._sleep_before_retry(attempt)
                attempt += 1
                continue
            try:
                body = json_loads(raw.content) if raw.content else None
            except ValueError:
                body = None
            # Parsed from the bytes, and no text kept beside a JSON body: a large answer (Pi's
            # list of incomplete payments) then takes its size in memory once, not three times.
            return Response(raw.status_code, body, raw.text if body is None else "")
