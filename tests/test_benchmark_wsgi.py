"""The benchmark project's timed WSGI entry point, whose header splits a callback's time."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from benchmarks.project.wsgi import APP_TIME_HEADER, timed


def test_the_app_time_header_holds_the_application_time() -> None:
    def slow_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        time.sleep(0.02)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> None:
        started.append((status, headers))

    before = time.perf_counter()
    body = timed(slow_app)({"REQUEST_METHOD": "GET"}, start_response)
    outside_ms = (time.perf_counter() - before) * 1000

    assert list(body) == [b"done"]
    [(status, headers)] = started
    assert status == "200 OK"
    assert headers[0] == ("Content-Type", "text/plain")
    values = [value for name, value in headers if name == APP_TIME_HEADER]
    assert len(values) == 1
    assert 20 <= float(values[0]) <= outside_ms
