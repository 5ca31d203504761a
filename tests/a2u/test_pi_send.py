"""``manage.py pi_send``: prints identifier, txid and status; errors as ``CommandError``."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from stellar_sdk import Keypair

from django_pi_payments.client import get_client
from django_pi_payments.models import Payment
from django_pi_payments.testing import SandboxHandle

from .conftest import ledger_for
from .test_refunds import PaymentReadsFromReplica


def pi_send(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("pi_send", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_pi_send_pays_and_prints_the_payment(
    a2u: SandboxHandle, wallet: Keypair, pioneer: str
) -> None:
    out, err = pi_send(
        "--uid", pioneer, "--amount", "4.2", "--memo", "Prize", "--metadata", '{"contest": 3}'
    )

    payment = Payment.objects.get()
    assert out.splitlines() == [
        f"identifier: {payment.identifier}",
        f"txid: {payment.txid}",
        "status: completed",
    ]
    assert (payment.amount, payment.metadata, payment.memo) == (
        Decimal("4.2"),
        {"contest": 3},
        "Prize",
    )
    assert len(ledger_for(a2u, payment.identifier)) == 1
    assert wallet.secret not in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--amount", "0"], "positive number"),
        (["--metadata", "{nope"], "--metadata is not valid JSON."),
        (["--metadata", "[1]"], "--metadata must be a JSON object."),
        (["--metadata", '{"score": NaN}'], "--metadata is not valid JSON."),
        (["--metadata", '{"score": -Infinity}'], "--metadata is not valid JSON."),
        (["--metadata", '{"score": 1e400}'], "--metadata is not valid JSON."),
        (["--uid", "nobody"], "(user_not_found)"),
        (["--metadata", '{"refund_of": "x"}'], "Refund to the payer"),
    ],
)
def test_refusals_are_command_errors(
    a2u: SandboxHandle, pioneer: str, args: list[str], message: str
) -> None:
    base = {"--uid": pioneer, "--amount": "1", "--memo": "m", "--metadata": "{}"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    with pytest.raises(CommandError) as failure:
        pi_send(*[part for pair in base.items() for part in pair])
    assert message in str(failure.value)
    assert not Payment.objects.exists()


def test_an_unfinished_payment_is_printed_and_left_to_pi_reconcile(
    a2u: SandboxHandle, wallet: Keypair, pioneer: str
) -> None:
    a2u.add_fault("horizon_submit", status=504)
    out = io.StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("pi_send", "--uid", pioneer, "--amount", "1", "--memo", "m", stdout=out)

    payment = Payment.objects.get()
    assert f"identifier: {payment.identifier}" in out.getvalue()
    assert "status: approved" in out.getvalue()
    assert "pi_reconcile will finish the payment" in str(failure.value)
    assert wallet.secret not in out.getvalue() + str(failure.value)


def test_an_unfinished_payment_is_read_where_it_was_written(
    a2u: SandboxHandle, pioneer: str
) -> None:
    a2u.add_fault("horizon_submit", status=504)
    out = io.StringIO()

    # A replica lagging behind the payment just created would not have it yet.
    with (
        override_settings(DATABASE_ROUTERS=[PaymentReadsFromReplica()]),
        pytest.raises(CommandError) as failure,
    ):
        call_command("pi_send", "--uid", pioneer, "--amount", "1", "--memo", "m", stdout=out)

    assert "status: approved" in out.getvalue()
    assert "pi_reconcile will finish the payment" in str(failure.value)


def test_a_payment_cancelled_instead_of_paid_is_not_left_to_pi_reconcile(
    a2u: SandboxHandle, pioneer: str
) -> None:
    # Pi answers the creation with a payment of another amount: it is cancelled, never paid.
    answered = get_client().create_payment(pioneer, Decimal(100), "m", {})
    a2u.add_fault("create_payment", status=200, body=answered.raw)
    out = io.StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("pi_send", "--uid", pioneer, "--amount", "1", "--memo", "m", stdout=out)

    assert "status: cancelled" in out.getvalue()
    assert "(not_as_requested)" in str(failure.value)
    assert "pi_reconcile" not in str(failure.value)
    assert a2u.ledger() == []


def test_the_seed_is_never_printed_even_when_invalid(
    a2u: SandboxHandle, pioneer: str, settings: Any
) -> None:
    seed = Keypair.random().secret
    broken = seed[:-2] + ("AA" if seed[-2:] != "AA" else "BB")
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "WALLET_PRIVATE_SEED": broken}
    with pytest.raises(CommandError) as failure:
        pi_send("--uid", pioneer, "--amount", "1", "--memo", "m")
    assert "WALLET_PRIVATE_SEED" in str(failure.value)
    assert broken not in str(failure.value)
