"""Identifier, address and timestamp generators of the sandbox (standard library only).

Formats follow the real Pi Platform: payment identifiers are 28 alphanumerics (the Stellar
``MEMO_TEXT`` limit), user uids are UUID4 strings, access tokens are opaque URL-safe strings,
transaction ids are 64 lowercase hex digits and wallet addresses are Stellar ``G...`` strkeys.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import uuid
from datetime import UTC, datetime

__all__ = [
    "decode_account_id",
    "encode_account_id",
    "horizon_time",
    "is_account_id",
    "iso_millis",
    "new_access_token",
    "new_account_id",
    "new_identifier",
    "new_txid",
    "new_uid",
]

IDENTIFIER_LENGTH = 28
_ALPHANUMERIC = string.ascii_letters + string.digits
_ACCOUNT_VERSION_BYTE = 6 << 3  # strkey version byte of an ed25519 public key ("G")


def new_identifier() -> str:
    """Return a payment identifier: 28 characters of ``[A-Za-z0-9]``."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(IDENTIFIER_LENGTH))


def new_uid() -> str:
    """Return an app-specific user uid (a UUID4 string, as on the real platform)."""
    return str(uuid.uuid4())


def new_access_token() -> str:
    """Return an opaque URL-safe access token."""
    return secrets.token_urlsafe(32)


def new_txid(*parts: str) -> str:
    """Return a transaction hash: SHA-256 (64 lowercase hex) of ``parts`` plus fresh randomness."""
    digest = hashlib.sha256()
    for part in (*parts, secrets.token_hex(16)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_account_id(public_key: bytes) -> str:
    """Encode a 32-byte ed25519 public key as a Stellar account id (``G...``, 56 characters)."""
    if len(public_key) != 32:
        raise ValueError("an ed25519 public key has 32 bytes")
    payload = bytes([_ACCOUNT_VERSION_BYTE]) + public_key
    checksum = _crc16_xmodem(payload).to_bytes(2, "little")
    return base64.b32encode(payload + checksum).decode("ascii")


def decode_account_id(account_id: str) -> bytes:
    """Return the 32-byte public key of a ``G...`` strkey; raise ``ValueError`` if invalid."""
    if len(account_id) != 56 or not account_id.startswith("G"):
        raise ValueError("an account id is 56 characters starting with G")
    try:
        raw = base64.b32decode(account_id.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("an account id is base32") from exc
    payload, checksum = raw[:-2], raw[-2:]
    if payload[0] != _ACCOUNT_VERSION_BYTE or _crc16_xmodem(payload).to_bytes(2, "little") != (
        checksum
    ):
        raise ValueError("bad account id version byte or checksum")
    return payload[1:]


def is_account_id(value: object) -> bool:
    """Tell whether ``value`` is a valid Stellar account id."""
    if not isinstance(value, str):
        return False
    try:
        decode_account_id(value)
    except ValueError:
        return False
    return True


def new_account_id() -> str:
    """Return a random valid account id (no secret key exists for it in the sandbox)."""
    return encode_account_id(secrets.token_bytes(32))


def iso_millis(timestamp: float) -> str:
    """Format a POSIX timestamp like the Pi API: ``2022-05-14T22:59:27.102Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def horizon_time(timestamp: float) -> str:
    """Format a POSIX timestamp like Horizon: ``2022-05-14T22:59:27Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
