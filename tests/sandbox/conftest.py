"""Fixtures of the sandbox tests: one clock-controlled server, reset before every test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from django_pi_payments.sandbox import SandboxServer, wire
from django_pi_payments.testing import SandboxHandle

API_KEY = "test-api-key"


class FakeClock:
    """Real time plus an offset that tests move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Api:
    """A keep-alive HTTP client of the sandbox (``requests.Session``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False

    def call(
        self,
        method: str,
        path: str,
        *,
        auth: str | None = f"Key {API_KEY}",
        timeout: float = 5,
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if "json" in kwargs:  # through the sandbox's encoder: Decimal stays exact
            kwargs["data"] = wire.dumps(kwargs.pop("json")).encode()
            headers["Content-Type"] = "application/json"
        if auth is not None:
            headers["Authorization"] = auth
        return self.session.request(
            method, self.url + path, headers=headers, timeout=timeout, **kwargs
        )

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def server(clock: FakeClock) -> Iterator[SandboxServer]:
    with SandboxServer(api_key=API_KEY, clock=clock) as running:
        yield running


@pytest.fixture
def sb(server: SandboxServer, clock: FakeClock) -> SandboxHandle:
    """Control handle of the shared server, reset (config included) and clock rewound."""
    clock.offset = 0.0
    handle = SandboxHandle(server.url, server.api_key, server.network)
    handle.reset(config=True)
    return handle


@pytest.fixture
def api(sb: SandboxHandle) -> Iterator[Api]:
    client = Api(sb.url)
    yield client
    client.session.close()


def error_of(response: requests.Response) -> str | None:
    """The ``error`` code of a Platform API answer (``None`` on success)."""
    if response.status_code < 400:
        return None
    code = response.json()["error"]
    assert isinstance(code, str)
    return code
