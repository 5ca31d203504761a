"""Order statistics of measured samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return percentile(values, 50)


def describe(values: Sequence[float], *, digits: int = 3) -> dict[str, float]:
    """``{"median", "p95", "p99", "max"}`` of ``values``, rounded to ``digits``."""
    return {
        "median": round(median(values), digits),
        "p95": round(percentile(values, 95), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits) if values else math.nan,
    }


def median_run(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median of the runs (the lower middle one of an even count),
    with every run's ``key`` in ``runs_<key>``."""
    ordered = sorted(runs, key=lambda run: float(run[key]))
    return {**ordered[(len(ordered) - 1) // 2], f"runs_{key}": [run[key] for run in runs]}
