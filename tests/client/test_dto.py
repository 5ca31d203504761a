"""DTO parsing is tolerant of the old and new shapes Pi has sent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from django_pi_payments.dto import (
    MAX_AMOUNT,
    MAX_NESTING,
    USER_TO_APP,
    PaymentDTO,
    UserDTO,
    parse_amount,
)


def test_old_payment_without_direction_network_and_addresses():
    dto = PaymentDTO.from_json(
        {
            "identifier": "FZhl08kaUp0vljRvnRVof9zjaZPF",
            "user_uid": "u",
            "amount": 1.0,
            "memo": "m",
            "metadata": None,
            "status": {
                "developer_approved": True,
                "transaction_verified": True,
                "transaction": {"txid": "ab" * 32, "verified": True, "_link": "x"},
            },
            "created_at": "2022-05-14T22:59:27.102Z",
        }
    )
    assert dto.direction == USER_TO_APP
    assert dto.network == ""
    assert dto.metadata == {}
    assert dto.txid == "ab" * 32
    assert dto.has_verified_transaction
    assert dto.created_at is not None and dto.created_at.tzinfo is not None


def test_extra_fields_are_kept_in_raw_and_ignored():
    data = {"identifier": "x" * 28, "amount": "0.1234567", "future_field": [1]}
    dto = PaymentDTO.from_json(data)
    assert dto.amount == Decimal("0.1234567")
    assert dto.raw["future_field"] == [1]


@pytest.mark.parametrize(
    "bad", [None, "abc", True, "NaN", "Infinity", [1], "922337203685.4775808", "-1e13"]
)
def test_bad_amounts_are_refused(bad):
    with pytest.raises(ValueError):
        parse_amount(bad)


def test_the_most_one_payment_on_the_chain_carries_is_an_amount():
    assert parse_amount("922337203685.4775807") == MAX_AMOUNT


def test_an_identifier_longer_than_pi_s_is_refused():
    PaymentDTO.from_json({"identifier": "x" * 64, "amount": 1})
    with pytest.raises(ValueError):
        PaymentDTO.from_json({"identifier": "x" * 65, "amount": 1})


def _payment_nested(depth: int) -> dict[str, object]:
    """A payment whose lists and objects nest ``depth`` levels, itself the first."""
    metadata: object = 1
    for level in range(depth - 1):
        metadata = [metadata] if level % 2 else {"a": metadata}
    return {"identifier": "x" * 28, "amount": 1, "metadata": metadata}


def test_nesting_is_refused_past_max_nesting():
    assert PaymentDTO.from_json(_payment_nested(MAX_NESTING)).metadata
    with pytest.raises(ValueError):
        PaymentDTO.from_json(_payment_nested(MAX_NESTING + 1))


def test_float_amount_keeps_its_decimal_text():
    assert parse_amount(0.1) == Decimal("0.1")


def test_user_without_username_and_with_iso_expiry():
    user = UserDTO.from_json(
        {
            "uid": "u1",
            "credentials": {
                "scopes": ["payments"],
                "valid_until": {"iso8601": "2030-01-01T00:00:00Z"},
            },
        }
    )
    assert user.username == ""
    assert user.scopes == ("payments",)
    assert user.valid_until is not None and user.valid_until.year == 2030


@pytest.mark.parametrize("bad", [None, {}, {"uid": ""}, {"uid": 5}, []])
def test_unusable_user_is_refused(bad):
    with pytest.raises(ValueError):
        UserDTO.from_json(bad)
