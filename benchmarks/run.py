"""``make bench``: every benchmark of docs/performance.md in one run, one table, one JSON file.

Needs ``DATABASE_URL`` (PostgreSQL, e.g. from ``scripts/with-postgres.sh``) and uses ``REDIS_URL``
when set (``scripts/with-redis.sh``). Starts the sandbox with 20 ms of latency per Pi call (or
``--latency-ms``) and gunicorn serving :mod:`benchmarks.project`, runs the four benchmarks, prints
the table, writes ``benchmarks/results.json`` and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django

from . import auth_request, callbacks, throughput
from .servers import Gunicorn, Sandbox
from .stats import describe, median_run

# The stand-in for the internet round trip to Pi; its targets are set against it.
LATENCY_MS = 20
RESULTS = Path(__file__).with_name("results.json")
SETTINGS = "benchmarks.project.settings"
# The throughput levels the target compares: 16 clients against 1.
COMPARED_LEVELS = (1, 16)


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does."""

    callbacks: int = 200
    plain_completes: int = 50
    auth_requests: int = 50
    reconcile_payments: int = 1000
    memory_payments: int = 10_000
    throughput_seconds: float = 20.0
    throughput_clients: tuple[int, ...] = (1, 4, 16, 64)
    # The runs a target compares (reconcile with 16 workers; throughput with 1 and 16 clients) are
    # repeated and the median run reported: one run on a shared machine moves by 10 to 20%.
    repeats: int = 3


QUICK = Sizes(
    repeats=1,
    callbacks=20,
    plain_completes=10,
    auth_requests=10,
    reconcile_payments=100,
    memory_payments=1000,
    throughput_seconds=3.0,
)


