"""Benchmark 3: ``pi_reconcile`` over payments awaiting completion.

Each run starts from the same state: N Pioneers paid, but the ``complete`` callback never came.
At Pi each payment is approved with a verified transaction (so Pi's incomplete list holds them
all); here each is ``approved`` and has not changed for an hour. The run itself happens in a
child process (:mod:`benchmarks.reconcile_run`), so that its peak memory is its own, and must
leave every payment completed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from django_pi_payments.dto import PaymentDTO
from django_pi_payments.models import Payment, PaymentEvent, PaymentStatus
from django_pi_payments.sandbox import wire
from django_pi_payments.services.core import apply_dto

from .servers import ROOT, Sandbox, child_env
from .stats import median_run


def stage(sandbox: Sandbox, count: int) -> None:
    """Forget every payment, then create ``count`` awaiting completion at Pi and here."""
    sandbox.reset()
    tables = f"{PaymentEvent._meta.db_table}, {Payment._meta.db_table}"
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    now = timezone.now()
    rows = []
    for data in sandbox.seed(count):
        dto = PaymentDTO.from_json(json.loads(wire.dumps(data)))  # as the client decodes it
        payment = Payment(identifier=dto.identifier, status=PaymentStatus.APPROVED, approved_at=now)
        apply_dto(payment, dto)
        payment.txid = None  # recorded by the complete callback, which never came
        rows.append(payment)
    Payment.objects.bulk_create(rows, batch_size=1000)
    Payment.objects.update(updated_at=now - timedelta(hours=1))


def timed(sandbox: Sandbox, env: dict[str, str], count: int, *argv: str) -> dict[str, Any]:
    """Stage ``count`` payments, reconcile them in a child process, check they are completed."""
    stage(sandbox, count)
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.reconcile_run", *argv],
        env=child_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"reconcile_run {argv} failed:\n{child.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    result["payments"] = count
    result["pi_calls"] = sandbox.requests_served()
    completed = Payment.objects.filter(status=PaymentStatus.COMPLETED).count()
    if completed != count:
        raise RuntimeError(f"reconcile_run {argv} completed {completed} of {count} payments")
    return result


def run(
    sandbox: Sandbox,
    env: dict[str, str],
    *,
    payments: int,
    memory_payments: int,
    repeats: int = 1,
) -> dict[str, Any]:
    """1 and 16 workers (the median of ``repeats`` runs), the Pi docs' way, and 16 workers over
    ``memory_payments``."""
    latency = sandbox.latency_ms / 1000
    one = timed(sandbox, env, payments, "library", "--workers", "1")
    sixteen = median_run(
        [timed(sandbox, env, payments, "library", "--workers", "16") for _ in range(repeats)],
        "seconds",
    )
    docs = timed(sandbox, env, payments, "docs")
    many = timed(sandbox, env, memory_payments, "library", "--workers", "16")
    calls_per_payment = sixteen["pi_calls"] / payments
    ideal = {workers: payments * calls_per_payment * latency / workers for workers in (1, 16)}
    return {
        "payments": payments,
        "pi_calls_per_payment": round(calls_per_payment, 3),
        "workers_1": {**one, "ideal_seconds": round(ideal[1], 3)},
        "workers_16": {**sixteen, "ideal_seconds": round(ideal[16], 3)},
        "docs_way": docs,
        "ratio_16_to_ideal": round(sixteen["seconds"] / ideal[16], 3),
        "docs_way_over_16_workers": round(docs["seconds"] / sixteen["seconds"], 2),
        "docs_way_over_1_worker": round(docs["seconds"] / one["seconds"], 2),
        "memory": {
            "payments": [payments, memory_payments],
            "peak_mb": [sixteen["maxrss_mb"], many["maxrss_mb"]],
            "ratio": round(many["maxrss_mb"] / sixteen["maxrss_mb"], 3),
            "seconds_at_largest": many["seconds"],
        },
    }
