"""One timed reconciliation, in a process of its own so that its peak memory is its own.

``python -m benchmarks.reconcile_run library --workers 16`` runs
:func:`django_pi_payments.reconcile.reconcile`; ``python -m benchmarks.reconcile_run docs`` does
the same work the way the Pi docs' sample code does: one ``requests.get``/``requests.post`` per
call (a new connection each time), one payment after the other. Either prints one JSON line:
``{"seconds", "cpu_seconds", "maxrss_mb", "baseline_mb", "counts"}``.

``maxrss_mb`` is the process's peak resident set size (``VmHWM``); ``baseline_mb`` the peak once
Django, the app and the database connection are loaded, before the run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import django


def _peak_rss_mb() -> float:
    """This process's peak resident set size so far.

    Linux's ``VmHWM`` belongs to this program's memory map; ``ru_maxrss`` would also count the
    parent's size at the fork that started us.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_library(workers: int) -> dict[str, int]:
    """``reconcile()`` with ``workers`` threads: the counts of its report."""
    from django_pi_payments.reconcile import reconcile

    report = reconcile(older_than=timedelta(minutes=10), workers=workers)
    return report.counts


def run_docs() -> dict[str, int]:
    """The Pi docs' way: fresh requests per call, sequential, then mark the order paid."""
    import requests
    from django.utils import timezone

    from django_pi_payments.conf import pi_settings
    from django_pi_payments.models import Payment

    api = pi_settings.api_url
    headers = {"Authorization": f"Key {pi_settings.API_KEY}"}
    timeout = pi_settings.TIMEOUT
    listed = requests.get(
        f"{api}/payments/incomplete_server_payments", headers=headers, timeout=timeout
    )
    counts: Counter[str] = Counter()
    for payment in listed.json()["incomplete_server_payments"]:
        identifier, txid = payment["identifier"], payment["transaction"]["txid"]
        horizon = f"{pi_settings.horizon_url}/transactions/{txid}"
        tx = requests.get(horizon, timeout=timeout).json()
        operations = requests.get(f"{horizon}/operations", timeout=timeout).json()
        paid = any(
            op["to"] == payment["to_address"] and float(op["amount"]) == payment["amount"]
            for op in operations["_embedded"]["records"]
        )
        if tx["memo"] != identifier or not paid:
            counts["refused"] += 1
            continue
        url = f"{api}/payments/{identifier}/complete"
        completed = requests.post(url, headers=headers, json={"txid": txid}, timeout=timeout)
        if completed.status_code != 200:
            counts["failed"] += 1
            continue
        Payment.objects.filter(identifier=identifier).update(
            status="completed", txid=txid, completed_at=timezone.now()
        )
        counts["complete"] += 1
    counts["total"] = sum(counts.values())
    return dict(counts)


def main() -> int:
    """Parse the mode, run it once, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["library", "docs"])
    parser.add_argument("--workers", type=int, default=16)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.project.settings")
    django.setup()
    from django.db import connection

    connection.ensure_connection()
    baseline = _peak_rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    counts = run_library(options.workers) if options.mode == "library" else run_docs()
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "maxrss_mb": round(_peak_rss_mb(), 1),
        "baseline_mb": round(baseline, 1),
        "counts": counts,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
