"""Chaos: 300 payments through the callbacks while a fifth of the Pi calls fail.

The sandbox fails 20% of the Pi and Horizon calls (seeded): answers 500 or 503, hangs past the
client timeout, drops the connection before or after doing the work. Each Pioneer's client
retries each callback up to 5 times, as the Pi SDK does; each Pioneer pays only if Pi shows the
payment approved, and one in ten closes the app right after paying (no ``complete`` callback at
all). Then ``pi_reconcile`` runs, with the faults still on, until nothing is left.

Nothing may be lost (every payment with a verified transaction at Pi is completed at Pi and
here), nothing doubled (one ``payment_completed`` per completed payment, one complete accepted
by Pi each), and every stored payment must end in Pi's status.
"""

from __future__ import annotations

import io
import json
import queue
import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from rest_framework.test import APIClient

from django_pi_payments.dto import PaymentDTO
from django_pi_payments.models import Payment, PaymentStatus
from django_pi_payments.sandbox import wire
from django_pi_payments.services.core import status_from_dto

from .conftest import SOAK, with_retries

pytestmark = pytest.mark.postgres

PAYMENTS = 1000 if SOAK else 300
CLIENTS = 16
ABANDON_EVERY = 10  # this Pioneer closes the app after paying
FAULT_RATE = 0.20
TIMEOUT = 0.5  # seconds: PI_PAYMENTS["TIMEOUT"]; hangs last twice as long
FAULTS: list[dict[str, Any]] = [
    {"status": 500},
    {"status": 503},
    {"hang": True, "hang_seconds": 2 * TIMEOUT},
    {"after": "respond", "hang": True, "hang_seconds": 2 * TIMEOUT},
    {"drop": True},
    {"after": "respond"},
]


def inject_faults(sandbox: Any) -> None:
    """Register ``FAULTS`` on every route so that each fires on an equal share of 20% of calls.

    The first matching fault wins, so the i-th fault fires at ``share / (1 - i * share)``.
    """
    share = FAULT_RATE / len(FAULTS)
    for index, fault in enumerate(FAULTS):
        rate = share / (1 - index * share)
        sandbox.add_fault("*", rate=round(rate, 6), seed=index + 1, count=None, **fault)


class Pioneer:
    """One user paying once through the callbacks, retrying like the Pi SDK."""

    def __init__(self, sandbox: Any, number: int) -> None:
        self.sandbox = sandbox
        user, self.token = sandbox.login(username=f"chaos_{number}")
        self.identifier: str = sandbox.create_payment(user["uid"], "1.5", memo="chaos")[
            "identifier"
        ]
        self.abandons = number % ABANDON_EVERY == 0
        self.statuses: list[int] = []

    def pay(self, api: APIClient) -> None:
        _approve, statuses = with_retries(
            lambda: api.post(
                "/pi_payment/approve",
                {"paymentId": self.identifier, "accessToken": self.token},
                format="json",
            )
        )
        self.statuses += statuses
        if not self.sandbox.payment(self.identifier)["status"]["developer_approved"]:
            return  # the wallet lets nobody pay an unapproved payment
        txid = self.sandbox.submit_transaction(self.identifier)["txid"]
        if self.abandons:
            return
        _complete, statuses = with_retries(
            lambda: api.post(
                "/pi_payment/complete",
                {"paymentId": self.identifier, "transactionId": txid},
                format="json",
            )
        )
        self.statuses += statuses


