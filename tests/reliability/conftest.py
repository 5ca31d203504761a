"""Fixtures of the reliability suite: the payment fixtures, PostgreSQL, and a patient client.

Longer soak variants run with ``PI_RELIABILITY_SOAK=1`` (see docs/reliability.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from tests.payments.conftest import api, app, flow, shopper, signal_log

__all__ = ["SOAK", "api", "app", "flow", "postgres", "shopper", "signal_log", "with_retries"]

SOAK = os.environ.get("PI_RELIABILITY_SOAK") == "1"


@pytest.fixture
def postgres(transactional_db: None) -> None:
    """Skip unless the suite runs on PostgreSQL (row locks, concurrent writers, shared files)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL (make test-postgres)")


def with_retries(send: Callable[[], Any], attempts: int = 5) -> tuple[Any, list[int]]:
    """Send a callback until it answers 200, at most ``attempts`` times, as the Pi SDK does.

    Returns the last response and every status seen.
    """
    statuses: list[int] = []
    response = None
    for _ in range(attempts):
        response = send()
        statuses.append(response.status_code)
        if response.status_code == 200:
            break
    return response, statuses