def calibrate(sandbox: Sandbox, count: int = 50) -> dict[str, float]:
    """A Pi round trip as the app sees it: one GET through the app's transport, milliseconds."""
    from django_pi_payments.http import Transport

    transport = Transport(sandbox.url, timeout=10, max_retries=0)
    headers = {"Authorization": "Key sandbox-api-key"}
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            transport.request("GET", "/v2/payments/calibration", headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        transport.close()
    return describe(samples, digits=2)


def machine(latency_ms: int) -> dict[str, Any]:
    """What ran the benchmarks."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0].split(":", 1)[1].strip() if names else model
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f"{total_kb / 1024 / 1024:.0f} GB"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": postgres,
        "cache": "redis" if os.environ.get("REDIS_URL") else "file",
        "latency_ms": latency_ms,
    }


def run_all(sizes: Sizes, latency_ms: int = LATENCY_MS) -> dict[str, Any]:
    """Start the sandbox and gunicorn, run the four benchmarks, return every figure."""
    from django.core.management import call_command

    results: dict[str, Any] = {}
    with Sandbox(latency_ms) as sandbox:
        os.environ["BENCH_SANDBOX_URL"] = sandbox.url
        django.setup()
        from . import reconcile_scale  # uses the models: only once Django is set up

        call_command("migrate", verbosity=0)
        results["machine"] = machine(latency_ms)
        env = {"DJANGO_SETTINGS_MODULE": SETTINGS, "BENCH_SANDBOX_URL": sandbox.url}
        results["pi_round_trip_ms"] = calibrate(sandbox)
        step("callbacks")
        with Gunicorn(env) as server:
            results["callbacks"] = callbacks.run(server.url, sandbox, count=sizes.callbacks)
            step("authenticated request")
            results["auth_request"] = auth_request.run(
                server.url, sandbox, count=sizes.auth_requests
            )
            levels = []
            for clients in sizes.throughput_clients:
                step(f"throughput, {clients} clients")
                repeats = sizes.repeats if clients in COMPARED_LEVELS else 1
                runs = [
                    throughput.run_level(server.url, sandbox, clients, sizes.throughput_seconds)
                    for _ in range(repeats)
                ]
                level = median_run(runs, "per_second")
                level["errors_all_runs"] = sum(run["errors"] for run in runs)
                levels.append(level)
            results["throughput"] = levels
        step("complete without VERIFY_TRANSACTIONS")
        plain_env = {**env, "BENCH_VERIFY_TRANSACTIONS": "0"}
        with Gunicorn(plain_env, args=("--workers", "1")) as plain:
            plain_run = callbacks.run(plain.url, sandbox, count=sizes.plain_completes)
        results["complete_without_verification"] = plain_run["complete"]
        step("reconcile")
        results["reconcile"] = reconcile_scale.run(
            sandbox,
            env,
            payments=sizes.reconcile_payments,
            memory_payments=sizes.memory_payments,
            repeats=sizes.repeats,
        )
    return results


def step(name: str) -> None:
    """Progress on stderr."""
    print(f"[bench] {time.strftime('%H:%M:%S')} {name}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    section: str
    figure: str
    measured: str
    target: str = ""
    met: bool | None = None


def _runs(found: dict[str, Any], key: str, unit: str) -> str:
    """`` (median of 3: a, b, c unit)`` for a repeated measurement, else nothing."""
    runs = found.get(f"runs_{key}", [])
    if len(runs) < 2:
        return ""
    return f" (median of {len(runs)}: {', '.join(f'{run:g}' for run in runs)}{unit})"


def _ms(summary: dict[str, float]) -> str:
    return f"{summary['median']:.1f} / {summary['p95']:.1f} ms"


def rows(results: dict[str, Any]) -> list[Row]:
    """The table: every figure, and its target where the issue sets one."""
    out: list[Row] = []

    def add(*fields: Any) -> None:
        out.append(Row(*fields))

    trip = results["pi_round_trip_ms"]
    latency_ms = results["machine"]["latency_ms"]
    add("1 callbacks", "one Pi round trip (the app's transport)", _ms(trip))
    add(
        "1 callbacks",
        f"floor: one round trip / {latency_ms} ms (no app work)",
        f"{trip['median'] / latency_ms:.2f}",
    )
    for route in ("approve", "complete"):
        found = results["callbacks"][route]
        ratio = found["ratio"]
        add(
            "1 callbacks",
            f"{route}: time / (Pi calls x {latency_ms} ms)",
            f"{ratio['median']:.2f} (p95 {ratio['p95']:.2f})",
            "median <= 1.15",
            ratio["median"] <= 1.15,
        )
        add("1 callbacks", f"{route}: median / p95", _ms(found["ms"]))
        add(
            "1 callbacks",
            f"{route}: in the app / outside it (gunicorn, loopback, client)",
            f"{found['app_ms']['median']:.1f} / {found['outside_app_ms']['median']:.2f} ms",
        )
        calls = found["pi_calls"]
        if route == "approve":
            trips = max(calls)  # approve's calls are sequential: one round trip each
            own = found["app_ms"]["median"] - trips * trip["median"]
            add("1 callbacks", f"approve: in the app less its {trips} round trips", f"{own:.1f} ms")
            add("1 callbacks", "approve: Pi calls", str(calls), "= 2", calls == [2])
        else:
            add("1 callbacks", "complete: Pi calls", str(calls), "<= 4", max(calls) <= 4)
        queries = found["queries"]
        add("1 callbacks", f"{route}: DB queries (max)", str(queries), "<= 8", queries <= 8)
    plain = results["complete_without_verification"]
    add(
        "1 callbacks",
        "complete, VERIFY_TRANSACTIONS off: Pi calls",
        str(plain["pi_calls"]),
        "<= 2",
        max(plain["pi_calls"]) <= 2,
    )
    add(
        "1 callbacks",
        "complete, VERIFY_TRANSACTIONS off: ratio",
        f"{plain['ratio']['median']:.2f} (p95 {plain['ratio']['p95']:.2f})",
    )
    cold, warm = results["auth_request"]["cold"], results["auth_request"]["warm"]
    add("2 auth request", "cold /me cache: median / p95", _ms(cold["ms"]))
    add("2 auth request", "cold: Pi calls / DB queries", f"{cold['pi_calls']} / {cold['queries']}")
    add("2 auth request", "warm /me cache: median / p95", _ms(warm["ms"]))
    add("2 auth request", "warm: Pi calls", str(warm["pi_calls"]), "= 0", warm["pi_calls"] == [0])
    add(
        "2 auth request",
        "warm: DB queries (max)",
        str(warm["queries"]),
        "<= 2",
        warm["queries"] <= 2,
    )
    rec = results["reconcile"]
    n = rec["payments"]
    add("3 reconcile", "Pi calls per payment", f"{rec['pi_calls_per_payment']:.3f}")
    for workers in (1, 16):
        run = rec[f"workers_{workers}"]
        add(
            "3 reconcile",
            f"{n} payments, {workers} worker(s): wall / ideal",
            f"{run['seconds']:.2f} s / {run['ideal_seconds']:.2f} s{_runs(run, 'seconds', ' s')}",
        )
    sixteen = rec["workers_16"]
    add(
        "3 reconcile",
        "16 workers: CPU per payment / ideal wall per payment",
        f"{sixteen['cpu_seconds'] / n * 1000:.1f} ms / "
        f"{sixteen['ideal_seconds'] / n * 1000:.2f} ms",
    )
    add(
        "3 reconcile",
        "16 workers: wall / ideal",
        f"{rec['ratio_16_to_ideal']:.2f}",
        "<= 1.3",
        rec["ratio_16_to_ideal"] <= 1.3,
    )
    docs = rec["docs_way"]
    add(
        "3 reconcile",
        "Pi docs' way (fresh requests, sequential)",
        f"{docs['seconds']:.2f} s = {rec['docs_way_over_16_workers']:.1f} x 16 workers, "
        f"{rec['docs_way_over_1_worker']:.2f} x 1 worker",
    )
    memory = rec["memory"]
    small, large = memory["payments"]
    add(
        "3 reconcile",
        f"peak RSS {small} / {large} payments",
        f"{memory['peak_mb'][0]:.0f} / {memory['peak_mb'][1]:.0f} MB = {memory['ratio']:.2f}",
        "<= 1.5",
        memory["ratio"] <= 1.5,
    )
    levels = {level["clients"]: level for level in results["throughput"]}
    for clients, level in levels.items():
        add(
            "4 throughput",
            f"{clients} client(s), {level['seconds']:.0f} s: callbacks/s, p50 / p99",
            f"{level['per_second']:.1f}/s, "
            f"{level['ms']['median']:.0f} / {level['ms']['p99']:.0f} ms"
            f"{_runs(level, 'per_second', '/s')}",
            "no error",
            level["errors_all_runs"] == 0,
        )
    if 1 in levels and 16 in levels:
        scale = levels[16]["per_second"] / levels[1]["per_second"]
        add("4 throughput", "16 clients / 1 client", f"{scale:.1f} x", ">= 10 x", scale >= 10)
    return out


def render(table: list[Row]) -> str:
    """The rows as a fixed-width text table."""
    header = ("benchmark", "figure", "measured", "target", "")
    lines = [
        (
            r.section,
            r.figure,
            r.measured,
            r.target,
            "" if r.met is None else ("ok" if r.met else "MISSED"),
        )
        for r in table
    ]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(5)]
    rule = "  ".join("-" * width for width in widths)
    text = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), rule]
    text += [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    ]
    text.append(rule)
    return "\n".join(line.rstrip() for line in text)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; 0 when every target is met, 1 otherwise, 2 without PostgreSQL."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (figures vary)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON file to write")
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=LATENCY_MS,
        help=f"the sandbox's latency per Pi call (default {LATENCY_MS}; the targets assume it)",
    )
    options = parser.parse_args(argv)
    if options.latency_ms < 1:
        parser.error("--latency-ms must be at least 1")
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("benchmarks need PostgreSQL: run `make bench` (DATABASE_URL)", file=sys.stderr)
        return 2
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    started = time.monotonic()
    results = run_all(QUICK if options.quick else Sizes(), options.latency_ms)
    results["total_seconds"] = round(time.monotonic() - started, 1)
    table = rows(results)
    results["targets"] = [
        {
            "figure": f"{r.section}: {r.figure}",
            "measured": r.measured,
            "target": r.target,
            "met": r.met,
        }
        for r in table
        if r.met is not None
    ]
    options.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(table))
    print(f"{results['total_seconds']:.0f} s in all; figures in {options.output}")
    return 0 if all(r.met is not False for r in table) else 1
