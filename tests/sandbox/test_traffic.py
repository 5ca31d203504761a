"""Call log, connection counter, keep-alive, latency and the approval timeout clock."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from django_pi_payments.testing import SandboxHandle

from .conftest import API_KEY, Api, FakeClock, error_of


def test_call_log_records_api_calls_only(sb: SandboxHandle, api: Api) -> None:
    _, token = sb.login()
    api.get("/v2/me", auth=f"Bearer {token}")
    api.get("/v2/payments/nope")
    api.get("/horizon/fee_stats", auth=None)
    calls = sb.calls()
    assert [(c["seq"], c["method"], c["route"], c["status"]) for c in calls] == [
        (1, "GET", "me", 200),
        (2, "GET", "get_payment", 404),
        (3, "GET", "horizon_fee_stats", 200),
    ]
    assert [c["auth"] for c in calls] == ["bearer", "key", None]
    assert [c["outcome"] for c in calls] == ["ok", "error", "ok"]
    text = repr(calls)
    assert token not in text
    assert API_KEY not in text
    assert sb.calls(route="me") == calls[:1]
    sb.clear_calls()
    assert sb.calls() == []
    assert sb.stats() == {"connections": 0, "requests": 0}


def test_keep_alive_session_is_one_connection(sb: SandboxHandle, api: Api) -> None:
    identifier = sb.create_payment(sb.create_user()["uid"], 1)["identifier"]
    started = time.monotonic()
    for _ in range(20):
        assert api.get(f"/v2/payments/{identifier}").status_code == 200
    elapsed = time.monotonic() - started
    assert sb.stats() == {"connections": 1, "requests": 20}
    assert elapsed < 1.0  # no Nagle / delayed-ACK stall on the reused connection
    for _ in range(3):
        requests.get(f"{sb.horizon_url}/fee_stats", timeout=5)  # a new connection each
    assert sb.stats() == {"connections": 4, "requests": 23}


def test_reset_counts_a_reused_connection_again(sb: SandboxHandle, api: Api) -> None:
    api.get("/horizon/", auth=None)
    sb.reset()
    api.get("/horizon/", auth=None)
    assert sb.stats() == {"connections": 1, "requests": 1}


def test_latency_applies_to_api_calls_only(sb: SandboxHandle, api: Api) -> None:
    sb.set_config(latency_ms=150)
    started = time.monotonic()
    api.get("/horizon/fee_stats", auth=None)
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    sb.stats()
    assert time.monotonic() - started < 0.15


def test_a_call_acts_on_arrival_and_answers_after_the_latency(sb: SandboxHandle, api: Api) -> None:
    identifier = sb.create_payment(sb.create_user()["uid"], 1)["identifier"]
    sb.set_config(latency_ms=400)
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        answer = pool.submit(api.post, f"/v2/payments/{identifier}/approve")
        time.sleep(0.2)
        # Half-way through the round trip Pi has acted; its answer is still on the way back.
        assert sb.payment(identifier)["status"]["developer_approved"] is True
        assert not answer.done()
        assert answer.result().status_code == 200
    assert time.monotonic() - started >= 0.4


def test_approval_timeout_with_injected_clock(
    sb: SandboxHandle, api: Api, clock: FakeClock
) -> None:
    sb.set_config(approval_timeout_seconds=60)
    user = sb.create_user()
    late = sb.create_payment(user["uid"], 1)["identifier"]
    clock.advance(59)
    assert api.get(f"/v2/payments/{late}").json()["status"]["cancelled"] is False
    clock.advance(1)
    status = api.get(f"/v2/payments/{late}").json()["status"]
    assert (status["cancelled"], status["user_cancelled"]) == (True, False)
    response = api.post(f"/v2/payments/{late}/approve")
    assert error_of(response) == "cancelled_payment"

    on_time = sb.create_payment(user["uid"], 1)["identifier"]
    assert api.post(f"/v2/payments/{on_time}/approve").status_code == 200
    clock.advance(3600)
    assert sb.payment(on_time)["status"]["cancelled"] is False


def test_approval_timeout_zero_disables_it(sb: SandboxHandle, api: Api, clock: FakeClock) -> None:
    sb.set_config(approval_timeout_seconds=0)
    identifier = sb.create_payment(sb.create_user()["uid"], 1)["identifier"]
    clock.advance(10**6)
    assert api.post(f"/v2/payments/{identifier}/approve").status_code == 200


@pytest.mark.parametrize("route", ["/v2/payments/x/cancel", "/v2/payments/x/approve"])
def test_empty_json_body_is_accepted(sb: SandboxHandle, api: Api, route: str) -> None:
    identifier = sb.create_payment(sb.create_user()["uid"], 1)["identifier"]
    response = api.post(
        route.replace("x", identifier), data=b"", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200


def test_chunked_body_is_refused(sb: SandboxHandle) -> None:
    hostname, port = sb.url.removeprefix("http://").split(":")
    with socket.create_connection((hostname, int(port)), timeout=5) as connection:
        connection.sendall(
            b"POST /v2/payments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n"
        )
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 411 ")
    assert b'"error":"length_required"' in answer
    assert b"Connection: close" in answer


@pytest.mark.parametrize("length", [2 * 1024 * 1024, 100 * 1024**3])
def test_an_oversized_body_is_refused_unread(sb: SandboxHandle, length: int) -> None:
    hostname, port = sb.url.removeprefix("http://").split(":")
    with socket.create_connection((hostname, int(port)), timeout=5) as connection:
        connection.sendall(
            b"POST /v2/payments HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode()
            + b"{"
        )
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"error":"payload_too_large"' in answer
    assert b"Connection: close" in answer
