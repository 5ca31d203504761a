"""Fault injection: make chosen ``/v2`` and ``/horizon`` routes fail, stall or drop.

A fault matches a route id (or ``"*"``) and optionally a method. It fires ``count`` times
(default 1; ``null`` means every time) or, when ``rate`` is given, with that probability from a
seeded generator. What it does, in order:

1. ``after: "respond"`` runs the real handler first (Pi did the work, the answer is lost);
2. ``delay_ms`` sleeps;
3. ``hang`` sleeps ``hang_seconds`` (default 30) then closes without answering; ``drop`` closes
   at once; ``status``/``body`` answer instead of the real handler. With none of them the real
   answer is sent (a pure delay) - except after ``"respond"``, where the default is ``drop``.

A ``status`` without ``body`` answers Phusion Passenger's HTML page for 500 and a JSON error
(``sandbox_fault``) otherwise; a ``body`` without ``status`` takes the status of its ``error``
code from :data:`~.errors.STATUS_BY_CODE` (500 when it has none).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .errors import SandboxError, status_for
from .messages import Response, json_response
from .models import MAX_DURATION_SECONDS

__all__ = ["API_ROUTE_IDS", "Fault", "FaultRegistry", "fault_reply"]

API_ROUTE_IDS = (
    "me",
    "create_payment",
    "get_payment",
    "approve",
    "complete",
    "cancel",
    "incomplete_server_payments",
    "horizon_transaction",
    "horizon_operations",
    "horizon_account",
    "horizon_account_transactions",
    "horizon_fee_stats",
    "horizon_submit",
    "horizon_root",
    "horizon_ledgers",
)

PASSENGER_500 = """<!DOCTYPE html>
<html>
<head>
  <title>We're sorry, but something went wrong (500)</title>
</head>
<body>
  <div class="dialog">
    <h1>We're sorry, but something went wrong.</h1>
    <p>If you are the application owner check the logs for more information.</p>
  </div>
</body>
</html>
"""

_FIELDS = frozenset(
    {"route", "method", "status", "body", "delay_ms", "hang", "hang_seconds", "drop", "after"}
    | {"count", "rate", "seed"}
)


def _invalid(message: str) -> SandboxError:
    return SandboxError("invalid_arguments", message)


def _number(data: dict[str, Any], name: str, default: float, upper: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _invalid(f"fault {name!r} must be a number.")
    if not 0 <= value <= upper:
        raise _invalid(f"fault {name!r} must be from 0 to {upper}.")
    return float(value)


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise _invalid(f"fault {name!r} must be a boolean.")
    return value


@dataclass
class Fault:
    """One injected fault and how many more times it fires."""

    id: str
    route: str
    method: str | None = None
    status: int | None = None
    body: Any = None
    delay_ms: float = 0.0
    hang: bool = False
    hang_seconds: float = 30.0
    drop: bool = False
    after_respond: bool = False
    remaining: int | None = 1
    rate: float | None = None
    rng: random.Random = field(default_factory=random.Random)
    fired: int = 0

    @classmethod
    def parse(cls, fault_id: str, data: dict[str, Any]) -> Fault:
        """Validate a ``POST /sandbox/faults`` body."""
        unknown = set(data) - _FIELDS
        if unknown:
            raise _invalid(f"unknown fault fields: {sorted(unknown)}.")
        route = data.get("route")
        if route != "*" and route not in API_ROUTE_IDS:
            raise _invalid(f'fault "route" must be "*" or one of {list(API_ROUTE_IDS)}.')
        method = data.get("method")
        if method is not None and not isinstance(method, str):
            raise _invalid('fault "method" must be a string.')
        status = data.get("status")
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
        ):
            raise _invalid('fault "status" must be an HTTP status code.')
        if data.get("after") not in (None, "respond"):
            raise _invalid('fault "after" must be "respond" or absent.')
        remaining = data.get("count", 1)
        if remaining is not None and (
            isinstance(remaining, bool) or not isinstance(remaining, int) or remaining < 1
        ):
            raise _invalid('fault "count" must be a positive integer or null (always).')
        rate = None
        if "rate" in data:
            rate = _number(data, "rate", 0.0, upper=1.0)
            remaining = None
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise _invalid('fault "seed" must be an integer.')
        return cls(
            id=fault_id,
            route=str(route),
            method=method.upper() if method else None,
            status=status,
            body=data.get("body"),
            delay_ms=_number(data, "delay_ms", 0.0, upper=MAX_DURATION_SECONDS * 1000),
            hang=_flag(data, "hang"),
            hang_seconds=_number(data, "hang_seconds", 30.0, upper=MAX_DURATION_SECONDS),
            drop=_flag(data, "drop"),
            after_respond=data.get("after") == "respond",
            remaining=remaining,
            rate=rate,
            rng=random.Random(seed),
        )

    @property
    def replies(self) -> bool:
        """Whether the fault answers with its own status/body."""
        return self.status is not None or self.body is not None

    @property
    def drops(self) -> bool:
        """Whether the fault closes the connection without answering (after any hang)."""
        return self.drop or self.hang or (self.after_respond and not self.replies)

    def matches(self, route_id: str, method: str) -> bool:
        """Whether the fault applies to a call of ``route_id`` with ``method``."""
        return self.route in ("*", route_id) and self.method in (None, method)

    def to_dict(self) -> dict[str, Any]:
        """Return the fault as listed by ``GET /sandbox/faults``."""
        return {
            "id": self.id,
            "route": self.route,
            "method": self.method,
            "status": self.status,
            "body": self.body,
            "delay_ms": self.delay_ms,
            "hang": self.hang,
            "hang_seconds": self.hang_seconds,
            "drop": self.drop,
            "after": "respond" if self.after_respond else None,
            "count": self.remaining,
            "rate": self.rate,
            "fired": self.fired,
        }


class FaultRegistry:
    """The active faults, in the order they were added (first match wins)."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, data: dict[str, Any]) -> Fault:
        """Validate and register a fault."""
        with self._lock:
            fault = Fault.parse(f"fault-{self._next_id}", data)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def to_list(self) -> list[dict[str, Any]]:
        """Return the active faults."""
        with self._lock:
            return [fault.to_dict() for fault in self._faults]

    def take(self, route_id: str, method: str) -> Fault | None:
        """Return the fault that fires for this call, consuming one of its counts."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(route_id, method):
                    continue
                if fault.rate is not None:
                    if fault.rng.random() >= fault.rate:
                        continue
                elif fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                fault.fired += 1
                return fault
            return None


def fault_reply(fault: Fault, horizon: bool) -> Response:
    """Return the response of a fault that answers on its own."""
    body = fault.body
    status = fault.status
    if status is None:
        code = body.get("error") if isinstance(body, dict) else None
        status = status_for(code) if isinstance(code, str) else 500
    if body is None:
        if status == 500:
            return Response(status, PASSENGER_500.encode(), "text/html; charset=utf-8")
        if horizon:
            body = {
                "type": "https://stellar.org/horizon-errors/sandbox_fault",
                "title": "Injected Fault",
                "status": status,
                "detail": f"Injected fault (HTTP {status}).",
            }
        else:
            body = {"error": "sandbox_fault", "error_message": f"Injected fault (HTTP {status})."}
    if isinstance(body, str):
        kind = "text/html" if body.lstrip().startswith("<") else "text/plain"
        return Response(status, body.encode(), f"{kind}; charset=utf-8")
    return json_response(body, status)
