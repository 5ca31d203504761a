"""Horizon routes, envelope submission with real stellar-sdk envelopes, and proxy requests."""

from __future__ import annotations

import socket
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import requests
from stellar_sdk import (
    Account,
    Asset,
    Keypair,
    Network,
    Server,
    TransactionBuilder,
    TransactionEnvelope,
)
from stellar_sdk.exceptions import BadRequestError

from django_pi_payments.sandbox import horizon
from django_pi_payments.testing import SandboxHandle

from .conftest import API_KEY, Api


@pytest.fixture
def app_wallet(sb: SandboxHandle) -> Keypair:
    """The app wallet's real key pair, registered as the sandbox's app wallet."""
    keypair = Keypair.random()
    sb.set_config(app_wallet_address=keypair.public_key)
    return keypair


def create_a2u(sb: SandboxHandle, api: Api, amount: str = "1.25") -> dict[str, Any]:
    user = sb.create_user()
    body = {"payment": {"amount": Decimal(amount), "memo": "m", "metadata": {}, "uid": user["uid"]}}
    response = api.post("/v2/payments", json=body)
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    return payment


def sequence_of(sb: SandboxHandle, account_id: str) -> int:
    response = requests.get(f"{sb.horizon_url}/accounts/{account_id}", timeout=5)
    return int(response.json()["sequence"])


def build(
    sb: SandboxHandle,
    signer: Keypair,
    payment: dict[str, Any],
    *,
    source: str | None = None,
    sequence_delta: int = 0,
    network: str = "Pi Testnet",
    fee: int = 100000,
    destination: str | None = None,
    amount: str | None = None,
    timebounds: tuple[int, int] | None = None,
    extra_op: bool = False,
) -> str:
    source = source or signer.public_key
    sequence = sequence_of(sb, source) if source != "missing" else 0
    account = Account(source if source != "missing" else Keypair.random().public_key, sequence)
    builder = TransactionBuilder(account, network_passphrase=network, base_fee=fee)
    builder.append_payment_op(
        destination or payment["to_address"], Asset.native(), amount or str(payment["amount"])
    )
    if extra_op:
        builder.append_payment_op(payment["to_address"], Asset.native(), "1")
    builder.add_text_memo(payment["identifier"])
    if timebounds is None:
        builder.set_timeout(180)
    else:
        builder.add_time_bounds(*timebounds)
    envelope = builder.build()
    envelope.transaction.sequence += sequence_delta
    envelope.sign(signer)
    return str(envelope.to_xdr())


def submit(sb: SandboxHandle, xdr: str) -> requests.Response:
    return requests.post(f"{sb.horizon_url}/transactions", data={"tx": xdr}, timeout=5)


def test_a2u_end_to_end_with_the_python_stellar_sdk(
    sb: SandboxHandle, api: Api, app_wallet: Keypair
) -> None:
    payment = create_a2u(sb, api)
    server = Server(sb.horizon_url)
    account = server.load_account(app_wallet.public_key)
    sequence = account.sequence
    fee = server.fetch_base_fee()
    assert fee == 100000
    envelope = (
        TransactionBuilder(account, network_passphrase=payment["network"], base_fee=fee)
        .append_payment_op(payment["to_address"], Asset.native(), str(Decimal(payment["amount"])))
        .add_text_memo(payment["identifier"])
        .set_timeout(180)
        .build()
    )
    envelope.sign(app_wallet)
    result = server.submit_transaction(envelope)
    txid = result["id"]
    assert txid == result["hash"] == envelope.hash_hex()
    assert result["successful"] is True
    assert "result_xdr" not in result

    tx = server.transactions().transaction(txid).call()
    assert (tx["memo_type"], tx["memo"]) == ("text", payment["identifier"])
    assert tx["source_account"] == app_wallet.public_key
    assert tx["successful"] is True
    operations = server.operations().for_transaction(txid).call()["_embedded"]["records"]
    assert [(op["type"], op["to"], op["amount"]) for op in operations] == [
        ("payment", payment["to_address"], "1.2500000")
    ]
    assert sequence_of(sb, app_wallet.public_key) == sequence + 1

    response = api.post(f"/v2/payments/{payment['identifier']}/complete", json={"txid": txid})
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["transaction"]["txid"] == txid
    assert done["status"]["transaction_verified"] is True
    assert done["status"]["developer_completed"] is True
    assert sb.ledger()[-1]["hash"] == txid


Builder = Callable[[SandboxHandle, Keypair, dict[str, Any]], str]

