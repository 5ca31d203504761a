"""Typed, immutable views of Pi Platform API answers.

Parsing is tolerant: old answers lack ``from_address``, ``direction`` or ``network``, once carried
``transaction`` inside ``status``, and new answers may add fields. Unknown fields are ignored, the
full original JSON is kept in ``raw``, and amounts are :class:`~decimal.Decimal`. What no answer of
Pi's holds is refused with ``ValueError`` rather than guessed at: a status flag that is not a
boolean, a text or an amount too long to store, metadata nested too deeply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

USER_TO_APP = "user_to_app"
APP_TO_USER = "app_to_user"

# The smallest amount of Pi, and the precision every amount is kept at.
STROOP = Decimal("0.0000001")
# The most one payment on the Pi Blockchain can carry: a signed 64-bit count of stroops.
MAX_AMOUNT = Decimal(2**63 - 1) * STROOP
# How deeply lists and objects may nest in a payment, whose metadata the payer chooses: far more
# than an app's metadata needs, far less than exhausts Python's recursion limit when it is stored.
MAX_NESTING = 64
# A transaction's id on the Pi Blockchain: its hash, 64 hexadecimal characters.
TXID_RE = re.compile(r"^[0-9a-fA-F]{64}$")
# What a database cannot store in text: NUL (PostgreSQL) and lone UTF-16 surrogates (UTF-8).
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


def parse_amount(value: Any) -> Decimal:
    """Turn a JSON number or string into a Decimal; raise ``ValueError`` when it is not one, or
    is larger than :data:`MAX_AMOUNT`."""
    if isinstance(value, bool):
        raise ValueError("amount must be a number")
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"invalid amount {value!r}") from exc
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        raise ValueError(f"invalid amount {value!r}")
    return amount


def parse_datetime(value: Any) -> datetime | None:
    """Parse Pi's ISO-8601 timestamps (``2022-05-14T22:59:27.102Z``); ``None`` when absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # not ISO-8601, or out of datetime's range in UTC
        return None


def _from_timestamp(value: Any) -> datetime | None:
    """A Unix timestamp as an aware datetime; ``None`` when it is not a number or out of range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (ValueError, OverflowError, OSError):  # NaN, or beyond what the platform converts
        return None


def storable(value: Any) -> Any:
    """``value`` with every character in its strings (keys included) that a database cannot
    store replaced by U+FFFD: NUL, which PostgreSQL refuses in text and ``jsonb``, and half of a
    UTF-16 surrogate pair, which no UTF-8 database can encode.

    A payer controls a payment's memo and metadata, and JSON can carry both characters as
    escapes: what is stored goes through this first.
    """
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value:  # the common case, at a fraction of the cost
            return value
        return UNSTORABLE_RE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def _str(data: dict[str, Any], key: str, limit: int | None = None) -> str:
    """A string of Pi's answer, empty when missing or not a string. With a ``limit`` (a field
    stored in a column of its own), ``ValueError`` when it is longer, or holds a character
    :func:`storable` would replace: what no answer of Pi's holds, and the column cannot."""
    value = data.get(key)
    if not isinstance(value, str):
        return ""
    if limit is not None:
        if len(value) > limit:
            raise ValueError(f"{key} is longer than {limit} characters")
        if UNSTORABLE_RE.search(value):
            raise ValueError(f"{key} holds a character that cannot be stored")
    return value


