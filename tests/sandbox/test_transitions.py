"""Every payment state x every action, as PI_PLATFORM_API.md §4.4 says (one table)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from django_pi_payments.testing import SandboxHandle

from .conftest import Api, error_of


@dataclass
class Built:
    identifier: str
    txid: str  # the txid a well-behaved client would complete with


def _u2a(sb: SandboxHandle, api: Api, *steps: str) -> Built:
    user = sb.create_user()
    payment = sb.create_payment(user["uid"], "3.1415926", memo="order 1")
    identifier = payment["identifier"]
    txid = secrets.token_hex(32)
    for step in steps:
        if step == "approve":
            assert api.post(f"/v2/payments/{identifier}/approve").status_code == 200
        elif step in ("tx", "tx_unverified"):
            txid = sb.submit_transaction(identifier, verified=step == "tx")["txid"]
        elif step == "complete":
            assert api.post(f"/v2/payments/{identifier}/complete", json={"txid": txid}).ok
        elif step == "cancel":
            assert api.post(f"/v2/payments/{identifier}/cancel").ok
        elif step == "user_cancel":
            sb.user_cancel(identifier)
        else:
            sb.expire_payment(identifier)
    return Built(identifier, txid)


def _a2u(sb: SandboxHandle, api: Api, *steps: str) -> Built:
    user = sb.create_user()
    body = {"payment": {"amount": 2, "memo": "refund", "metadata": {}, "uid": user["uid"]}}
    response = api.post("/v2/payments", json=body)
    assert response.status_code == 200, response.text
    identifier = response.json()["identifier"]
    txid = sb.submit_transaction(identifier)["txid"]  # on the ledger, not linked
    for step in steps:
        if step == "complete":
            assert api.post(f"/v2/payments/{identifier}/complete", json={"txid": txid}).ok
        else:
            assert api.post(f"/v2/payments/{identifier}/cancel").ok
    return Built(identifier, txid)


STATES: dict[str, tuple[Any, tuple[str, ...], str]] = {
    # name: (builder, steps, flags: approved verified completed cancelled user_cancelled)
    "u2a_created": (_u2a, (), "00000"),
    "u2a_approved": (_u2a, ("approve",), "10000"),
    "u2a_tx_unverified": (_u2a, ("approve", "tx_unverified"), "10000"),
    "u2a_tx_verified": (_u2a, ("approve", "tx"), "11000"),
    "u2a_completed": (_u2a, ("approve", "tx", "complete"), "11100"),
    "u2a_cancelled": (_u2a, ("cancel",), "00010"),
    "u2a_user_cancelled": (_u2a, ("user_cancel",), "00011"),
    "u2a_expired": (_u2a, ("expire",), "00010"),
    "a2u_created": (_a2u, (), "10000"),
    "a2u_completed": (_a2u, ("complete",), "11100"),
    "a2u_cancelled": (_a2u, ("cancel",), "10010"),
}

ACTIONS = (
    "approve",
    "complete",
    "complete_no_txid",
    "complete_other_txid",
    "cancel",
    "user_tx",
    "user_cancel",
    "expire",
)

OK, CANCELLED, DONE, TX = "ok", "cancelled_payment", "already_completed", "payment_tx_present"
INVALID, UNVERIFIED = "invalid_arguments", "not_verified"

# state -> expected code per action, in ACTIONS order ("ok" = HTTP 200)
TABLE: dict[str, tuple[str, ...]] = {
    "u2a_created": (OK, UNVERIFIED, "missing_txid", UNVERIFIED, OK, "payment_not_approved", OK, OK),
    "u2a_approved": (OK, UNVERIFIED, "missing_txid", UNVERIFIED, OK, OK, OK, INVALID),
    "u2a_tx_unverified": (OK, UNVERIFIED, "missing_txid", "txid_mismatch", TX, TX, TX, INVALID),
    "u2a_tx_verified": (OK, OK, "missing_txid", "txid_mismatch", TX, TX, TX, INVALID),
    "u2a_completed": (OK, DONE, DONE, DONE, DONE, TX, DONE, DONE),
    "u2a_cancelled": (CANCELLED,) * 8,
    "u2a_user_cancelled": (CANCELLED,) * 8,
    "u2a_expired": (CANCELLED,) * 8,
    "a2u_created": (INVALID, OK, "missing_txid", "verification_failed", OK, OK, INVALID, INVALID),
    "a2u_completed": (INVALID, DONE, DONE, DONE, DONE, TX, INVALID, INVALID),
    "a2u_cancelled": (INVALID, *(CANCELLED,) * 5, INVALID, INVALID),
}

# flags after a successful action, where it changes them
AFTER = {
    ("u2a_created", "approve"): "10000",
    ("u2a_tx_verified", "complete"): "11100",
    ("a2u_created", "complete"): "11100",
    ("u2a_created", "cancel"): "00010",
    ("u2a_approved", "cancel"): "10010",
    ("a2u_created", "cancel"): "10010",
    ("u2a_approved", "user_tx"): "11000",
    ("u2a_created", "user_cancel"): "00011",
    ("u2a_approved", "user_cancel"): "10011",
    ("u2a_created", "expire"): "00010",
}


def flags(payment: dict[str, Any]) -> str:
    status = payment["status"]
    names = (
        "developer_approved",
        "transaction_verified",
        "developer_completed",
        "cancelled",
        "user_cancelled",
    )
    return "".join("1" if status[name] else "0" for name in names)


def act(sb: SandboxHandle, api: Api, action: str, built: Built) -> Any:
    base = f"/v2/payments/{built.identifier}"
    control = f"/sandbox/payments/{built.identifier}"
    if action == "approve":
        return api.post(f"{base}/approve", json={})
    if action == "complete":
        return api.post(f"{base}/complete", json={"txid": built.txid})
    if action == "complete_no_txid":
        return api.post(f"{base}/complete", json={"paymentId": built.identifier})
    if action == "complete_other_txid":
        return api.post(f"{base}/complete", json={"txid": secrets.token_hex(32)})
    if action == "cancel":
        return api.post(f"{base}/cancel", headers={"Content-Type": "application/json"})
    if action == "user_tx":
        return api.post(f"{control}/transaction", json={}, auth=None)
    return api.post(f"{control}/{action}", auth=None)


CASES = [
    pytest.param(state, action, TABLE[state][index], id=f"{state}-{action}")
    for state in STATES
    for index, action in enumerate(ACTIONS)
]


def test_table_covers_every_state_and_action() -> None:
    assert set(TABLE) == set(STATES)
    assert all(len(row) == len(ACTIONS) for row in TABLE.values())
    assert {key for key, _ in AFTER} <= set(STATES)


@pytest.mark.parametrize(("state", "action", "expected"), CASES)
def test_transition(sb: SandboxHandle, api: Api, state: str, action: str, expected: str) -> None:
    builder, steps, state_flags = STATES[state]
    built = builder(sb, api, *steps)
    assert flags(sb.payment(built.identifier)) == state_flags
    before = sb.payment(built.identifier)

    response = act(sb, api, action, built)

    if expected == OK:
        assert response.status_code == 200, response.text
        after = sb.payment(built.identifier)
        assert flags(after) == AFTER.get((state, action), state_flags)
    else:
        assert response.status_code == 400, response.text
        assert error_of(response) == expected
        assert response.json()["error_message"]
        assert sb.payment(built.identifier) == before  # a rejected action changes nothing
