"""One request to the app, measured: wall time, Pi calls made, database statements run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .client import JSONClient
from .servers import Sandbox

QUERIES_HEADER = "x-db-queries"  # set by benchmarks.project.middleware


@dataclass(frozen=True)
class Sample:
    """What one request cost."""

    seconds: float
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
    return Sample(reply.seconds, pi_calls, int(reply.headers[QUERIES_HEADER]))
