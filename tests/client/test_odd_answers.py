"""PiClient against a Pi API that answers oddly: an answer it cannot read is a PiUnavailable
(the callbacks' 503, the payment left as it was), never another exception and never a payment
read wrong."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from django_pi_payments.exceptions import PiUnavailable


def _answer(pi_sandbox: Any, route: str, body: Any) -> None:
    """Make Pi answer ``route`` with 200 and ``body`` (a JSON text, or a value to encode)."""
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    pi_sandbox.add_fault(route, status=200, body=text)


@pytest.fixture
def payment(pi_sandbox, payer) -> dict[str, Any]:
    """A new payment as Pi answers it."""
    user, _token = payer
    identifier = pi_sandbox.create_payment(user["uid"], "3.5", memo="book")["identifier"]
    return pi_sandbox.payment(identifier)


def test_json_nested_deeper_than_python_parses_is_unreadable(pi_sandbox, client, payment):
    _answer(pi_sandbox, "get_payment", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(PiUnavailable, match="unreadable payment"):
        client.get_payment(payment["identifier"])


@pytest.mark.parametrize(
    ("flag", "value"),
    [("cancelled", "false"), ("developer_completed", "false"), ("transaction_verified", 1)],
)
def test_a_status_flag_that_is_not_a_boolean_is_unreadable(
    pi_sandbox, client, payment, flag, value
):
    # "false" is truthy: read as a boolean, it would mark the payment cancelled or completed.
    payment["status"][flag] = value
    _answer(pi_sandbox, "get_payment", payment)
    with pytest.raises(PiUnavailable, match="unreadable payment"):
        client.get_payment(payment["identifier"])


def test_a_transaction_verified_flag_that_is_not_a_boolean_is_unreadable(
    pi_sandbox, client, payment
):
    payment["transaction"] = {"txid": "ab" * 32, "verified": "false", "_link": ""}
    _answer(pi_sandbox, "get_payment", payment)
    with pytest.raises(PiUnavailable, match="unreadable payment"):
        client.get_payment(payment["identifier"])


def test_null_and_missing_status_flags_read_as_false(pi_sandbox, client, payment):
    payment["status"] = {"cancelled": None, "developer_approved": True}
    _answer(pi_sandbox, "get_payment", payment)
    status = client.get_payment(payment["identifier"]).status
    assert status.developer_approved is True
    assert (status.cancelled, status.user_cancelled, status.developer_completed) == (
        False,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_uid", "u" * 65),
        ("from_address", "G" * 57),
        ("to_address", "G" * 57),
        ("network", "Pi Testnet" * 4),
        ("direction", "user_to_app" * 2),
        ("transaction", {"txid": "a" * 65, "verified": True, "_link": ""}),
        ("transaction", {"txid": "ab\x00" + "a" * 61, "verified": True, "_link": ""}),
        ("transaction", {"txid": "ab\ud800" + "a" * 61, "verified": True, "_link": ""}),
        ("transaction", {"txid": "g" * 64, "verified": True, "_link": ""}),
        ("transaction", {"txid": 12345, "verified": True, "_link": ""}),
        ("user_uid", "u\x00"),
        ("from_address", "G\ud800"),
        ("amount", "1e30"),
        ("amount", "-1e30"),
        ("amount", "922337203685.4775808"),
    ],
)
def test_a_value_longer_or_larger_than_pi_sends_is_unreadable(
    pi_sandbox, client, payment, field, value
):
    # Stored as it is, it would not fit its column, or hold what no database stores (NUL, half of
    # a surrogate pair), or not be what Pi sends (a txid is a transaction hash): a 500 on storing.
    payment[field] = value
    _answer(pi_sandbox, "get_payment", payment)
    with pytest.raises(PiUnavailable, match="unreadable payment"):
        client.get_payment(payment["identifier"])


def test_the_largest_values_pi_sends_are_read(pi_sandbox, client, payment):
    payment.update(user_uid="u" * 64, amount="922337203685.4775807", network="n" * 32)
    _answer(pi_sandbox, "get_payment", payment)
    read = client.get_payment(payment["identifier"])
    assert (read.user_uid, str(read.amount)) == ("u" * 64, "922337203685.4775807")


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_metadata_nested_too_deep_is_unreadable(pi_sandbox, client, payment):
    # The payer chooses the metadata: stored, it would exhaust the recursion limit (a 500).
    payment["metadata"] = _nested(600)
    _answer(pi_sandbox, "get_payment", payment)
    with pytest.raises(PiUnavailable, match="unreadable payment"):
        client.get_payment(payment["identifier"])


def test_metadata_nested_as_apps_nest_it_is_read(pi_sandbox, client, payment):
    payment["metadata"] = _nested(30)
    _answer(pi_sandbox, "get_payment", payment)
    assert client.get_payment(payment["identifier"]).metadata == _nested(30)


def _me_answer(pi_sandbox: Any, **changes: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "uid": "c0ffee00-0000-4000-8000-000000000001",
        "username": "alice",
        "credentials": {
            "scopes": ["payments", "username"],
            "valid_until": {"timestamp": 1893456000, "iso8601": "2030-01-01T00:00:00Z"},
        },
    }
    answer.update(changes)
    _answer(pi_sandbox, "me", answer)
    return answer


@pytest.mark.parametrize("timestamp", [1e20, -1e20, 10**30])
def test_a_token_expiry_out_of_range_falls_back_to_its_iso_text(pi_sandbox, client, timestamp):
    # datetime.fromtimestamp raises OverflowError or OSError for these: a 500 on sign-in.
    _me_answer(
        pi_sandbox,
        credentials={"valid_until": {"timestamp": timestamp, "iso8601": "2030-01-01T00:00:00Z"}},
    )
    me = client.me("t0ken")
    assert me.valid_until is not None and me.valid_until.year == 2030


def test_a_token_expiry_out_of_range_without_iso_text_is_unknown(pi_sandbox, client):
    _me_answer(pi_sandbox, credentials={"valid_until": {"timestamp": 1e20}})
    assert client.me("t0ken").valid_until is None


@pytest.mark.parametrize(("field", "value"), [("uid", "u" * 65), ("username", "n" * 151)])
def test_a_user_longer_than_pi_sends_is_unreadable(pi_sandbox, client, field, value):
    _me_answer(pi_sandbox, **{field: value})
    with pytest.raises(PiUnavailable, match="unreadable user"):
        client.me("t0ken")


def test_a_creation_time_out_of_range_in_utc_is_unknown(pi_sandbox, client, payment):
    # Year 1 at +01:00 is the year 0 in UTC, which datetime cannot hold: storing it would fail.
    payment["created_at"] = "0001-01-01T00:00:00+01:00"
    _answer(pi_sandbox, "get_payment", payment)
    assert client.get_payment(payment["identifier"]).created_at is None


def test_an_answer_about_another_payment_is_unreadable(pi_sandbox, client, payer, payment):
    # The services lock, store and act on the identifier of the answer: never another one.
    user, _token = payer
    other = pi_sandbox.create_payment(user["uid"], "1", memo="other")["identifier"]
    _answer(pi_sandbox, "get_payment", pi_sandbox.payment(other))
    with pytest.raises(PiUnavailable, match="another payment"):
        client.get_payment(payment["identifier"])
    _answer(pi_sandbox, "approve", pi_sandbox.payment(other))
    with pytest.raises(PiUnavailable, match="another payment") as caught:
        client.approve_payment(payment["identifier"])
    assert caught.value.request_sent is True


@pytest.mark.parametrize("page", ["<a" * 100_000, "<script>" * 25_000])
def test_a_large_error_page_is_summed_up_at_once(pi_sandbox, client, payment, page):
    # Stripping the markup of the whole page took time quadratic in its size (10 to 20 s for
    # these), holding the GIL: every thread of the process waited.
    pi_sandbox.add_fault("approve", status=500, body=page)
    started = time.monotonic()
    with pytest.raises(PiUnavailable) as caught:
        client.approve_payment(payment["identifier"])
    assert time.monotonic() - started < 1
    assert caught.value.status == 500


def test_an_error_page_is_summed_up_by_its_text(pi_sandbox, client, payment):
    style = "<style>" + "p { color: red; }\n" * 200 + "</style>"
    page = f"<html><head>{style}</head><body><h1>Pi is down &amp; out</h1></body></html>"
    pi_sandbox.add_fault("approve", status=503, body=page)
    with pytest.raises(PiUnavailable, match=r"^Pi API answered 503: Pi is down & out$"):
        client.approve_payment(payment["identifier"])
