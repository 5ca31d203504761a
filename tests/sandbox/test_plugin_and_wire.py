"""The pytest plugin's fixtures and handle, and the id / JSON helpers."""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stellar_sdk import Keypair

from django_pi_payments.sandbox import ids, wire
from django_pi_payments.testing import SandboxControlError, SandboxHandle


@pytest.fixture
def settings() -> SimpleNamespace:
    """Stands in for pytest-django's ``settings`` so this module needs no Django."""
    return SimpleNamespace()


def test_pi_sandbox_fixture(pi_sandbox: SandboxHandle) -> None:
    assert pi_sandbox.url.startswith("http://127.0.0.1:")
    assert pi_sandbox.horizon_url == pi_sandbox.url + "/horizon"
    assert (pi_sandbox.api_key, pi_sandbox.network) == ("sandbox-api-key", "Pi Testnet")
    user, token = pi_sandbox.login(username="dave")
    assert user["username"] == "dave"
    assert token
    payment = pi_sandbox.create_payment(user["uid"], Decimal("2.5"), metadata={"a": 1})
    assert pi_sandbox.payments() == [payment]
    with pytest.raises(SandboxControlError) as failure:
        pi_sandbox.submit_transaction(payment["identifier"], amount="2.5")
    assert failure.value.body["error"] == "payment_not_approved"
    assert pi_sandbox.expire_payment(payment["identifier"])["status"]["cancelled"] is True
    other = pi_sandbox.create_payment(user["uid"], 1)
    assert pi_sandbox.user_cancel(other["identifier"])["status"]["user_cancelled"] is True
    pi_sandbox.add_fault("me", status=503)
    pi_sandbox.set_config(latency_ms=1)
    pi_sandbox.expire_token(token)
    pi_sandbox.revoke_token(token)
    assert pi_sandbox.stats() == {"connections": 0, "requests": 0}
    assert pi_sandbox.ledger() == []


def test_pi_sandbox_is_reset_between_tests(pi_sandbox: SandboxHandle) -> None:
    assert pi_sandbox.payments() == []
    assert pi_sandbox.request("GET", "/sandbox/faults") == []
    assert pi_sandbox.set_config()["latency_ms"] == 0


def test_pi_settings_for_sandbox(
    pi_settings_for_sandbox: SandboxHandle, settings: SimpleNamespace
) -> None:
    sandbox = pi_settings_for_sandbox
    expected = {
        "API_KEY": sandbox.api_key,
        "API_BASE_URL": sandbox.url,
        "NETWORK": sandbox.network,
        "HORIZON_URL": sandbox.horizon_url,
    }
    configured = settings.PI_PAYMENTS
    assert configured == expected


def test_handle_accounts_and_calls_filter(pi_sandbox: SandboxHandle) -> None:
    account_id = Keypair.random().public_key
    account = pi_sandbox.add_account(account_id, balance="3", sequence=9)
    assert (account["sequence"], account["balances"][0]["balance"]) == ("9", "3.0000000")
    assert pi_sandbox.calls(route="me") == []
    pi_sandbox.clear_calls()


# -- ids and wire ----------------------------------------------------------------------------


def test_generated_ids_have_pi_formats() -> None:
    assert re.fullmatch(r"[A-Za-z0-9]{28}", ids.new_identifier())
    assert re.fullmatch(r"[0-9a-f]{64}", ids.new_txid("a", "b"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{20,}", ids.new_access_token())
    assert ids.iso_millis(0.5) == "1970-01-01T00:00:00.500Z"
    assert ids.horizon_time(0.5) == "1970-01-01T00:00:00Z"


@given(st.binary(min_size=32, max_size=32))
def test_strkeys_match_stellar_sdk(key: bytes) -> None:
    account_id = ids.encode_account_id(key)
    assert account_id == Keypair.from_raw_ed25519_public_key(key).public_key
    assert ids.decode_account_id(account_id) == key


@pytest.mark.parametrize(
    "value",
    [None, 5, "", "G" * 56, "S" + ids.new_account_id()[1:], ids.new_account_id()[:-1] + "A?"],
)
def test_invalid_account_ids(value: Any) -> None:
    assert not ids.is_account_id(value)


def test_encode_rejects_short_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ids.encode_account_id(b"short")


@given(st.decimals(min_value=Decimal("0.0000001"), max_value=wire.MAX_AMOUNT, places=7))
def test_amounts_round_trip_exactly(amount: Decimal) -> None:
    text = wire.dumps({"amount": amount})
    assert wire.loads(text)["amount"] == amount
    assert wire.parse_amount(wire.loads(text)["amount"]) == amount


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (1, Decimal(1)),
        (1.5, Decimal("1.5")),
        (Decimal("0.0000001"), Decimal("0.0000001")),
        (Decimal("1E+2"), Decimal(100)),
        (Decimal("0.00000001"), None),
        (0, None),
        (-2, None),
        ("1", None),
        (True, None),
        (None, None),
        (Decimal("NaN"), None),
        (Decimal("922337203685.4775807"), Decimal("922337203685.4775807")),
        (Decimal("922337203685.4775808"), None),
        (10**30, None),
        (Decimal("1E+9999999"), None),
    ],
)
def test_parse_amount(value: Any, parsed: Decimal | None) -> None:
    assert wire.parse_amount(value) == parsed


def test_dumps_formats() -> None:
    assert wire.dumps({"a": [Decimal("1"), Decimal("100"), (True, None)], 1: "x"}) == (
        '{"a":[1.0,100.0,[true,null]],"1":"x"}'
    )
    assert wire.horizon_amount(Decimal("1.5")) == "1.5000000"
    with pytest.raises(ValueError, match="not valid JSON"):
        wire.loads("Infinity")


@pytest.mark.parametrize(
    "text",
    [
        "1e400",
        "-1e400",
        "1e-400",
        "1E+9999999",
        "[1e-9999999]",
        "1e9999999999999999999",
        "-1e-9999999999999999999",
        "1" * 400,
        "-" + "9" * 309,
    ],
)
def test_loads_rejects_numbers_out_of_a_double_s_range(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        wire.loads(text)
