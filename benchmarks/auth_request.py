"""Benchmark 2: an authenticated DRF request, with a cold and with a warm ``/me`` cache.

``GET pi_payment/payments`` with ``Authorization: Bearer``: a cold request is the first with a
new token (the app asks Pi's ``/me``), a warm one repeats it within ``ME_CACHE_SECONDS``.
"""

from __future__ import annotations

from typing import Any

from .callbacks import summary
from .client import JSONClient
from .measure import Sample, measured
from .servers import Sandbox

PATH = "/pi_payment/payments"


def run(app_url: str, sandbox: Sandbox, *, count: int) -> dict[str, Any]:
    """``count`` new tokens of one Pioneer, each used twice: a summary for cold and for warm."""
    uid, first_token = sandbox.pioneer("reader")
    app = JSONClient(app_url)
    cold: list[Sample] = []
    warm: list[Sample] = []
    try:
        # The first sign-in creates the site user: not what a returning user costs.
        measured(app, sandbox, "GET", PATH, headers={"Authorization": f"Bearer {first_token}"})
        for _ in range(count):
            body = {"uid": uid, "ttl_seconds": 3600}
            token = sandbox.call("POST", "/sandbox/tokens", body)["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            cold.append(measured(app, sandbox, "GET", PATH, headers=headers))
            warm.append(measured(app, sandbox, "GET", PATH, headers=headers))
    finally:
        app.close()
    return {"cold": summary(cold, sandbox.latency_ms / 1000), "warm": summary(warm, None)}
