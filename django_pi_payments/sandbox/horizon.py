"""The Horizon endpoints of the sandbox (``/horizon/...``), rendered from the sandbox ledger.

``POST /horizon/transactions`` decodes the envelope with the optional ``stellar-sdk`` package
(imported lazily) and checks it like stellar-core would, within the sandbox's limits: the
transaction must hold exactly one native payment operation. A rejected envelope is not recorded
and does not consume its sequence number.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from .errors import HorizonProblem
from .ids import horizon_time
from .models import Account, LedgerTx
from .state import BASE_FEE_STROOPS, SandboxState
from .wire import MAX_DECIMALS, horizon_amount

__all__ = [
    "account_resource",
    "account_transactions",
    "fee_stats",
    "latest_ledgers",
    "operations_resource",
    "root",
    "stellar_sdk_installed",
    "submit",
    "transaction_resource",
]

PROTOCOL_VERSION = 19
BASE_RESERVE_STROOPS = 5000000


def _link(href: str) -> dict[str, str]:
    return {"href": href}


def transaction_resource(tx: LedgerTx, horizon_url: str) -> dict[str, Any]:
    """Return the Horizon transaction resource of ``tx``."""
    resource: dict[str, Any] = {
        "_links": {
            "self": _link(f"{horizon_url}/transactions/{tx.hash}"),
            "operations": _link(f"{horizon_url}/transactions/{tx.hash}/operations"),
        },
        "id": tx.hash,
        "paging_token": str(tx.ledger << 32),
        "successful": tx.successful,
        "hash": tx.hash,
        "ledger": tx.ledger,
        "created_at": horizon_time(tx.created_at),
        "source_account": tx.source_account,
        "fee_account": tx.source_account,
        "fee_charged": str(tx.fee_charged),
        "max_fee": str(tx.fee_charged),
        "operation_count": 1,
        "memo_type": "none" if tx.memo is None else "text",
        "signatures": [],
    }
    if tx.source_sequence is not None:
        resource["source_account_sequence"] = str(tx.source_sequence)
    if tx.envelope_xdr is not None:
        resource["envelope_xdr"] = tx.envelope_xdr
    if tx.memo is not None:
        resource["memo"] = tx.memo
    return resource


def operations_resource(tx: LedgerTx, horizon_url: str) -> dict[str, Any]:
    """Return ``/transactions/{hash}/operations``: the single payment operation of ``tx``."""
    operation_id = str((tx.ledger << 32) | 1)
    record = {
        "_links": {"self": _link(f"{horizon_url}/operations/{operation_id}")},
        "id": operation_id,
        "paging_token": operation_id,
        "transaction_successful": tx.successful,
        "source_account": tx.source_account,
        "type": "payment",
        "type_i": 1,
        "created_at": horizon_time(tx.created_at),
        "transaction_hash": tx.hash,
        "asset_type": "native",
        "from": tx.source_account,
        "to": tx.destination,
        "amount": horizon_amount(tx.amount),
    }
    return {
        "_links": {"self": _link(f"{horizon_url}/transactions/{tx.hash}/operations")},
        "_embedded": {"records": [record]},
    }


def account_resource(account: Account, horizon_url: str) -> dict[str, Any]:
    """Return the Horizon account resource."""
    return {
        "_links": {"self": _link(f"{horizon_url}/accounts/{account.account_id}")},
        "id": account.account_id,
        "account_id": account.account_id,
        "sequence": str(account.sequence),
        "subentry_count": 0,
        "last_modified_ledger": account.last_modified_ledger,
        "thresholds": {"low_threshold": 0, "med_threshold": 0, "high_threshold": 0},
        "flags": {
            "auth_required": False,
            "auth_revocable": False,
            "auth_immutable": False,
            "auth_clawback_enabled": False,
        },
        "balances": [
            {
                "balance": horizon_amount(account.balance),
                "buying_liabilities": "0.0000000",
                "selling_liabilities": "0.0000000",
                "asset_type": "native",
            }
        ],
        "signers": [{"weight": 1, "key": account.account_id, "type": "ed25519_public_key"}],
        "data": {},
        "num_sponsoring": 0,
        "num_sponsored": 0,
        "paging_token": account.account_id,
    }


def account_transactions(
    state: SandboxState, account_id: str, query: Mapping[str, str], horizon_url: str
) -> dict[str, Any]:
    """Return ``/accounts/{id}/transactions``: a page of the transactions the account is part of.

    Supports Horizon's ``order`` (``asc``/``desc``), ``limit`` (1-200, default 10), ``cursor`` (a
    ``paging_token``) and ``include_failed`` (default ``false``). An unknown account has none.
    """
    order = query.get("order", "asc")
    limit_text = query.get("limit", "10")
    if order not in ("asc", "desc") or not limit_text.isdigit() or not 1 <= int(limit_text) <= 200:
        raise HorizonProblem(400, "The request has an invalid order or limit parameter.")
    cursor_text = query.get("cursor", "")
    if cursor_text and not cursor_text.isdigit():
        raise HorizonProblem(400, "The cursor parameter is not a paging token.")
    include_failed = query.get("include_failed", "false") == "true"
    descending = order == "desc"
    with state.lock:
        found = sorted(
            (
                tx
                for tx in state.transactions.values()
                if account_id in (tx.source_account, tx.destination)
                and (tx.successful or include_failed)
            ),
            key=lambda tx: tx.ledger,
            reverse=descending,
        )
    if cursor_text:
        cursor = int(cursor_text)
        found = [
            tx
            for tx in found
            if (tx.ledger << 32 < cursor if descending else tx.ledger << 32 > cursor)
        ]
    records = [transaction_resource(tx, horizon_url) for tx in found[: int(limit_text)]]
    base = f"{horizon_url}/accounts/{account_id}/transactions?order={order}&limit={limit_text}"
    next_cursor = records[-1]["paging_token"] if records else cursor_text
    return {
        "_links": {
            "self": _link(f"{base}&cursor={cursor_text}"),
            "next": _link(f"{base}&cursor={next_cursor}"),
        },
        "_embedded": {"records": records},
    }


def fee_stats(state: SandboxState) -> dict[str, Any]:
    """Return ``/fee_stats`` (every percentile is the base fee)."""
    fee = str(BASE_FEE_STROOPS)
    percentiles = {name: fee for name in ("max", "min", "mode", "p10", "p50", "p90", "p99")}
    return {
        "last_ledger": str(state.ledger_sequence),
        "last_ledger_base_fee": fee,
        "ledger_capacity_usage": "0.00",
        "fee_charged": percentiles,
        "max_fee": percentiles,
    }


def latest_ledgers(state: SandboxState, horizon_url: str) -> dict[str, Any]:
    """Return ``/ledgers`` as a one-record page holding the latest ledger (query ignored)."""
    sequence = state.ledger_sequence
    record = {
        "id": hashlib.sha256(str(sequence).encode()).hexdigest(),
        "hash": hashlib.sha256(str(sequence).encode()).hexdigest(),
        "paging_token": str(sequence << 32),
        "sequence": sequence,
        "closed_at": horizon_time(state.now()),
        "base_fee_in_stroops": BASE_FEE_STROOPS,
        "base_reserve_in_stroops": BASE_RESERVE_STROOPS,
        "max_tx_set_size": 1000,
        "protocol_version": PROTOCOL_VERSION,
    }
    return {"_links": {"self": _link(f"{horizon_url}/ledgers")}, "_embedded": {"records": [record]}}


def root(state: SandboxState) -> dict[str, Any]:
    """Return the Horizon root document."""
    return {
        "horizon_version": "django-pi-payments sandbox",
        "core_version": "sandbox",
        "history_latest_ledger": state.ledger_sequence,
        "core_latest_ledger": state.ledger_sequence,
        "network_passphrase": state.config.network,
        "current_protocol_version": PROTOCOL_VERSION,
        "supported_protocol_version": PROTOCOL_VERSION,
        "core_supported_protocol_version": PROTOCOL_VERSION,
    }


@dataclass(frozen=True)
class Envelope:
    """What the sandbox needs from a decoded transaction envelope."""

    hash: str
    source: str
    sequence: int
    fee: int
    memo: str | None
    signed: bool
    min_time: int
    max_time: int
    payment: tuple[str, Decimal] | None  # (destination, amount) of the single native payment
    operation_count: int


def decode_envelope(xdr: str, network: str) -> Envelope:
    """Decode and signature-check ``xdr`` with stellar-sdk; raise a 400 problem if malformed."""
    from stellar_sdk import Keypair, TransactionEnvelope
    from stellar_sdk.exceptions import BadSignatureError
    from stellar_sdk.memo import TextMemo
    from stellar_sdk.operation import Payment as PaymentOp

    try:
        envelope = TransactionEnvelope.from_xdr(xdr, network)
    except Exception as exc:  # stellar-sdk raises many types for bad XDR
        raise HorizonProblem(
            400,
            "The transaction envelope could not be decoded.",
            kind="transaction_malformed",
            title="Transaction Malformed",
            extras={"envelope_xdr": xdr},
        ) from exc
    tx = envelope.transaction
    source = tx.source.account_id
    keypair = Keypair.from_public_key(source)
    signed = False
    for signature in envelope.signatures:
        try:
            keypair.verify(envelope.hash(), signature.signature)
        except BadSignatureError:
            continue
        signed = True
    memo = tx.memo.memo_text.decode("utf-8", "replace") if isinstance(tx.memo, TextMemo) else None
    bounds = tx.preconditions.time_bounds if tx.preconditions is not None else None
    operations = tx.operations
    payment = None
    if len(operations) == 1:
        operation = operations[0]
        if (
            isinstance(operation, PaymentOp)
            and operation.asset.is_native()
            and operation.source in (None, tx.source)
        ):
            payment = (operation.destination.account_id, Decimal(operation.amount))
    return Envelope(
        hash=envelope.hash_hex(),
        source=source,
        sequence=tx.sequence,
        fee=tx.fee,
        memo=memo,
        signed=signed,
        min_time=bounds.min_time if bounds is not None else 0,
        max_time=bounds.max_time if bounds is not None else 0,
        payment=payment,
        operation_count=len(operations),
    )


def stellar_sdk_installed() -> bool:
    """Whether the optional ``stellar-sdk`` package can be imported."""
    return importlib.util.find_spec("stellar_sdk") is not None


def _failed(xdr: str, code: str, operations: list[str] | None = None) -> HorizonProblem:
    result_codes: dict[str, Any] = {"transaction": code}
    if operations is not None:
        result_codes["operations"] = operations
    return HorizonProblem(
        400,
        "The transaction failed when submitted to the stellar network. The `extras.result_codes` "
        "field on this response contains further details.",
        extras={"envelope_xdr": xdr, "result_codes": result_codes},
        kind="transaction_failed",
        title="Transaction Failed",
    )


def _check(state: SandboxState, envelope: Envelope, xdr: str) -> tuple[str, Decimal]:
    account = state.accounts.get(envelope.source)
    if account is None:
        raise _failed(xdr, "tx_no_source_account")
    now = state.now()
    if envelope.min_time > now:
        raise _failed(xdr, "tx_too_early")
    if envelope.max_time and envelope.max_time < now:
        raise _failed(xdr, "tx_too_late")
    if envelope.sequence != account.sequence + 1:
        raise _failed(xdr, "tx_bad_seq")
    if not envelope.signed:
        raise _failed(xdr, "tx_bad_auth")
    if envelope.fee < BASE_FEE_STROOPS * max(envelope.operation_count, 1):
        raise _failed(xdr, "tx_insufficient_fee")
    fee = Decimal(envelope.fee).scaleb(-MAX_DECIMALS)
    if account.balance < fee:
        raise _failed(xdr, "tx_insufficient_balance")
    if envelope.payment is None:
        raise _failed(xdr, "tx_failed", ["op_not_supported"])
    destination, amount = envelope.payment
    if destination not in state.accounts:
        raise _failed(xdr, "tx_failed", ["op_no_destination"])
    if account.balance < fee + amount:
        raise _failed(xdr, "tx_failed", ["op_underfunded"])
    return destination, amount


def submit(state: SandboxState, body: bytes) -> dict[str, Any]:
    """``POST /transactions`` with a form-encoded ``tx``: check, record and return the result."""
    xdr = parse_qs(body.decode("utf-8", "replace")).get("tx", [""])[0]
    if not stellar_sdk_installed():
        raise HorizonProblem(
            501,
            "The sandbox decodes submitted transactions with stellar-sdk, which is not installed "
            "(pip install 'django-pi-payments[a2u]').",
        )
    envelope = decode_envelope(xdr, state.config.network)
    with state.lock:
        destination, amount = _check(state, envelope, xdr)
        tx = state.record_transaction(
            txid=envelope.hash,
            source=envelope.source,
            destination=destination,
            amount=amount,
            memo=envelope.memo,
            fee_stroops=envelope.fee,
            source_sequence=envelope.sequence,
            envelope_xdr=xdr,
        )
    return {
        "id": tx.hash,
        "hash": tx.hash,
        "successful": True,
        "ledger": tx.ledger,
        "envelope_xdr": xdr,
    }
