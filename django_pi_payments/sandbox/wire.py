"""JSON on the wire: exact ``Decimal`` amounts in and out, and amount validation.

Request bodies are parsed into ``Decimal`` so ``1.1`` stays exactly ``1.1``; responses write a
``Decimal`` as a bare JSON number with its exact decimal text (never through ``float``). A number
out of a double's range (``1e400``) is refused: no Pi client could send or read it, and its exact
text would not fit in an answer.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "MAX_AMOUNT",
    "MAX_DECIMALS",
    "dumps",
    "format_amount",
    "horizon_amount",
    "loads",
    "parse_amount",
]

MAX_DECIMALS = 7
_STROOP = Decimal(1).scaleb(-MAX_DECIMALS)
# The largest amount on the Pi Blockchain (Stellar): a signed 64-bit count of stroops.
MAX_AMOUNT = (2**63 - 1) * _STROOP


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_decimal(text: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:  # an exponent beyond even Decimal's range
        raise ValueError(f"the JSON number {text[:40]} is out of range") from None
    as_float = float(number)
    if not math.isfinite(as_float) or (number and not as_float):
        raise ValueError(f"the JSON number {text[:40]} is out of range")
    return number


def _parse_int(text: str) -> int:
    number = int(text)
    if abs(number) > sys.float_info.max:
        raise ValueError(f"the JSON number {text[:40]} is out of range")
    return number


def loads(data: bytes | str) -> Any:
    """Parse JSON keeping non-integral numbers as ``Decimal``; reject NaN, Infinity and numbers
    out of a double's range.

    Raises ``ValueError`` for anything that is not such JSON, nesting too deep to parse included.
    """
    try:
        return json.loads(
            data,
            parse_float=_parse_decimal,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
        )
    except RecursionError as exc:
        raise ValueError("the JSON document is nested too deeply") from exc


def format_amount(amount: Decimal) -> str:
    """Return the exact decimal text of ``amount``, no exponent: ``1.0``, ``0.0000001``."""
    text = format(amount.normalize(), "f")
    return text if "." in text else text + ".0"


def horizon_amount(amount: Decimal) -> str:
    """Return ``amount`` as Horizon writes it: a string with exactly 7 decimals."""
    return str(amount.quantize(_STROOP))


def parse_amount(value: object) -> Decimal | None:
    """Return ``value`` as a positive ``Decimal`` with at most 7 decimals and at most
    :data:`MAX_AMOUNT`, or ``None`` if invalid.

    Only JSON numbers are accepted: strings and booleans are not amounts.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    if not amount.is_finite() or not 0 < amount <= MAX_AMOUNT:
        return None
    exponent = amount.normalize().as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -MAX_DECIMALS:
        return None
    return amount


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, Decimal):
        out.append(format_amount(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        out.append(json.dumps(value, allow_nan=False))


def dumps(value: Any) -> str:
    """Serialize ``value`` to compact JSON, writing ``Decimal`` values as exact JSON numbers."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)
