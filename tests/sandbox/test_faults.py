"""Injected faults: status, body, delay, hang, drop, count, rate, method and after=respond."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
import requests

from django_pi_payments.testing import SandboxControlError, SandboxHandle

from .conftest import Api, error_of


def new_payment(sb: SandboxHandle) -> str:
    return str(sb.create_payment(sb.create_user()["uid"], 1)["identifier"])


def test_status_fault_fires_count_times(sb: SandboxHandle, api: Api) -> None:
    identifier = new_payment(sb)
    sb.add_fault("get_payment", status=503, count=2)
    statuses = [api.get(f"/v2/payments/{identifier}").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    calls = sb.calls(route="get_payment")
    assert [c["faulted"] for c in calls] == [True, True, False]
    assert [c["outcome"] for c in calls] == ["fault", "fault", "ok"]
    assert sb.request("GET", "/sandbox/faults") == []


def test_status_fault_bodies(sb: SandboxHandle, api: Api) -> None:
    identifier = new_payment(sb)
    sb.add_fault("approve", status=500)
    response = api.post(f"/v2/payments/{identifier}/approve")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert "We're sorry, but something went wrong." in response.text
    assert sb.payment(identifier)["status"]["developer_approved"] is False

    sb.add_fault("approve", status=502)
    response = api.post(f"/v2/payments/{identifier}/approve")
    assert (response.status_code, error_of(response)) == (502, "sandbox_fault")

    sb.add_fault("horizon_fee_stats", status=503)
    response = api.get("/horizon/fee_stats")
    assert response.status_code == 503
    assert response.json()["status"] == 503

    sb.add_fault("me", body={"error": "forbidden", "error_message": "no"})
    response = api.get("/v2/me")
    assert (response.status_code, error_of(response)) == (403, "forbidden")

    sb.add_fault("me", body="<html>maintenance</html>", status=503)
    response = api.get("/v2/me")
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html>maintenance</html>"

    sb.add_fault("me", body=[1, 2])
    assert api.get("/v2/me").status_code == 500


def test_delay_fault_then_real_answer(sb: SandboxHandle, api: Api) -> None:
    identifier = new_payment(sb)
    sb.add_fault("get_payment", delay_ms=300)
    started = time.monotonic()
    response = api.get(f"/v2/payments/{identifier}")
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert sb.calls()[-1]["faulted"] is True
    assert sb.calls()[-1]["outcome"] == "ok"


def test_hang_fault_times_the_client_out(sb: SandboxHandle, api: Api) -> None:
    sb.add_fault("horizon_root", hang=True, hang_seconds=1)
    with pytest.raises(requests.ReadTimeout):
        api.get("/horizon/", timeout=0.3)
    call = sb.calls()[-1]
    assert (call["status"], call["outcome"]) == (None, "fault")


def test_drop_fault_closes_without_answer(sb: SandboxHandle, api: Api) -> None:
    sb.add_fault("incomplete_server_payments", drop=True)
    with pytest.raises(requests.ConnectionError):
        api.get("/v2/payments/incomplete_server_payments")
    assert api.get("/v2/payments/incomplete_server_payments").status_code == 200


@pytest.mark.parametrize(
    ("fault", "expect"),
    [({}, "dropped"), ({"status": 500}, 500), ({"hang": True, "hang_seconds": 0.2}, "dropped")],
)
def test_after_respond_does_the_work_then_loses_the_answer(
    sb: SandboxHandle, api: Api, fault: dict[str, Any], expect: object
) -> None:
    identifier = new_payment(sb)
    sb.add_fault("approve", after="respond", **fault)
    try:
        outcome: object = api.post(f"/v2/payments/{identifier}/approve").status_code
    except requests.ConnectionError:
        outcome = "dropped"
    assert outcome == expect
    assert sb.payment(identifier)["status"]["developer_approved"] is True
    assert api.post(f"/v2/payments/{identifier}/approve").status_code == 200


def test_method_and_wildcard_filters(sb: SandboxHandle, api: Api) -> None:
    identifier = new_payment(sb)
    sb.add_fault("*", method="post", status=503, count=None)
    assert api.get(f"/v2/payments/{identifier}").status_code == 200
    assert api.get("/horizon/fee_stats").status_code == 200
    for _ in range(3):
        assert api.post(f"/v2/payments/{identifier}/approve").status_code == 503
    [listed] = sb.request("GET", "/sandbox/faults")
    assert (listed["count"], listed["fired"], listed["method"]) == (None, 3, "POST")
    sb.clear_faults()
    assert api.post(f"/v2/payments/{identifier}/approve").status_code == 200


def test_rate_fault_is_seeded(sb: SandboxHandle, api: Api) -> None:
    def run(rate: float) -> list[int]:
        sb.clear_faults()
        sb.add_fault("horizon_fee_stats", status=503, rate=rate, seed=7)
        return [api.get("/horizon/fee_stats").status_code for _ in range(30)]

    first = run(0.5)
    assert 0 < first.count(503) < 30
    assert run(0.5) == first
    assert set(run(1.0)) == {503}
    assert set(run(0.0)) == {200}


def test_control_calls_are_never_faulted(sb: SandboxHandle) -> None:
    sb.add_fault("*", status=500, count=None)
    assert sb.create_user()["uid"]


@pytest.mark.parametrize(
    "spec",
    [
        {"route": "nope"},
        {"route": "me", "status": 99},
        {"route": "me", "status": "500"},
        {"route": "me", "after": "request"},
        {"route": "me", "count": 0},
        {"route": "me", "rate": 2},
        {"route": "me", "delay_ms": -1},
        {"route": "me", "delay_ms": 10**400},
        {"route": "me", "delay_ms": Decimal("1e300")},
        {"route": "me", "hang": True, "hang_seconds": Decimal("1e300")},
        {"route": "me", "hang": "yes"},
        {"route": "me", "seed": 1.5},
        {"route": "me", "method": 1},
        {"route": "me", "colour": "red"},
    ],
)
def test_invalid_fault_specs(sb: SandboxHandle, spec: dict[str, Any]) -> None:
    with pytest.raises(SandboxControlError) as failure:
        sb.request("POST", "/sandbox/faults", spec)
    assert failure.value.status == 400
    assert failure.value.body["error"] == "invalid_arguments"
