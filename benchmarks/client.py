"""A small keep-alive HTTP/1.1 JSON client, one per benchmark thread.

The standard library's :mod:`http.client` costs the load generator far less CPU than requests,
so on a 2-core machine more of it is left to the server being measured.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django_pi_payments.sandbox import wire


@dataclass(frozen=True)
class Reply:
    """One answer: status, decoded JSON body, headers (lower-case names) and elapsed seconds."""

    status: int
    data: Any
    headers: dict[str, str]
    seconds: float


class JSONClient:
    """Sends JSON requests to one server over one reused connection (not thread-safe).

    ``exact`` bodies go through the sandbox's wire format, which keeps ``Decimal`` amounts exact.
    """

    def __init__(self, base_url: str, *, timeout: float = 60.0, exact: bool = False) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self.exact = exact
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
        return self._connection

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """Send one request and read the whole answer; reconnect once if the server had closed."""
        payload = None
        if body is not None:
            payload = (wire.dumps(body) if self.exact else json.dumps(body)).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        try:
            return self._exchange(method, path, payload, sent)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()  # an idle keep-alive connection the server had closed: once more
            return self._exchange(method, path, payload, sent)

    def _exchange(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> Reply:
        connection = self._connect()
        started = time.perf_counter()
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        seconds = time.perf_counter() - started
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        data = (wire.loads(raw) if self.exact else json.loads(raw)) if raw else None
        names = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, data, names, seconds)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        """``GET path``."""
        return self.request("GET", path, headers=headers)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        """``POST path`` with a JSON body."""
        return self.request("POST", path, {} if body is None else body, headers)
