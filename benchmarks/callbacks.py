"""Benchmark 1: the overhead of the approve and complete callbacks over their Pi round trips.

One Pioneer signs in first (so the ``/me`` answer is cached, as it is for a real frontend), then
pays again and again: each approve and complete callback is sent alone, its Pi and Horizon calls
are counted from the sandbox's call log, and its database statements from the ``X-DB-Queries``
header of the benchmark project. A callback's *ratio* is its wall time divided by the time it
must spend waiting on Pi: the number of calls it made times the injected latency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .client import JSONClient
from .measure import Sample, measured
from .servers import Sandbox
from .stats import describe


def summary(samples: list[Sample], latency: float | None) -> dict[str, Any]:
    """Milliseconds (all, inside the app, outside it), Pi calls, queries and, given the
    ``latency``, ratios of some samples."""
    found: dict[str, Any] = {
        "count": len(samples),
        "ms": describe([sample.seconds * 1000 for sample in samples], digits=1),
        "app_ms": describe([sample.app_seconds * 1000 for sample in samples], digits=1),
        "outside_app_ms": describe(
            [(sample.seconds - sample.app_seconds) * 1000 for sample in samples], digits=2
        ),
        "pi_calls": sorted({sample.pi_calls for sample in samples}),
        "queries": max(sample.queries for sample in samples),
    }
    if latency is not None:
        found["ratio"] = describe([sample.ratio(latency) for sample in samples])
    return found


def run(app_url: str, sandbox: Sandbox, *, count: int, warmup: int = 10) -> dict[str, Any]:
    """``count`` sequential payments through approve and complete; a summary per callback."""
    uid, token = sandbox.pioneer("callbacks")
    app = JSONClient(app_url)
    samples: dict[str, list[Sample]] = {"approve": [], "complete": []}
    try:
        login = app.post("/pi_payment/auth", {"accessToken": token})
        if login.status != 200:
            raise RuntimeError(f"auth answered {login.status}: {login.data}")
        for number in range(warmup + count):
            body = {"uid": uid, "amount": Decimal("1.5"), "memo": "bench"}
            identifier = sandbox.call("POST", "/sandbox/payments", body)["identifier"]
            approve = {"paymentId": identifier, "accessToken": token}
            approved = measured(app, sandbox, "POST", "/pi_payment/approve", approve)
            txid = sandbox.call("POST", f"/sandbox/payments/{identifier}/transaction", {})["txid"]
            complete = {"paymentId": identifier, "transactionId": txid}
            completed = measured(app, sandbox, "POST", "/pi_payment/complete", complete)
            if number >= warmup:
                samples["approve"].append(approved)
                samples["complete"].append(completed)
    finally:
        app.close()
    latency = sandbox.latency_ms / 1000
    return {route: summary(found, latency) for route, found in samples.items()}
