"""Stellar "strkey" encoding of account ids (``G…``) and secret seeds (``S…``), stdlib only.

A strkey is base32 of: one version byte, 32 key bytes, and a CRC16-XModem checksum (little endian).
"""

from __future__ import annotations

import base64
import binascii
import os

ACCOUNT_ID = 6 << 3  # "G"
SECRET_SEED = 18 << 3  # "S"


def crc16_xmodem(data: bytes) -> int:
    """The CRC16-XModem checksum Stellar uses."""
    return binascii.crc_hqx(data, 0)


def encode(version: int, payload: bytes) -> str:
    """Encode 32 key bytes under ``version`` (``ACCOUNT_ID`` or ``SECRET_SEED``)."""
    body = bytes([version]) + payload
    return base64.b32encode(body + crc16_xmodem(body).to_bytes(2, "little")).decode("ascii")


def decode(version: int, value: str) -> bytes:
    """Return the 32 key bytes of ``value``; raise ``ValueError`` when it is not a valid strkey."""
    if len(value) != 56 or not value.isascii():
        raise ValueError("a strkey has 56 characters")
    try:
        raw = base64.b32decode(value, casefold=False)
    except binascii.Error as exc:
        raise ValueError("not base32") from exc
    body, checksum = raw[:-2], raw[-2:]
    if body[0] != version or len(body) != 33:
        raise ValueError("wrong strkey version")
    if crc16_xmodem(body).to_bytes(2, "little") != checksum:
        raise ValueError("bad strkey checksum")
    return body[1:]


def _is_valid(version: int, value: str) -> bool:
    try:
        decode(version, value)
    except ValueError:
        return False
    return True


def is_valid_seed(value: str) -> bool:
    """Whether ``value`` is a well-formed secret seed (``S…``, 56 characters, good checksum)."""
    return _is_valid(SECRET_SEED, value)


def is_valid_address(value: str) -> bool:
    """Whether ``value`` is a well-formed account id (``G…``, 56 characters, good checksum)."""
    return _is_valid(ACCOUNT_ID, value)


def random_address() -> str:
    """A well-formed account id for random key bytes (the sandbox's simulated wallets)."""
    return encode(ACCOUNT_ID, os.urandom(32))
