"""Observation of ``/v2`` and ``/horizon`` traffic: the call log and connection counters.

Control calls (``/sandbox/...``) are never logged or counted, so test helpers do not skew the
numbers. ``connections`` counts TCP connections that carried at least one logged call since the
last reset: a client reusing one keep-alive connection for N calls shows 1.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MAX_CALLS", "Call", "Traffic"]

MAX_CALLS = 10000  # the log keeps the most recent calls only


@dataclass(frozen=True)
class Call:
    """One logged call. Never holds a token or an API key."""

    seq: int
    time: str
    method: str
    path: str
    route: str | None
    status: int | None
    auth: str | None
    faulted: bool
    outcome: str


class Traffic:
    """The call log and the request/connection counters."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._calls: deque[Call] = deque(maxlen=MAX_CALLS)
        self._seq = 0
        self._requests = 0
        self._connections = 0
        self._epoch = 1

    def reset(self) -> None:
        """Clear the log and the counters."""
        with self._lock:
            self._calls.clear()
            self._seq = 0
            self._requests = 0
            self._connections = 0
            self._epoch += 1

    def count_request(self, connection_epoch: int) -> int:
        """Count one call on a connection last counted at ``connection_epoch``.

        Returns the epoch to remember for that connection.
        """
        with self._lock:
            self._requests += 1
            if connection_epoch != self._epoch:
                self._connections += 1
            return self._epoch

    def log(
        self,
        *,
        time: str,
        method: str,
        path: str,
        route: str | None,
        status: int | None,
        auth: str | None,
        faulted: bool,
        outcome: str,
    ) -> None:
        """Append a call to the log under the next sequence number."""
        with self._lock:
            self._seq += 1
            self._calls.append(
                Call(self._seq, time, method, path, route, status, auth, faulted, outcome)
            )

    def calls(self, route: str | None = None) -> list[dict[str, Any]]:
        """Return the logged calls, optionally only those of one route id."""
        with self._lock:
            return [asdict(call) for call in self._calls if route in (None, call.route)]

    def stats(self) -> dict[str, int]:
        """Return ``{"connections", "requests"}`` since the last reset."""
        with self._lock:
            return {"connections": self._connections, "requests": self._requests}