def nesting(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a scalar), counted without recursion
    and only as far as one level past :data:`MAX_NESTING`."""
    deepest = 0
    pending = [(value, 1)]
    while pending and deepest <= MAX_NESTING:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in item)
    return deepest


def _flag(data: dict[str, Any], key: str) -> bool:
    """A boolean of Pi's answer, false when missing or null; ``ValueError`` for any other type.

    Never ``bool(value)``: a string ``"false"`` is truthy, and would read a payment as cancelled
    or completed."""
    value = data.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{key} is not a boolean")
    return value


@dataclass(frozen=True)
class TransactionDTO:
    """The blockchain transaction Pi linked to a payment."""

    txid: str
    verified: bool = False
    link: str = ""

    @classmethod
    def from_json(cls, data: Any) -> TransactionDTO | None:
        """Parse Pi's ``transaction`` object; ``None`` when no transaction is linked, and
        ``ValueError`` when the txid is not a transaction hash or ``verified`` not a boolean."""
        if not isinstance(data, dict) or not data.get("txid"):
            return None
        txid = data["txid"]
        if not isinstance(txid, str) or not TXID_RE.fullmatch(txid):
            raise ValueError("txid is not a transaction hash (64 hexadecimal characters)")
        return cls(txid=txid, verified=_flag(data, "verified"), link=_str(data, "_link"))


@dataclass(frozen=True)
class PaymentStatusDTO:
    """The five status flags of a Pi payment."""

    developer_approved: bool = False
    transaction_verified: bool = False
    developer_completed: bool = False
    cancelled: bool = False
    user_cancelled: bool = False

    @classmethod
    def from_json(cls, data: Any) -> PaymentStatusDTO:
        """Parse Pi's ``status`` object, treating missing and null flags as false; raise
        ``ValueError`` when a flag is not a boolean."""
        if not isinstance(data, dict):
            return cls()
        return cls(
            developer_approved=_flag(data, "developer_approved"),
            transaction_verified=_flag(data, "transaction_verified"),
            developer_completed=_flag(data, "developer_completed"),
            cancelled=_flag(data, "cancelled"),
            user_cancelled=_flag(data, "user_cancelled"),
        )


@dataclass(frozen=True)
class PaymentDTO:
    """A payment as Pi reports it (``GET /v2/payments/{id}`` and friends)."""

    identifier: str
    user_uid: str
    amount: Decimal
    memo: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    from_address: str = ""
    to_address: str = ""
    direction: str = USER_TO_APP
    network: str = ""
    created_at: datetime | None = None
    status: PaymentStatusDTO = field(default_factory=PaymentStatusDTO)
    transaction: TransactionDTO | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> PaymentDTO:
        """Parse a PaymentDTO; raise ``ValueError`` when the identifier, the amount or a status
        flag is unusable, a text is longer than Pi's, or lists and objects nest deeper than
        :data:`MAX_NESTING`."""
        if not isinstance(data, dict) or not isinstance(data.get("identifier"), str):
            raise ValueError("not a Pi payment object")
        if nesting(data) > MAX_NESTING:
            raise ValueError(f"lists and objects nested deeper than {MAX_NESTING} levels")
        status_data = data.get("status")
        transaction_data = data.get("transaction")
        if transaction_data is None and isinstance(status_data, dict):
            transaction_data = status_data.get("transaction")
        metadata = data.get("metadata")
        # Identifiers and uids are at most 64 characters, Stellar addresses 56.
        return cls(
            identifier=_str(data, "identifier", 64),
            user_uid=_str(data, "user_uid", 64),
            amount=parse_amount(data.get("amount")),
            memo=_str(data, "memo"),
            metadata=metadata if isinstance(metadata, dict) else {},
            from_address=_str(data, "from_address", 56),
            to_address=_str(data, "to_address", 56),
            direction=_str(data, "direction", 16) or USER_TO_APP,
            network=_str(data, "network", 32),
            created_at=parse_datetime(data.get("created_at")),
            status=PaymentStatusDTO.from_json(status_data),
            transaction=TransactionDTO.from_json(transaction_data),
            raw=data,
        )

    @property
    def txid(self) -> str | None:
        """The linked transaction's id, if any."""
        return self.transaction.txid if self.transaction else None

    @property
    def has_verified_transaction(self) -> bool:
        """Pi verified a transaction for this payment."""
        return bool(
            self.transaction and self.transaction.verified and self.status.transaction_verified
        )

    @property
    def is_cancelled(self) -> bool:
        """Cancelled by the developer, Pi or the user."""
        return self.status.cancelled or self.status.user_cancelled


@dataclass(frozen=True)
class UserDTO:
    """The user behind an access token (``GET /v2/me``)."""

    uid: str
    username: str = ""
    scopes: tuple[str, ...] = ()
    valid_until: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> UserDTO:
        """Parse a UserDTO; raise ``ValueError`` when it has no uid, or a uid or username
        longer than Pi's. An expiry that cannot be read is ``None``."""
        if not isinstance(data, dict) or not isinstance(data.get("uid"), str) or not data["uid"]:
            raise ValueError("not a Pi user object")
        credentials = data.get("credentials")
        credentials = credentials if isinstance(credentials, dict) else {}
        scopes = credentials.get("scopes")
        valid_until = credentials.get("valid_until")
        expiry: datetime | None = None
        if isinstance(valid_until, dict):
            expiry = _from_timestamp(valid_until.get("timestamp")) or parse_datetime(
                valid_until.get("iso8601")
            )
        # PiUser's columns: Pi's uids are UUIDs, its usernames short.
        return cls(
            uid=_str(data, "uid", 64),
            username=_str(data, "username", 150),
            scopes=tuple(s for s in scopes if isinstance(s, str) and not UNSTORABLE_RE.search(s))
            if isinstance(scopes, list)
            else (),
            valid_until=expiry,
            raw=data,
        )
