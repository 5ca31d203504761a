"""The HTTP transport shared by the Pi Platform API and Horizon clients.

One :class:`requests.Session` per transport holds the configuration (headers, proxies, TLS
verification) and the keep-alive connection pool of its mounted ``HTTPAdapter``. A timeout on
every attempt (connecting and waiting for the answer share it), a versioned User-Agent, and retries
with exponential backoff and jitter only where repeating the request is safe:

* GET: on connection errors, timeouts and 502/503/504 answers;
* POST: only when the connection was refused, i.e. the request provably never left.

The timeout bounds connecting and each wait for data, and the body of an answer that declares
its length as a whole (give or take a tenth): a server that trickles such a body a byte at a time
cannot hold a thread longer. An answer larger than :data:`MAX_ANSWER_BYTES` is refused before it
fills the memory.

Each call goes straight to the adapter's urllib3 connection pool. The request and response objects
of ``Session.request`` would cost more CPU than the HTTP exchange itself (about 0.9 million
instructions a call, against 0.7 million), and a transport's calls need none of their extras:
one host, JSON or form bodies, no redirects, no cookies, no auth hooks.

Log lines name the method, the URL (never a user or password; without the base URL's own path
where it may hold a token, as a hosted Horizon's does) and the status; never a header, so neither
the API key nor an access token can reach a log. Nor can they reach an error: a header value that
http.client refuses becomes a :class:`PiUnavailable` naming no header, and tracebacks show none of
the local variables of :meth:`Transport.request` or of the HTTP library beneath it
(``sensitive_variables``). A retry is logged at INFO (the next attempt may well succeed); a call
that ends without an answer, or with a 5xx or 429 one, once at WARNING.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import logging
import random
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import requests
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse, HTTPConnectionPool
from urllib3 import Timeout as PoolTimeout
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

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


# The largest answer read (Pi's largest, its list of incomplete payments, is about 1 KB a payment).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# The longest wait before a retry, jitter aside: the wait doubles with each attempt, and a large
# MAX_RETRIES would otherwise wait minutes before its last ones.
MAX_BACKOFF = 5.0
# What one read of an answer's body takes at most.
CHUNK_BYTES = 256 * 1024

# Connections kept open to the base URL: one per thread that calls it at once (gunicorn's threads,
# pi_reconcile's workers); more threads would open and drop connections beyond these.
POOL_SIZE = 32


def without_credentials(url: str) -> str:
    """``url`` without the user and password its authority may hold, for messages and logs."""
    return re.sub(r"(?<=//)[^/?#]*@", "", url, count=1)


class Transport:
    """Sends JSON requests to one base URL with timeouts and safe retries."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_retries: int,
        backoff: float = 0.2,
        pool_size: int = POOL_SIZE,
        session: requests.Session | None = None,
        log_base_path: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        # The server as messages and log lines name it: its host, without the user and password
        # a URL may hold.
        self._netloc = parts.netloc.rpartition("@")[2]
        #: The base URL without its user and password, for messages naming a setting's value.
        self.shown_url = without_credentials(self.base_url)
        # What log lines put before a call's path: the base URL, or its scheme and host only
        # when its own path may hold a provider's token (a hosted Horizon's).
        self._where = self.shown_url if log_base_path else f"{parts.scheme}://{self._netloc}"
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
        # One budget for connecting and waiting for the answer: with one each, an attempt
        # could take twice the timeout (a Pi slow to accept connections, then slow to answer).
        self._pool_timeout = PoolTimeout(total=timeout)
        self._route: tuple[HTTPConnectionPool, str] | None = None

    def close(self) -> None:
        """Close the pooled connections."""
        self._route = None
        self.session.close()

    def _pool(self) -> tuple[HTTPConnectionPool, str]:
        """The session adapter's connection pool for the base URL (the proxy's, when one is set),
        and what precedes a path in a request line: the base URL through a plain HTTP proxy, else
        the base URL's own path. Resolved on first use, as requests resolves it for each call."""
        if self._route is None:
            probe = requests.Request("GET", self.base_url + "/").prepare()
            adapter = self.session.get_adapter(self.base_url)
            if not isinstance(adapter, HTTPAdapter):
                raise TypeError(f"{type(adapter).__name__} is not a requests HTTPAdapter")
            proxies = self.session.proxies
            pool = adapter.get_connection_with_tls_context(probe, self.session.verify, proxies)
            if not isinstance(pool, HTTPConnectionPool):
                raise TypeError(f"{type(pool).__name__} is not a urllib3 connection pool")
            through_proxy = not adapter.request_url(probe, proxies).startswith("/")
            self._route = (pool, self.base_url if through_proxy else urlsplit(self.base_url).path)
        return self._route

    @staticmethod
    def _read_body(
        pool: HTTPConnectionPool,
        raw: BaseHTTPResponse,
        deadline: float,
        label: str,
        slack: float,
    ) -> bytes:
        """The answer's body, read before ``deadline`` (give or take ``slack`` seconds) and at
        most :data:`MAX_ANSWER_BYTES` long.

        Raises ``ReadTimeoutError`` past the deadline and :class:`PiUnavailable` for a larger
        answer; either way the connection is closed, not given back to the pool half read.
        """
        too_large = f"{label} answered more than {MAX_ANSWER_BYTES >> 20} MB"
        declared = raw.headers.get("Content-Length", "")
        chunks: list[bytes] = []
        received = 0
        try:
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise PiUnavailable(too_large)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ReadTimeoutError(pool, label, "the answer came too slowly")
                sock: socket.socket | None = getattr(raw.connection, "sock", None)
                waits = None if sock is None else sock.gettimeout()
                # Shortened only when that matters: setting a socket's timeout is a system call
                # that lets go of the GIL, which busy threads (gunicorn's, pi_reconcile's) pay
                # for in context switches, while most answers' bodies come with their headers.
                if sock is not None and (waits is None or waits > remaining + slack):
                    sock.settimeout(remaining)
                chunk = raw.read1(CHUNK_BYTES)
                if not chunk:
                    return b"".join(chunks)
                received += len(chunk)
                if received > MAX_ANSWER_BYTES:
                    raise PiUnavailable(too_large)
                chunks.append(chunk)
        except BaseException:
            raw.close()
            raw.release_conn()
            raise

    def _sleep_before_retry(self, attempt: int) -> None:
        delay = min(self.backoff * (2**attempt), MAX_BACKOFF)
        time.sleep(delay + random.uniform(0, delay))

    def _retry(self, attempt: int, method: str, path: str, reason: object) -> bool:
        """Whether another attempt may follow; if so, log it and wait the backoff first."""
        if attempt >= self.max_retries:
            return False
        logger.info("%s %s: %s; retrying", method, path, reason)
        self._sleep_before_retry(attempt)
        return True

    def _give_up(self, method: str, path: str, failure: PiUnavailable) -> PiUnavailable:
        """Log the call that ends without an answer, once, and return ``failure`` to raise."""
        logger.warning("%s %s%s failed: %s", method, self._where, path, failure)
        return failure

    # Every variable, of this frame and of the urllib3 and http.client frames beneath it: they
    # hold the Authorization header under many names.
    @sensitive_variables()
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

        ``json`` is sent as a JSON body, ``data`` as a form. Raises :class:`PiUnavailable` when no
        answer could be had, or when a retryable status persisted on a GET after every retry,
        or when http.client refused to send a header value (a line break, a character outside
        latin-1); that error names no header.
        """
        sent = {**self.session.headers, **(headers or {})}
        body: bytes | None = None
        if json is not None:
            body = jsonlib.dumps(json, allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        elif data is not None:
            body = urlencode(data).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        safe = method.upper() == "GET"
        attempt = 0
        while True:
            route = None
            # An error here may repeat the proxy's credentials: it is not even kept as context.
            with contextlib.suppress(requests.RequestException, HTTPError, ValueError):
                route = self._pool()
            if route is None:
                # The base URL, or the environment's proxy for it, cannot be used (a port out of
                # range; SOCKS without PySocks, a malformed proxy URL).
                unusable = (
                    f"calls to {self._netloc} cannot be sent: the URL or the proxy of the "
                    "environment for it is unusable (manage.py check explains it: "
                    "pi_payments.E009, E010)"
                )
                logger.error("%s", unusable)
                raise PiUnavailable(unusable, request_sent=False)
            pool, prefix = route
            started = time.monotonic()
            unsendable = False
            try:
                raw = pool.urlopen(
                    method,
                    prefix + path,
                    body=body,
                    headers=cast(Mapping[str, str], sent),
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    timeout=self._pool_timeout,
                    preload_content=False,
                )
                content = self._read_body(
                    pool, raw, started + self.timeout, f"{method} {path}", self.timeout / 10
                )
            except ConnectTimeoutError:  # with NewConnectionError: the request never left
                failure = PiUnavailable(f"could not connect to {self._netloc}", request_sent=False)
                if self._retry(attempt, method, path, failure):
                    attempt += 1
                    continue
                raise self._give_up(method, path, failure) from None
            except ReadTimeoutError:
                failure = PiUnavailable(f"{method} {path} timed out after {self.timeout}s")
                if safe and self._retry(attempt, method, path, failure):
                    attempt += 1
                    continue
                raise self._give_up(method, path, failure) from None
            except (ProtocolError, SSLError, ProxyError):
                failure = PiUnavailable(
                    f"connection to {self._netloc} failed during {method} {path}"
                )
                if safe and self._retry(attempt, method, path, failure):
                    attempt += 1
                    continue
                raise self._give_up(method, path, failure) from None
            except HTTPError as exc:
                failure = PiUnavailable(f"{method} {path} failed: {type(exc).__name__}")
                raise self._give_up(method, path, failure) from None
            except PiUnavailable as exc:  # an answer too large
                raise self._give_up(method, path, exc) from None
            except (ValueError, UnicodeError):
                # http.client's message repeats the refused header value: raised from outside
                # this block, the new error does not even keep it as its __context__.
                unsendable = True
            if unsendable:
                failure = PiUnavailable(
                    f"{method} {path} failed: a header value is not valid in HTTP"
                )
                raise self._give_up(method, path, failure)
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.debug("%s %s -> %s in %.0f ms", method, path, raw.status, elapsed_ms)
            if (
                safe
                and raw.status in RETRY_STATUSES
                and self._retry(attempt, method, path, raw.status)
            ):
                attempt += 1
                continue
            if raw.status >= 500 or raw.status == 429:
                logger.warning("%s %s%s answered %s", method, self._where, path, raw.status)
            try:
                parsed = jsonlib.loads(content) if content else None
            except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
                parsed = None
            # Parsed from the bytes, and no text kept beside a JSON body: a large answer (Pi's
            # list of incomplete payments) then takes its size in memory once, not three times.
            text = content.decode("utf-8", "replace") if parsed is None else ""
            return Response(raw.status, parsed, text)