REJECTED: list[tuple[str, Builder, str, list[str] | None]] = [
    ("bad_seq_ahead", lambda sb, k, p: build(sb, k, p, sequence_delta=1), "tx_bad_seq", None),
    ("bad_seq_replay", lambda sb, k, p: build(sb, k, p, sequence_delta=-1), "tx_bad_seq", None),
    (
        "bad_signature",
        lambda sb, k, p: build(sb, Keypair.random(), p, source=k.public_key),
        "tx_bad_auth",
        None,
    ),
    (
        "other_network",
        lambda sb, k, p: build(sb, k, p, network=Network.PUBLIC_NETWORK_PASSPHRASE),
        "tx_bad_auth",
        None,
    ),
    ("low_fee", lambda sb, k, p: build(sb, k, p, fee=100), "tx_insufficient_fee", None),
    ("too_late", lambda sb, k, p: build(sb, k, p, timebounds=(0, 1)), "tx_too_late", None),
    ("too_early", lambda sb, k, p: build(sb, k, p, timebounds=(2**40, 0)), "tx_too_early", None),
    ("no_source", lambda sb, k, p: build(sb, k, p, source="missing"), "tx_no_source_account", None),
    ("two_ops", lambda sb, k, p: build(sb, k, p, extra_op=True), "tx_failed", ["op_not_supported"]),
    (
        "no_destination",
        lambda sb, k, p: build(sb, k, p, destination=Keypair.random().public_key),
        "tx_failed",
        ["op_no_destination"],
    ),
    (
        "underfunded",
        lambda sb, k, p: build(sb, k, p, amount="1000000"),
        "tx_failed",
        ["op_underfunded"],
    ),
]


@pytest.mark.parametrize(
    ("builder", "code", "operations"),
    [pytest.param(b, c, o, id=name) for name, b, c, o in REJECTED],
)
def test_rejected_envelopes(
    sb: SandboxHandle,
    api: Api,
    app_wallet: Keypair,
    builder: Builder,
    code: str,
    operations: list[str] | None,
) -> None:
    payment = create_a2u(sb, api)
    before = sequence_of(sb, app_wallet.public_key)
    xdr = builder(sb, app_wallet, payment)
    response = submit(sb, xdr)
    assert response.status_code == 400
    problem = response.json()
    assert problem["status"] == 400
    assert problem["type"] == "https://stellar.org/horizon-errors/transaction_failed"
    assert problem["extras"]["envelope_xdr"] == xdr
    expected: dict[str, Any] = {"transaction": code}
    if operations is not None:
        expected["operations"] = operations
    assert problem["extras"]["result_codes"] == expected
    assert sequence_of(sb, app_wallet.public_key) == before
    assert sb.ledger() == []


def test_python_sdk_sees_the_result_codes(sb: SandboxHandle, api: Api, app_wallet: Keypair) -> None:
    payment = create_a2u(sb, api)
    xdr = build(sb, app_wallet, payment, sequence_delta=3)
    with pytest.raises(BadRequestError) as failure:
        Server(sb.horizon_url).submit_transaction(TransactionEnvelope.from_xdr(xdr, "Pi Testnet"))
    assert failure.value.extras is not None
    assert failure.value.extras["result_codes"]["transaction"] == "tx_bad_seq"


def test_malformed_and_missing_envelopes(sb: SandboxHandle) -> None:
    for body in ({"tx": "not-xdr"}, {}):
        response = requests.post(f"{sb.horizon_url}/transactions", data=body, timeout=5)
        assert response.status_code == 400
        assert response.json()["title"] == "Transaction Malformed"


