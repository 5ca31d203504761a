"""One request to the app, measured: wall time, time inside the app, Pi calls made, database
statements run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .client import JSONClient
from .servers import Sandbox

QUERIES_HEADER = "x-db-queries"  # set by benchmarks.project.middleware
APP_TIME_HEADER = "x-app-time"  # set by benchmarks.project.wsgi, in milliseconds


@dataclass(frozen=True)
class Sample:
    """What one request cost: ``seconds`` as the client saw it, ``app_seconds`` of them inside the
    application (the rest is gunicorn, the loopback and the client)."""

    seconds: float
    app_seconds: float
    pi_calls: int
    queries: int

    def ratio(self, latency: float) -> float:
        """Wall time over the time its Pi calls must wait: ``pi_calls * latency``."""
        return self.seconds / (self.pi_calls * latency)


def measured(
    app: JSONClient,
    sandbox: Sandbox,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Sample:
    """Send one request alone and count the Pi calls it made from the sandbox's call log."""
    sandbox.call("DELETE", "/sandbox/calls")
    reply = app.request(method, path, body, headers)
    if reply.status != 200:
        raise RuntimeError(f"{method} {path} answered {reply.status}: {reply.data}")
    pi_calls = len(sandbox.call("GET", "/sandbox/calls"))
    app_seconds = float(reply.headers[APP_TIME_HEADER]) / 1000
    return Sample(reply.seconds, app_seconds, pi_calls, int(reply.headers[QUERIES_HEADER]))
