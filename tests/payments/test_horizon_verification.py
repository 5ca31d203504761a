"""Horizon verification against transactions that come close to paying a payment, but do not.

Each test pays a payment in the sandbox, then makes its Horizon answer the transaction or its
operations otherwise, and checks that only a successful transaction with the payment's text memo
and a native payment of exactly its amount from its payer to the app's wallet proves it.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from django_pi_payments.client import PiClient
from django_pi_payments.dto import PaymentDTO
from django_pi_payments.exceptions import VerificationFailed
from django_pi_payments.horizon import HorizonClient, verify_payment_transaction
from django_pi_payments.strkey import random_address


class Paid:
    """A payment paid in the sandbox, its transaction as Horizon shows it, and a verifier."""

    def __init__(self, sandbox: Any, amount: str = "3.5") -> None:
        self.sandbox = sandbox
        user, _token = sandbox.login(username="payer")
        pi = PiClient(sandbox.api_key, base_url=sandbox.url, timeout=2, backoff=0)
        self.horizon = HorizonClient(sandbox.horizon_url, timeout=2, max_retries=0)
        identifier = sandbox.create_payment(user["uid"], amount, memo="book")["identifier"]
        pi.approve_payment(identifier)
        self.txid = sandbox.submit_transaction(identifier)["txid"]
        self.dto: PaymentDTO = pi.get_payment(identifier)
        pi.close()
        self.tx = sandbox.request("GET", f"/horizon/transactions/{self.txid}")
        page = sandbox.request("GET", f"/horizon/transactions/{self.txid}/operations")
        [self.operation] = page["_embedded"]["records"]

    def answer(self, *, tx: dict[str, Any] | None = None, operations: list[Any] | None = None):
        """Make Horizon answer the transaction and its operations so, from now on."""
        if tx is not None:
            self.sandbox.add_fault("horizon_transaction", status=200, body=tx, count=None)
        if operations is not None:
            page = {"_embedded": {"records": operations}}
            self.sandbox.add_fault("horizon_operations", status=200, body=page, count=None)

    def operation_with(self, **changes: Any) -> dict[str, Any]:
        return {**self.operation, **changes}

    def verify(self) -> None:
        verify_payment_transaction(self.dto, self.txid, self.horizon)


@pytest.fixture
def paid(pi_sandbox):
    payment = Paid(pi_sandbox)
    yield payment
    payment.horizon.close()


def test_the_transaction_as_paid_is_accepted(paid):
    paid.verify()


@pytest.mark.parametrize(
    ("tx_changes", "code"),
    [
        ({"successful": False}, "tx_not_successful"),
        ({"successful": "true"}, "tx_not_successful"),
        ({"memo_type": "hash"}, "tx_memo_mismatch"),
        ({"memo_type": "id"}, "tx_memo_mismatch"),
        ({"memo": "another memo"}, "tx_memo_mismatch"),
    ],
)
def test_a_transaction_that_failed_or_has_another_memo_is_refused(paid, tx_changes, code):
    paid.answer(tx={**paid.tx, **tx_changes})
    with pytest.raises(VerificationFailed) as caught:
        paid.verify()
    assert caught.value.code == code


def _path_payment(operation: dict[str, Any]) -> dict[str, Any]:
    return {
        **operation,
        "type": "path_payment_strict_receive",
        "type_i": 2,
        "source_asset_type": "native",
        "source_amount": operation["amount"],
        "path": [],
    }


@pytest.mark.parametrize(
    "operation_changes",
    [
        pytest.param({"from": random_address()}, id="from another account"),
        pytest.param({"to": random_address()}, id="to another account"),
        pytest.param({"amount": "3.4999999"}, id="a stroop less"),
        pytest.param({"amount": "3.5000001"}, id="a stroop more"),
        pytest.param({"amount": "35.0000000"}, id="ten times"),
        pytest.param({"amount": None}, id="no amount"),
        pytest.param({"amount": "NaN"}, id="NaN"),
        pytest.param(
            {"asset_type": "credit_alphanum4", "asset_code": "PI", "asset_issuer": "G" * 56},
            id="an asset named PI",
        ),
        pytest.param({"type": "create_account", "type_i": 0}, id="another operation type"),
    ],
)
def test_an_operation_that_does_not_pay_exactly_is_refused(paid, operation_changes):
    paid.answer(operations=[paid.operation_with(**operation_changes)])
    with pytest.raises(VerificationFailed) as caught:
        paid.verify()
    assert caught.value.code == "tx_payment_mismatch"


def test_a_path_payment_is_refused(paid):
    paid.answer(operations=[_path_payment(paid.operation)])
    with pytest.raises(VerificationFailed) as failure:
        paid.verify()
    assert failure.value.code == "tx_payment_mismatch"


def test_the_amount_split_over_two_payments_is_refused(paid):
    half = paid.operation_with(amount="1.7500000")
    paid.answer(operations=[half, half])
    with pytest.raises(VerificationFailed) as failure:
        paid.verify()
    assert failure.value.code == "tx_payment_mismatch"


def test_the_exact_payment_among_other_operations_is_accepted(paid):
    tip = paid.operation_with(amount="0.0000001")
    other = paid.operation_with(**{"to": random_address()})
    paid.answer(operations=[tip, other, paid.operation_with(amount="3.50")])
    paid.verify()


def test_a_payment_to_the_app_s_muxed_account_is_accepted(paid):
    # Horizon names the underlying account in "to", the muxed one in "to_muxed": the check
    # reads "to" only, so a muxed payment to the app's account passes.
    muxed = "M" + "A" * 68
    paid.answer(operations=[paid.operation_with(to_muxed=muxed, to_muxed_id="7")])
    paid.verify()


def test_an_amount_pi_holds_as_a_double_is_paid_by_its_stroops(pi_sandbox):
    # Pi may answer 0.1 + 0.2 as 0.30000000000000004 (a double), which the chain cannot carry:
    # the stroops it stands for, 0.3000000, pay it (as they are stored), and a stroop less not.
    paid = Paid(pi_sandbox, amount="0.3")
    try:
        paid.dto = dataclasses.replace(paid.dto, amount=Decimal("0.30000000000000004"))
        paid.verify()
        paid.answer(operations=[paid.operation_with(amount="0.2999999")])
        with pytest.raises(VerificationFailed) as failure:
            paid.verify()
        assert failure.value.code == "tx_payment_mismatch"
    finally:
        paid.horizon.close()