def test_submit_without_stellar_sdk_is_501(
    sb: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(horizon, "stellar_sdk_installed", lambda: False)
    response = requests.post(f"{sb.horizon_url}/transactions", data={"tx": "AAAA"}, timeout=5)
    assert response.status_code == 501
    assert "stellar-sdk" in response.json()["detail"]


def test_horizon_read_routes(sb: SandboxHandle, api: Api) -> None:
    root = api.get("/horizon/", auth=None)
    assert root.status_code == 200
    assert root.headers["Date"]
    assert root.json()["network_passphrase"] == "Pi Testnet"
    assert api.get("/horizon", auth=None).status_code == 200
    fee_stats = api.get("/horizon/fee_stats", auth=None).json()
    assert fee_stats["last_ledger_base_fee"] == "100000"
    ledgers = api.get("/horizon/ledgers?order=desc&limit=1", auth=None).json()
    assert ledgers["_embedded"]["records"][0]["base_fee_in_stroops"] == 100000

    app_wallet = sb.set_config()["app_wallet_address"]
    account = api.get(f"/horizon/accounts/{app_wallet}", auth=None).json()
    assert account["id"] == account["account_id"] == app_wallet
    assert int(account["sequence"]) > 0
    assert account["balances"][0]["asset_type"] == "native"
    assert {"signers", "thresholds", "flags", "subentry_count", "data"} <= set(account)

    keypair = Keypair.random()
    registered = sb.add_account(keypair.public_key, balance="12.5", sequence=42)
    assert registered["sequence"] == "42"
    assert registered["balances"][0]["balance"] == "12.5000000"

    for path in (
        f"/horizon/accounts/{Keypair.random().public_key}",
        "/horizon/transactions/" + "0" * 64,
        "/horizon/transactions/" + "0" * 64 + "/operations",
    ):
        response = api.get(path, auth=None)
        assert response.status_code == 404
        assert response.json()["title"] == "Resource Missing"
        assert response.json()["status"] == 404


def test_u2a_transaction_on_horizon(sb: SandboxHandle, api: Api) -> None:
    user = sb.create_user()
    payment = sb.create_payment(user["uid"], "7.5")
    api.post(f"/v2/payments/{payment['identifier']}/approve")
    txid = sb.submit_transaction(payment["identifier"], memo=None)["txid"]
    tx = api.get(f"/horizon/transactions/{txid}", auth=None).json()
    assert tx["memo_type"] == "none"
    assert "memo" not in tx
    assert tx["source_account"] == user["wallet_address"]
    operation = api.get(f"/horizon/transactions/{txid}/operations", auth=None).json()
    record = operation["_embedded"]["records"][0]
    assert record["from"] == user["wallet_address"]
    assert record["to"] == payment["to_address"]
    assert record["amount"] == "7.5000000"
    assert record["transaction_hash"] == txid


def raw_request(sb: SandboxHandle, request_line: str, host: str, extra: str = "") -> bytes:
    hostname, port = sb.url.removeprefix("http://").split(":")
    with socket.create_connection((hostname, int(port)), timeout=5) as connection:
        connection.sendall(
            f"{request_line} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_absolute_form_proxy_requests_reach_horizon(sb: SandboxHandle) -> None:
    app_wallet = sb.set_config()["app_wallet_address"]
    host = "api.testnet.minepi.com"
    answer = raw_request(sb, f"GET https://{host}/accounts/{app_wallet}", host)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert app_wallet.encode() in answer
    answer = raw_request(sb, f"GET https://{host}/fee_stats", host)
    assert b'"last_ledger_base_fee":"100000"' in answer
    assert [call["route"] for call in sb.calls()] == ["horizon_account", "horizon_fee_stats"]
    assert sb.calls()[0]["path"] == f"/horizon/accounts/{app_wallet}"

    user, token = sb.login()
    answer = raw_request(
        sb,
        "GET https://api.minepi.com/v2/me",
        "api.minepi.com",
        f"Authorization: Bearer {token}\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert user["uid"].encode() in answer


def test_requests_through_the_sandbox_as_http_proxy(sb: SandboxHandle) -> None:
    response = requests.get(
        "http://api.mainnet.minepi.com/fee_stats", proxies={"http": sb.url}, timeout=5
    )
    assert response.status_code == 200
    assert response.json()["last_ledger_base_fee"] == "100000"


def test_proxy_requests_for_the_sandbox_s_own_paths_are_served_as_they_are(
    sb: SandboxHandle, api: Api
) -> None:
    proxies = {"http": sb.url}
    response = requests.get(
        f"{sb.url}/v2/payments/incomplete_server_payments",
        headers={"Authorization": f"Key {API_KEY}"},
        proxies=proxies,
        timeout=5,
    )
    assert response.json() == {"incomplete_server_payments": []}
    config = requests.get(f"{sb.url}/sandbox/config", proxies=proxies, timeout=5)
    assert config.json()["network"] == "Pi Testnet"
    fee_stats = requests.get(f"{sb.horizon_url}/fee_stats", proxies=proxies, timeout=5)
    assert fee_stats.json()["last_ledger_base_fee"] == "100000"
    assert [call["path"] for call in sb.calls()] == [
        "/v2/payments/incomplete_server_payments",
        "/horizon/fee_stats",
    ]


def test_a2u_complete_rejects_a_foreign_txid_key(sb: SandboxHandle, api: Api) -> None:
    payment = create_a2u(sb, api)
    response = api.post(
        f"/v2/payments/{payment['identifier']}/complete",
        json={"txid": "f" * 64},
        auth=f"Key {API_KEY}",
    )
    assert response.json()["verification_error"] == "tx_not_found"
