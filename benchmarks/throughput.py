"""Benchmark 4: full payment flows from many concurrent clients.

Each client is one Pioneer signed in through ``auth``, paying in a loop: the sandbox creates the
payment, the client sends ``approve``, the Pioneer's transaction reaches the ledger, the client
sends ``complete``. Only callbacks answered within the measured window count; every answer must
be a 200.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

from .client import JSONClient
from .servers import Sandbox
from .stats import describe


class _Client(threading.Thread):
    """One Pioneer paying again and again until ``deadline``."""

    def __init__(self, app_url: str, sandbox: Sandbox, uid: str, token: str) -> None:
        super().__init__(daemon=True)
        self.app = JSONClient(app_url)
        self.control = JSONClient(sandbox.url, exact=True)
        self.uid, self.token = uid, token
        self.deadline = 0.0
        self.ready = threading.Event()
        self.go = threading.Event()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.control.request(method, path, body)
        if reply.status != 200:
            raise RuntimeError(f"sandbox {path}: {reply.status} {reply.data}")
        return reply.data

    def _callback(self, route: str, body: dict[str, Any]) -> bool:
        reply = self.app.post(f"/pi_payment/{route}", body)
        if time.perf_counter() <= self.deadline:
            self.latencies.append(reply.seconds)
            if reply.status != 200:
                self.errors.append(f"{route}: {reply.status} {reply.data}")
        return reply.status == 200

    def run(self) -> None:
        try:
            login = self.app.post("/pi_payment/auth", {"accessToken": self.token})
            if login.status != 200:
                raise RuntimeError(f"auth answered {login.status}")
            self.ready.set()
            self.go.wait()
            while time.perf_counter() < self.deadline:
                body = {"uid": self.uid, "amount": Decimal("1.5"), "memo": "load"}
                identifier = self._control("POST", "/sandbox/payments", body)["identifier"]
                approve = {"paymentId": identifier, "accessToken": self.token}
                if not self._callback("approve", approve):
                    continue
                path = f"/sandbox/payments/{identifier}/transaction"
                txid = self._control("POST", path, {})["txid"]
                self._callback("complete", {"paymentId": identifier, "transactionId": txid})
        except Exception as exc:  # reported with the results; the level goes on without it
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.ready.set()
            self.app.close()
            self.control.close()


def run_level(app_url: str, sandbox: Sandbox, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` Pioneers paying for ``seconds``: callbacks per second, p50, p99, errors."""
    sandbox.reset()
    pioneers = [sandbox.pioneer(f"load_{clients}_{n}") for n in range(clients)]
    threads = [_Client(app_url, sandbox, uid, token) for uid, token in pioneers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.deadline = started + seconds
        thread.go.set()
    for thread in threads:
        thread.join()
    latencies = [value * 1000 for thread in threads for value in thread.latencies]
    errors = [error for thread in threads for error in thread.errors]
    return {
        "clients": clients,
        "seconds": seconds,
        "callbacks": len(latencies),
        "per_second": round(len(latencies) / seconds, 1),
        "ms": describe(latencies, digits=1),
        "errors": len(errors),
        "first_errors": errors[:5],
    }
