"""Load: 64 concurrent clients against gunicorn on PostgreSQL, with pi_reconcile running too.

Two gunicorn instances (gthread, the scale-out tests' servers) share PostgreSQL and Redis. Each
of 64 clients is a Pioneer paying in a loop through the callbacks; one flow in three sends
``complete`` twice (a Pi SDK retry), one in five closes the app after paying and leaves the
payment to ``pi_reconcile``, which runs over and over in the background meanwhile (the client
goes on as another Pioneer: Pi lets nobody start a payment while a paid one is open). The sandbox
answers every Pi call after 20 ms, so row locks are held across real waits.

Every callback must answer 200: no 5xx, no deadlock. Afterwards every paid payment is completed
here and at Pi, with one ``payment_completed`` across all processes. 60 seconds, as the
scenario asks; 300 with ``PI_RELIABILITY_SOAK=1``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import requests
from django.db import connection, connections

from django_pi_payments.models import Payment, PaymentStatus
from django_pi_payments.reconcile import reconcile
from tests.scaleout.conftest import app_servers, cluster, shared_services

from .conftest import SOAK

__all__ = ["app_servers", "cluster", "shared_services"]

pytestmark = pytest.mark.postgres

CLIENTS = 64
SECONDS = 300 if SOAK else 60
LATENCY_MS = 20


class Client(threading.Thread):
    """A Pioneer paying in a loop through one app server until the deadline."""

    def __init__(self, number: int, app_url: str, sandbox, deadline: float) -> None:
        super().__init__(name=f"load-{number}")
        self.number = number
        self.app_url = app_url
        self.sandbox_url = sandbox.url
        self.uid, self.token = "", ""
        self.deadline = deadline
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.paid: list[str] = []
        self.failure: BaseException | None = None

    def control(self, pioneer: requests.Session, path: str, body: dict) -> dict:
        response = pioneer.post(f"{self.sandbox_url}/sandbox/{path}", json=body, timeout=60)
        assert response.status_code == 200, response.text
        answer: dict = response.json()
        return answer

    def become_new_pioneer(self, pioneer: requests.Session) -> None:
        self.uid = self.control(pioneer, "users", {"username": f"load_{self.number}"})["uid"]
        self.token = self.control(pioneer, "tokens", {"uid": self.uid})["access_token"]

    def callback(self, app: requests.Session, route: str, body: dict) -> int:
        started = time.perf_counter()
        response = app.post(f"{self.app_url}/pi_payment/{route}", json=body, timeout=60)
        self.latencies.append(time.perf_counter() - started)
        self.statuses[response.status_code] += 1
        return response.status_code

    def run(self) -> None:
        flows = 0
        try:
            with requests.Session() as app, requests.Session() as pioneer:
                self.become_new_pioneer(pioneer)
                while time.monotonic() < self.deadline:
                    flows += 1
                    body = {"uid": self.uid, "amount": 1.5, "memo": "load"}
                    identifier = self.control(pioneer, "payments", body)["identifier"]
                    approve = {"paymentId": identifier, "accessToken": self.token}
                    if self.callback(app, "approve", approve) != 200:
                        continue
                    path = f"payments/{identifier}/transaction"
                    txid = self.control(pioneer, path, {})["txid"]
                    self.paid.append(identifier)
                    if flows % 5 == 0:  # the app was closed: pi_reconcile completes it
                        self.become_new_pioneer(pioneer)
                        continue
                    for _ in range(2 if flows % 3 == 0 else 1):
                        self.callback(
                            app, "complete", {"paymentId": identifier, "transactionId": txid}
                        )
        except BaseException as exc:  # reported by the test
            self.failure = exc


class ReconcileLoop(threading.Thread):
    """``reconcile()`` again and again until stopped, as overlapping cron runs would."""

    def __init__(self) -> None:
        super().__init__(name="reconcile-loop")
        self.stop = threading.Event()
        self.runs = 0
        self.actions: Counter[str] = Counter()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                report = reconcile(older_than=timedelta(0), workers=4)
                self.runs += 1
                self.actions.update(outcome.action for outcome in report.outcomes)
                self.stop.wait(0.2)
        except BaseException as exc:  # reported by the test
            self.failure = exc
        finally:
            connections.close_all()


def deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_sixty_four_clients(postgres, app_servers, cluster, pi_sandbox, signal_log):
    pi_sandbox.set_config(latency_ms=LATENCY_MS, approval_timeout_seconds=0)
    deadlocks_before = deadlocks()
    deadline = time.monotonic() + SECONDS + 2
    clients = [
        Client(n, app_servers[n % len(app_servers)], pi_sandbox, deadline) for n in range(CLIENTS)
    ]
    loop = ReconcileLoop()
    loop.start()
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    loop.stop.set()
    loop.join()
    for failure in [loop.failure, *(client.failure for client in clients)]:
        if failure is not None:
            raise failure
    final = reconcile(older_than=timedelta(0), workers=8)
    assert not final.failed, final.as_json()
    time.sleep(1.1)  # PostgreSQL publishes its statistics at most once a second

    statuses = sum((client.statuses for client in clients), Counter())
    latencies = sorted(value for client in clients for value in client.latencies)
    assert set(statuses) == {200}, statuses
    assert deadlocks() == deadlocks_before
    paid = [identifier for client in clients for identifier in client.paid]
    local = dict(Payment.objects.filter(identifier__in=paid).values_list("identifier", "status"))
    assert {local[i] for i in paid} == {PaymentStatus.COMPLETED}
    at_pi = {p["identifier"]: p for p in pi_sandbox.payments()}
    assert all(at_pi[i]["status"]["developer_completed"] for i in paid)
    signals = cluster.signals()
    completed_signals = {
        i: signals[("completed", i)] + signal_log.count("completed", i) for i in paid
    }
    assert set(completed_signals.values()) == {1}

    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f"\nload: {CLIENTS} clients for {SECONDS} s: {len(latencies)} callbacks "
        f"({len(latencies) / SECONDS:.0f}/s), {len(paid)} payments; statuses {dict(statuses)}; "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms; reconcile runs {loop.runs} "
        f"{dict(loop.actions)}; deadlocks 0"
    )