def pay_all(pioneers: list[Pioneer]) -> None:
    """Every Pioneer pays, ``CLIENTS`` at a time."""
    todo: queue.Queue[Pioneer] = queue.Queue()
    for pioneer in pioneers:
        todo.put(pioneer)
    failures: list[BaseException] = []

    def work() -> None:
        api = APIClient()
        try:
            while True:
                try:
                    pioneer = todo.get_nowait()
                except queue.Empty:
                    return
                pioneer.pay(api)
        except BaseException as exc:  # reported by the test
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def reconcile_until_done(max_runs: int = 30) -> list[dict[str, int]]:
    """Run ``pi_reconcile`` until a run finds nothing to do and nothing failed."""
    runs: list[dict[str, int]] = []
    for _ in range(max_runs):
        out = io.StringIO()
        try:
            call_command(
                "pi_reconcile", "--older-than", "0", "--workers", "8", "--json", stdout=out
            )
        except CommandError:  # Pi's incomplete list itself could not be read: try again
            runs.append({"unreadable": 1})
            continue
        counts = json.loads(out.getvalue())["counts"]
        runs.append(counts)
        if counts["total"] == 0:
            return runs
    pytest.fail(f"pi_reconcile still had work after {max_runs} runs: {runs}")


def test_chaos(postgres, app, signal_log, settings):
    pi_sandbox = app
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "TIMEOUT": TIMEOUT}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        # One client address sends every callback: throttling is not what this test is about.
        "DEFAULT_THROTTLE_RATES": {"pi_payments_callbacks": None, "pi_payments_auth": None},
    }
    pioneers = [Pioneer(pi_sandbox, number) for number in range(PAYMENTS)]
    inject_faults(pi_sandbox)
    started = time.monotonic()
    pay_all(pioneers)
    paying = time.monotonic() - started
    for pioneer in pioneers:  # Pi's approval timeout ends every payment left unapproved
        if not pi_sandbox.payment(pioneer.identifier)["status"]["developer_approved"]:
            pi_sandbox.expire_payment(pioneer.identifier)
    runs = reconcile_until_done()
    faults = {fault["id"]: fault["fired"] for fault in pi_sandbox.request("GET", "/sandbox/faults")}
    pi_sandbox.clear_faults()

    at_pi = {
        pioneer.identifier: PaymentDTO.from_json(
            json.loads(wire.dumps(pi_sandbox.payment(pioneer.identifier)))
        )
        for pioneer in pioneers
    }
    local = {payment.identifier: payment for payment in Payment.objects.all()}
    complete_calls = pi_sandbox.calls("complete")
    accepted = Counter(c["path"].split("/")[3] for c in complete_calls if c["status"] == 200)
    answered = [c for c in complete_calls if not c["faulted"]]
    statuses = Counter(status for pioneer in pioneers for status in pioneer.statuses)

    verified = [i for i, dto in at_pi.items() if dto.has_verified_transaction]
    lost = [
        i
        for i in verified
        if not at_pi[i].status.developer_completed or local[i].status != PaymentStatus.COMPLETED
    ]
    assert not lost, f"lost: {lost}"
    completed = [i for i, payment in local.items() if payment.status == PaymentStatus.COMPLETED]
    doubled = [i for i in at_pi if signal_log.count("completed", i) != (i in completed)]
    assert not doubled, f"payment_completed sent other than once per completed payment: {doubled}"
    assert all(call["status"] == 200 for call in answered), "complete sent for a done payment"
    assert max(accepted.values(), default=0) <= 1
    mismatched = {
        i: (payment.status, status_from_dto(at_pi[i]))
        for i, payment in local.items()
        if payment.status != status_from_dto(at_pi[i])
    }
    assert not mismatched, f"local status differs from Pi's: {mismatched}"
    never_stored = set(at_pi) - set(local)
    assert all(
        at_pi[i].is_cancelled and not at_pi[i].status.developer_approved for i in never_stored
    )
    assert 500 not in statuses, "an unhandled error reached a client"

    print(
        f"\nchaos: {PAYMENTS} payments paid by {CLIENTS} clients in {paying:.1f} s; "
        f"faults fired {sum(faults.values())} ({sorted(faults.values())}); "
        f"callback answers {dict(sorted(statuses.items()))}; "
        f"completed {len(completed)} (by reconcile: "
        f"{sum(run.get('complete', 0) + run.get('mark_completed', 0) for run in runs)}), "
        f"never stored {len(never_stored)}; reconcile runs {runs}"
    )
