"""Horizon ``GET /accounts/{id}/transactions``: how a payer finds a payment it may have made.

An app-to-user payment is resumed after a crash by looking for a transaction of the app wallet
whose memo is the payment identifier; this route serves that look-up with Horizon's paging.
"""

from __future__ import annotations

from typing import Any

import pytest
from stellar_sdk import Keypair, Server

from django_pi_payments.testing import SandboxHandle

from .conftest import Api
from .test_horizon import build, create_a2u, submit


@pytest.fixture
def paid(sb: SandboxHandle, api: Api) -> tuple[Keypair, list[dict[str, Any]]]:
    """The app wallet and three A2U payments it paid (and completed), oldest first."""
    wallet = Keypair.random()
    sb.set_config(app_wallet_address=wallet.public_key)
    payments = []
    for amount in ("1", "2", "3"):
        payment = create_a2u(sb, api, amount)
        response = submit(sb, build(sb, wallet, payment))
        assert response.status_code == 200, response.text
        txid = response.json()["hash"]
        completed = api.post(f"/v2/payments/{payment['identifier']}/complete", json={"txid": txid})
        assert completed.status_code == 200, completed.text
        payments.append(payment)
    return wallet, payments


def memos(page: dict[str, Any]) -> list[str]:
    return [record["memo"] for record in page["_embedded"]["records"]]


def test_pages_newest_first_with_cursors(
    sb: SandboxHandle, api: Api, paid: tuple[Keypair, list[dict[str, Any]]]
) -> None:
    wallet, payments = paid
    path = f"/horizon/accounts/{wallet.public_key}/transactions"
    identifiers = [payment["identifier"] for payment in payments]

    first = api.get(f"{path}?order=desc&limit=2", auth=None).json()
    assert memos(first) == identifiers[:0:-1]
    record = first["_embedded"]["records"][0]
    assert record["source_account"] == wallet.public_key
    assert record["memo_type"] == "text" and record["successful"] is True
    cursor = first["_embedded"]["records"][-1]["paging_token"]
    assert first["_links"]["next"]["href"].endswith(f"cursor={cursor}")
    second = api.get(f"{path}?order=desc&limit=2&cursor={cursor}", auth=None).json()
    assert memos(second) == identifiers[:1]
    assert memos(api.get(path, auth=None).json()) == identifiers  # Horizon's default: asc


def test_the_python_stellar_sdk_reads_it(
    sb: SandboxHandle, paid: tuple[Keypair, list[dict[str, Any]]]
) -> None:
    wallet, payments = paid
    server = Server(sb.horizon_url)
    page = server.transactions().for_account(wallet.public_key).order(desc=True).limit(1).call()
    assert memos(page) == [payments[-1]["identifier"]]
    after = page["_embedded"]["records"][-1]["paging_token"]
    rest = server.transactions().for_account(wallet.public_key).cursor(after).order(desc=True)
    assert len(rest.call()["_embedded"]["records"]) == 2


def test_the_payee_sees_the_payment_too(
    sb: SandboxHandle, api: Api, paid: tuple[Keypair, list[dict[str, Any]]]
) -> None:
    _, payments = paid
    payee = payments[0]["to_address"]
    page = api.get(f"/horizon/accounts/{payee}/transactions", auth=None).json()
    assert memos(page) == [payments[0]["identifier"]]


def test_failed_transactions_only_on_request(sb: SandboxHandle, api: Api) -> None:
    user = sb.create_user()
    payment = sb.create_payment(user["uid"], "1")
    api.post(f"/v2/payments/{payment['identifier']}/approve")
    sb.submit_transaction(payment["identifier"], successful=False)
    path = f"/horizon/accounts/{user['wallet_address']}/transactions"

    assert memos(api.get(path, auth=None).json()) == []
    assert memos(api.get(f"{path}?include_failed=true", auth=None).json()) == [
        payment["identifier"]
    ]


def test_an_unknown_account_has_no_transactions(sb: SandboxHandle, api: Api) -> None:
    path = f"/horizon/accounts/{Keypair.random().public_key}/transactions"
    assert memos(api.get(path, auth=None).json()) == []


@pytest.mark.parametrize("query", ["order=up", "limit=0", "limit=201", "limit=x", "cursor=abc"])
def test_bad_parameters_are_a_400_problem(sb: SandboxHandle, api: Api, query: str) -> None:
    response = api.get(f"/horizon/accounts/{Keypair.random().public_key}/transactions?{query}")
    assert response.status_code == 400
    problem = response.json()
    assert problem["status"] == 400
    assert problem["type"] == "https://stellar.org/horizon-errors/bad_request"
    assert problem["title"] == "Bad Request"


def test_the_route_can_be_faulted(sb: SandboxHandle, api: Api) -> None:
    sb.add_fault("horizon_account_transactions", status=503)
    path = f"/horizon/accounts/{Keypair.random().public_key}/transactions"
    assert api.get(path, auth=None).status_code == 503
    assert api.get(path, auth=None).status_code == 200
