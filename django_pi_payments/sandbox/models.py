"""Records held by the sandbox: configuration, users, tokens, payments, ledger and accounts.

Every record is a dataclass that round-trips through :func:`to_record` / :func:`from_record`
for the JSON state file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from .errors import SandboxError
from .ids import is_account_id, iso_millis, new_account_id

__all__ = [
    "A2U",
    "MAX_DURATION_SECONDS",
    "U2A",
    "Account",
    "LedgerTx",
    "Payment",
    "SandboxConfig",
    "Token",
    "User",
    "from_record",
    "to_record",
]

U2A = "user_to_app"
A2U = "app_to_user"
LOCK_SCOPES = ("app", "user")
# The longest wait (latency, fault delay, approval timeout) or token life the control API takes:
# a longer one would overflow the clock and the sleeps instead of meaning anything.
MAX_DURATION_SECONDS = 30 * 24 * 3600


def _to_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


_COERCE: dict[str, Callable[[Any], Any]] = {"float": float, "int": int, "Decimal": _to_decimal}

_Record = TypeVar("_Record")


def to_record(obj: Any) -> dict[str, Any]:
    """Return a JSON-ready dict of a dataclass record."""
    return dataclasses.asdict(obj)


def from_record(cls: type[_Record], data: Mapping[str, Any]) -> _Record:
    """Rebuild a dataclass record from :func:`to_record` output (restoring float/int/Decimal)."""
    values = {
        item.name: _COERCE.get(str(item.type), lambda value: value)(data[item.name])
        for item in dataclasses.fields(cls)  # type: ignore[arg-type]
        if item.name in data
    }
    return cls(**values)


def _bad(name: str, expected: str) -> SandboxError:
    return SandboxError("invalid_arguments", f"config {name!r} must be {expected}.")


@dataclass(frozen=True)
class SandboxConfig:
    """Runtime settings, changed through ``POST /sandbox/config``."""

    latency_ms: int = 0
    approval_timeout_seconds: float = 60.0
    duplicate_approve_error: str | None = None
    lenient_create_body: bool = False
    a2u_lock_scope: str = "app"
    app_wallet_address: str = field(default_factory=new_account_id)
    network: str = "Pi Testnet"

    def updated(self, changes: Mapping[str, object]) -> SandboxConfig:
        """Return a copy with ``changes`` applied; raise ``SandboxError`` on a bad key or value."""
        values = dataclasses.asdict(self)
        for name, value in changes.items():
            if name not in values:
                raise SandboxError("invalid_arguments", f"unknown config key {name!r}.")
            values[name] = _checked(name, value)
        return SandboxConfig(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as JSON."""
        return dataclasses.asdict(self)


def _checked(name: str, value: object) -> object:
    if name == "latency_ms":
        upper = MAX_DURATION_SECONDS * 1000
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
            raise _bad(name, f"an integer from 0 to {upper}")
        return value
    if name == "approval_timeout_seconds":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float | Decimal)
            or not 0 <= value <= MAX_DURATION_SECONDS
        ):
            raise _bad(name, f"a number from 0 to {MAX_DURATION_SECONDS}")
        return float(value)
    if name == "duplicate_approve_error":
        if value is not None and not (isinstance(value, str) and value):
            raise _bad(name, "null or a non-empty string")
        return value
    if name == "lenient_create_body":
        if not isinstance(value, bool):
            raise _bad(name, "a boolean")
        return value
    if name == "a2u_lock_scope":
        if value not in LOCK_SCOPES:
            raise _bad(name, '"app" or "user"')
        return value
    if name == "app_wallet_address":
        if not is_account_id(value):
            raise SandboxError("invalid_address", f"{value!r} is not a valid Stellar account id.")
        return value
    if not (isinstance(value, str) and value):
        raise _bad(name, "a non-empty string")
    return value


@dataclass
class User:
    """A Pioneer known to the app."""

    uid: str
    username: str
    scopes: list[str]
    wallet_address: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return the control API representation."""
        return to_record(self)


@dataclass
class Token:
    """An access token of a user."""

    token: str
    uid: str
    valid_until: float
    revoked: bool = False


@dataclass
class Payment:
    """A payment and its status flags (``PI_PLATFORM_API.md`` §2.4, §4.4)."""

    identifier: str
    user_uid: str
    direction: str
    amount: Decimal
    memo: str
    metadata: Any
    from_address: str
    to_address: str
    network: str
    created_at: float
    developer_approved: bool = False
    developer_completed: bool = False
    cancelled: bool = False
    user_cancelled: bool = False
    txid: str | None = None
    tx_verified: bool = False

    @property
    def is_open(self) -> bool:
        """Neither completed nor cancelled."""
        return not (self.developer_completed or self.cancelled)

    def to_dto(self, base_url: str) -> dict[str, Any]:
        """Return the PaymentDTO; ``base_url`` builds ``transaction._link``."""
        transaction = None
        if self.txid is not None:
            transaction = {
                "txid": self.txid,
                "verified": self.tx_verified,
                "_link": f"{base_url}/horizon/transactions/{self.txid}",
            }
        return {
            "identifier": self.identifier,
            "user_uid": self.user_uid,
            "amount": self.amount,
            "memo": self.memo,
            "metadata": self.metadata,
            "from_address": self.from_address,
            "to_address": self.to_address,
            "direction": self.direction,
            "created_at": iso_millis(self.created_at),
            "network": self.network,
            "status": {
                "developer_approved": self.developer_approved,
                "transaction_verified": self.txid is not None and self.tx_verified,
                "developer_completed": self.developer_completed,
                "cancelled": self.cancelled,
                "user_cancelled": self.user_cancelled,
            },
            "transaction": transaction,
        }


@dataclass
class LedgerTx:
    """A transaction on the sandbox ledger holding one native payment operation."""

    hash: str
    source_account: str
    destination: str
    amount: Decimal
    memo: str | None
    successful: bool
    ledger: int
    created_at: float
    fee_charged: int
    source_sequence: int | None = None
    envelope_xdr: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the control API representation (``GET /sandbox/ledger``)."""
        return to_record(self)


@dataclass
class Account:
    """A Horizon account: native balance and sequence number."""

    account_id: str
    balance: Decimal
    sequence: int
    last_modified_ledger: int = 1
