"""``services.send_payment`` against the sandbox: one transaction per payment, whatever happens.

Every answer comes from the sandbox over HTTP, including the Horizon of the app wallet; failures
are the sandbox's injected faults, never mocks.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from stellar_sdk import Keypair

from django_pi_payments import services
from django_pi_payments.a2u import Wallet, WalletHorizon, get_wallet_horizon
from django_pi_payments.client import PiClient, get_client
from django_pi_payments.dto import MAX_NESTING
from django_pi_payments.exceptions import InvalidRequest, PiUnreachable
from django_pi_payments.models import A2ULock, Direction, Payment, PaymentStatus
from django_pi_payments.services import a2u as a2u_service
from django_pi_payments.services.a2u import checked_amount
from django_pi_payments.testing import SandboxHandle
from tests.database_lock import lock_held_elsewhere

from .conftest import (
    APP_WALLET_BALANCE,
    PAST_THE_DEADLINE,
    Crash,
    SignalLog,
    backdate,
    crash_after,
    kinds,
    ledger_for,
)

S = PaymentStatus


def balance(sandbox: SandboxHandle, account_id: str) -> Decimal:
    return Decimal(sandbox.add_account(account_id)["balances"][0]["balance"])


def test_payout_pays_once_completes_and_signals(
    a2u: SandboxHandle, wallet: Keypair, pioneer: str, signal_log: SignalLog
) -> None:
    to_address = a2u.create_user(uid=pioneer)["wallet_address"]
    before = balance(a2u, to_address)

    payment = services.send_payment(pioneer, "1.5", "Thanks!", {"order": 7})

    assert payment.status == S.COMPLETED
    assert payment.direction == "app_to_user"
    assert (payment.amount, payment.memo, payment.metadata) == (
        Decimal("1.5"),
        "Thanks!",
        {"order": 7},
    )
    assert (payment.from_address, payment.to_address) == (wallet.public_key, to_address)
    ledger = ledger_for(a2u, payment.identifier)
    assert [
        (tx["hash"], tx["source_account"], tx["destination"], tx["amount"]) for tx in ledger
    ] == [(payment.txid, wallet.public_key, to_address, Decimal("1.5"))]
    assert len(a2u.ledger()) == 1
    assert balance(a2u, to_address) == before + Decimal("1.5")
    at_pi = a2u.payment(payment.identifier)
    assert at_pi["status"]["developer_completed"] is True
    assert at_pi["transaction"]["txid"] == payment.txid
    assert kinds(payment.identifier) == ["a2u_created", "a2u_submitted", "completed"]
    assert signal_log.received == [("completed", payment.identifier)]
    assert A2ULock.objects.get().taken_at is not None
    # Pi's answer to the creation is the fresh truth: no extra read of the payment.
    assert [call["route"] for call in a2u.calls() if not call["route"].startswith("horizon")] == [
        "create_payment",
        "complete",
    ]


def test_the_transaction_is_the_payment_pi_expects(a2u: SandboxHandle, pioneer: str) -> None:
    payment = services.send_payment(pioneer, Decimal("0.0000001"), "smallest amount")
    (tx,) = ledger_for(a2u, payment.identifier)
    assert tx["amount"] == Decimal("0.0000001")
    assert tx["fee_charged"] == 100000  # the base fee Horizon announces
    assert tx["source_sequence"] is not None


def test_unknown_user_is_a_clear_error_and_nothing_is_stored(a2u: SandboxHandle) -> None:
    with pytest.raises(services.RecipientNotFound) as failure:
        services.send_payment("no-such-uid", "1", "x")
    assert failure.value.code == "user_not_found"
    assert "no-such-uid" in failure.value.detail
    assert failure.value.payment is None
    assert not Payment.objects.exists()
    assert a2u.ledger() == []


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "-1",
        "1.12345678",
        "abc",
        "NaN",
        "Infinity",
        "1e21",
        "10000000000000",
        "922337203685.4775808",
        "1e-30",
    ],
)
def test_bad_amounts_are_refused_before_pi_is_called(
    a2u: SandboxHandle, pioneer: str, amount: str
) -> None:
    with pytest.raises(InvalidRequest):
        services.send_payment(pioneer, amount, "x")
    assert a2u.calls() == []


@pytest.mark.parametrize(
    ("uid", "memo", "metadata", "message"),
    [
        (None, "x", None, "^uid must be a string"),
        ("", "x", None, "^uid must not be empty"),
        ("PIONEER", None, None, "^memo must be a string"),
        ("PIONEER", 42, None, "^memo must be a string"),
        ("PIONEER", "x", ["a", "b"], "metadata"),
        ("PIONEER", "x", {"total": Decimal("1.5")}, "metadata"),
        ("PIONEER", "x", {"ratio": float("nan")}, "metadata"),
        ("PIONEER", "x", {"when": object()}, "metadata"),
    ],
)
def test_bad_uid_memo_or_metadata_are_refused_before_pi_is_called(
    a2u: SandboxHandle, pioneer: str, uid: Any, memo: Any, metadata: Any, message: str
) -> None:
    uid = pioneer if uid == "PIONEER" else uid
    with pytest.raises(InvalidRequest, match=message):
        services.send_payment(uid, "1", memo, metadata)
    assert a2u.calls() == []
    assert not Payment.objects.exists()


def test_the_transaction_check_takes_no_lock_outside_a_transaction(
    a2u: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite takes a lock to begin a transaction")
    monkeypatch.setattr(connection, "transaction_mode", "IMMEDIATE")  # as the example project's
    with lock_held_elsewhere("any"):  # another writer holds SQLite's write lock
        a2u_service._check_outside_transactions()  # neither waits for it nor fails


def test_metadata_naming_a_refunded_payment_needs_refund_of(
    a2u: SandboxHandle, pioneer: str
) -> None:
    # Stored with it, a plain payout would be linked as a refund of that payment, unchecked.
    with pytest.raises(InvalidRequest, match="refund_of"):
        services.send_payment(pioneer, "1", "prize", {"refund_of": "SOMEPAYMENT"})
    assert a2u.calls() == []
    assert not Payment.objects.exists()


class RolledBack(Exception):
    """The caller's code fails after the send, in the caller's transaction."""


def test_a_send_inside_a_transaction_of_the_caller_is_refused(
    a2u: SandboxHandle, pioneer: str
) -> None:
    # Were it sent, its records would roll back with the caller's transaction: the payout paid
    # and completed at Pi, unknown here, and paid again by the caller's retry.
    with pytest.raises(RolledBack), transaction.atomic():
        with pytest.raises(services.A2UError) as failure:
            services.send_payment(pioneer, "1", "prize")
        raise RolledBack

    assert failure.value.code == "in_transaction"
    assert failure.value.payment is None
    assert "transaction.atomic" in failure.value.detail
    assert a2u.calls() == [] and a2u.ledger() == []


def test_amounts_beyond_what_a_payment_on_the_chain_carries_are_refused() -> None:
    assert checked_amount("922337203685.4775") == Decimal("922337203685.4775")
    with pytest.raises(
        InvalidRequest, match=r"^The amount must be at most 922337203685\.4775807 Pi\.$"
    ):
        checked_amount("922337203685.4775808")


@pytest.mark.parametrize(
    ("amount", "reaching_pi"),
    [("9876543210.1234567", "9876543210.123457"), ("922337203685.4775807", "922337203685.4775")],
)
def test_an_amount_pi_cannot_hold_digit_for_digit_is_refused_before_pi_is_called(
    a2u: SandboxHandle, pioneer: str, amount: str, reaching_pi: str
) -> None:
    # Pi's API takes the amount as a JSON number, a double: the payout would pay another amount.
    with pytest.raises(
        InvalidRequest, match=re.escape(f"{amount} would reach Pi as {reaching_pi}")
    ):
        services.send_payment(pioneer, amount, "x")
    assert a2u.calls() == []
    assert checked_amount("123456789.1234567") == Decimal("123456789.1234567")


def test_metadata_nested_deeper_than_pi_answers_are_read_is_refused_before_pi_is_called(
    a2u: SandboxHandle, pioneer: str
) -> None:
    deep: dict[str, object] = {}
    for _level in range(MAX_NESTING - 2):
        deep = {"a": deep}
    paid = services.send_payment(pioneer, "1", "x", deep)  # 63 levels, 64 in Pi's answer
    assert (paid.status, paid.metadata) == (PaymentStatus.COMPLETED, deep)
    a2u.clear_calls()
    with pytest.raises(InvalidRequest, match="more than 63 levels deep"):
        services.send_payment(pioneer, "1", "x", {"a": deep})
    assert a2u.calls() == []
    as_tuples: tuple[object, ...] = ()
    for _level in range(100):  # JSON writes tuples as lists
        as_tuples = (as_tuples,)
    very_deep: list[object] = []
    for _level in range(5000):  # deeper than json.dumps recurses
        very_deep = [very_deep]
    for metadata in ({"a": as_tuples}, {"a": very_deep}):
        with pytest.raises(InvalidRequest, match="more than 63 levels deep"):
            services.send_payment(pioneer, "1", "x", metadata)
    assert a2u.calls() == []


def test_missing_seed_is_reported_before_anything_is_created(
    a2u: SandboxHandle, pioneer: str, settings: Any
) -> None:
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "WALLET_PRIVATE_SEED": None}
    with pytest.raises(services.A2UError) as failure:
        services.send_payment(pioneer, "1", "x")
    assert failure.value.code == "wallet_not_configured"
    assert "WALLET_PRIVATE_SEED" in failure.value.detail
    assert a2u.calls() == []


def test_an_invalid_seed_is_never_shown(a2u: SandboxHandle, pioneer: str, settings: Any) -> None:
    seed = Keypair.random().secret
    broken = seed[:-1] + ("A" if seed[-1] != "A" else "B")
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "WALLET_PRIVATE_SEED": broken}
    with pytest.raises(services.A2UError) as failure:
        services.send_payment(pioneer, "1", "x")
    assert failure.value.code == "wallet_not_configured"
    chain: list[BaseException] = []
    error: BaseException | None = failure.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert all(broken not in f"{error!s} {error!r}" for error in chain)


def test_a_too_short_resume_timeout_is_refused(
    a2u: SandboxHandle, pioneer: str, settings: Any
) -> None:
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "A2U_RESUME_TIMEOUT": 30}
    with pytest.raises(services.A2UError) as failure:
        services.send_payment(pioneer, "1", "x")
    assert failure.value.code == "improperly_configured"
    assert a2u.calls() == []


def test_a_payment_from_another_wallet_is_never_paid_and_cancelled_after_its_deadline(
    a2u: SandboxHandle, pioneer: str, settings: Any, signal_log: SignalLog
) -> None:
    other = Keypair.random()  # the app wallet Pi knows, not WALLET_PRIVATE_SEED's
    a2u.add_account(other.public_key, balance=APP_WALLET_BALANCE)
    a2u.set_config(app_wallet_address=other.public_key)

    with pytest.raises(services.A2UError) as failure:
        services.send_payment(pioneer, "1", "x")

    # A transaction signed with an earlier seed of that wallet could still land until the
    # deadline: it waits, in flight, and is never paid.
    assert failure.value.code == "wallet_mismatch"
    assert "it is never paid, even once the seed is that wallet's" in failure.value.detail
    payment = failure.value.payment
    assert payment is not None
    assert Payment.objects.get(pk=payment.pk).status == S.APPROVED
    assert a2u.payment(payment.identifier)["status"]["cancelled"] is False

    # The seed is fixed before the deadline; the host, told the payout was not paid, retries.
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "WALLET_PRIVATE_SEED": other.secret}
    with pytest.raises(services.A2UBusy) as busy:
        services.send_payment(pioneer, "1", "x")
    assert busy.value.detail.startswith(
        f"The app-to-user payment {payment.identifier} in flight could not be finished (The "
        "payment is from "
    )
    assert busy.value.detail.endswith("UTC)); pi_reconcile will finish it. Try again later.")
    assert a2u.ledger() == []
    assert signal_log.received == []

    backdate(payment, PAST_THE_DEADLINE)
    with pytest.raises(services.A2UError):
        services.resume_a2u(payment.identifier, source="reconcile")

    assert Payment.objects.get(pk=payment.pk).status == S.CANCELLED
    assert a2u.payment(payment.identifier)["status"]["cancelled"] is True
    assert kinds(payment.identifier).count("a2u_wallet_refused") == 1
    retried = services.send_payment(pioneer, "1", "x")
    assert retried.status == S.COMPLETED
    assert [tx["memo"] for tx in a2u.ledger()] == [retried.identifier]
    assert signal_log.received == [
        ("cancelled", payment.identifier),
        ("completed", retried.identifier),
    ]


def test_an_unfinished_payout_of_another_network_does_not_block_payouts(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    crash_after(monkeypatch, a2u_service, "_create")
    with pytest.raises(Crash):
        services.send_payment(pioneer, "1", "x")
    left = Payment.objects.get(direction=Direction.APP_TO_USER)
    # Stored while the site was another Pi app, on the other network: this app's Pi (the sandbox,
    # once it no longer holds it) does not know it.
    Payment.objects.filter(pk=left.pk).update(network="Pi Network")
    get_client().cancel_payment(left.identifier)

    payout = services.send_payment(pioneer, "2", "y")

    assert payout.status == S.COMPLETED
    assert Payment.objects.get(pk=left.pk).status == S.APPROVED  # left to that network's app
    assert signal_log.received == [("completed", payout.identifier)]


def test_a_payout_signed_before_the_seed_changed_is_not_cancelled_before_its_deadline(
    a2u: SandboxHandle,
    pioneer: str,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    signal_log: SignalLog,
) -> None:
    # Signed with the former seed, then the process died before the submission's answer; the
    # seed was changed since. The transaction may still land: cancelling would hide a payout.
    signed = crash_after(monkeypatch, Wallet, "sign_payment")
    with pytest.raises(Crash):
        services.send_payment(pioneer, "1", "x")
    payment = Payment.objects.get(direction=Direction.APP_TO_USER)
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "WALLET_PRIVATE_SEED": Keypair.random().secret}

    with pytest.raises(services.A2UError) as refused:
        services.resume_a2u(payment.identifier, source="reconcile")

    assert refused.value.code == "wallet_mismatch"
    assert Payment.objects.get(pk=payment.pk).status == S.APPROVED
    assert a2u.payment(payment.identifier)["status"]["cancelled"] is False

    get_wallet_horizon().submit(signed[0].envelope_xdr)  # the earlier submission lands late
    settled = services.resume_a2u(payment.identifier, source="reconcile")

    assert (settled.status, settled.txid) == (S.COMPLETED, signed[0].txid)
    assert signal_log.received == [("completed", payment.identifier)]


@pytest.mark.parametrize("differs", ["amount", "uid"])
def test_a_payment_pi_created_unlike_the_request_is_cancelled_not_paid(
    a2u: SandboxHandle, pioneer: str, signal_log: SignalLog, differs: str
) -> None:
    # Pi (or whatever API_BASE_URL reaches) answers the creation with another payment: a larger
    # amount, or another Pioneer. Paying it would pay what nobody asked for.
    other = a2u.create_user(username="someone else")["uid"]
    uid, amount = (pioneer, Decimal(100)) if differs == "amount" else (other, Decimal(1))
    answered = get_client().create_payment(uid, amount, "prize", {})
    a2u.add_fault("create_payment", status=200, body=answered.raw)

    with pytest.raises(services.A2UError) as failure:
        services.send_payment(pioneer, "1", "prize")

    assert failure.value.code == "not_as_requested"
    assert "not the one requested" in failure.value.detail
    payment = failure.value.payment
    assert payment is not None and payment.identifier == answered.identifier
    assert Payment.objects.get(pk=payment.pk).status == S.CANCELLED
    assert a2u.payment(payment.identifier)["status"]["cancelled"] is True
    assert a2u.ledger() == []
    assert kinds(payment.identifier) == ["a2u_unrequested", "cancelled"]
    assert signal_log.received == [("cancelled", payment.identifier)]
    a2u.clear_faults()
    assert services.send_payment(pioneer, "1", "prize").status == S.COMPLETED


def test_ongoing_payment_at_pi_is_finished_first(
    a2u: SandboxHandle, pioneer: str, signal_log: SignalLog
) -> None:
    # An A2U created at Pi by another program (or lost by a crash before it was stored here).
    foreign = get_client().create_payment(pioneer, Decimal("2"), "foreign", {})
    a2u.clear_calls()

    payment = services.send_payment(pioneer, "1", "ours")

    adopted = Payment.objects.get(identifier=foreign.identifier)
    assert adopted.status == S.COMPLETED
    assert kinds(foreign.identifier) == ["a2u_adopted", "a2u_submitted", "completed"]
    assert payment.status == S.COMPLETED
    assert adopted.completed_at is not None and payment.created_at > adopted.completed_at
    created = [call["status"] for call in a2u.calls("create_payment")]
    assert created == [400, 200]  # ongoing_payment_found, then created once
    assert len(ledger_for(a2u, foreign.identifier)) == 1
    assert len(ledger_for(a2u, payment.identifier)) == 1
    assert signal_log.by_name() == {"completed": 2}


def test_a_stored_payment_in_flight_is_finished_before_the_next_is_created(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    crash_after(monkeypatch, WalletHorizon, "submit")
    with pytest.raises(Crash):
        services.send_payment(pioneer, "1", "first")
    (first,) = Payment.objects.all()
    assert first.txid is None and len(ledger_for(a2u, first.identifier)) == 1
    a2u.clear_calls()

    second = services.send_payment(pioneer, "2", "second")

    first.refresh_from_db()
    assert first.status == S.COMPLETED
    assert kinds(first.identifier) == ["a2u_created", "a2u_tx_found", "completed"]
    assert len(ledger_for(a2u, first.identifier)) == 1  # found on the chain, not paid again
    assert second.status == S.COMPLETED
    assert [call["status"] for call in a2u.calls("create_payment")] == [200]
    assert len(a2u.ledger()) == 2


def test_a_lost_answer_to_the_submission_does_not_pay_twice(
    a2u: SandboxHandle, pioneer: str
) -> None:
    a2u.add_fault("horizon_submit", after="respond")  # on the ledger, then the answer is lost

    payment = services.send_payment(pioneer, "1", "x")

    assert payment.status == S.COMPLETED
    assert kinds(payment.identifier) == ["a2u_created", "a2u_tx_found", "completed"]
    assert len(a2u.ledger()) == 1


def test_a_refused_submission_is_audited_and_left_for_pi_reconcile(
    a2u: SandboxHandle, pioneer: str
) -> None:
    refusal = {
        "type": "https://stellar.org/horizon-errors/transaction_failed",
        "title": "Transaction Failed",
        "status": 400,
        "extras": {"result_codes": {"transaction": "tx_insufficient_balance"}},
    }
    a2u.add_fault("horizon_submit", status=400, body=refusal)

    with pytest.raises(services.A2UError) as failure:
        services.send_payment(pioneer, "1", "x")

    assert failure.value.code == "tx_insufficient_balance"
    payment = failure.value.payment
    assert payment is not None and failure.value.payment.identifier in failure.value.detail
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.txid) == (S.APPROVED, None)
    assert kinds(payment.identifier) == ["a2u_created", "a2u_failed"]
    assert a2u.ledger() == []
    assert services.resume_a2u(payment.identifier, source="reconcile").status == S.COMPLETED
    assert len(a2u.ledger()) == 1


def test_horizon_down_fails_without_paying(a2u: SandboxHandle, pioneer: str) -> None:
    a2u.add_fault("horizon_account", status=503, count=None)

    with pytest.raises(services.A2UError) as failure:
        services.send_payment(pioneer, "1", "x")

    assert failure.value.code == "horizon_unavailable"
    assert a2u.ledger() == []
    a2u.clear_faults()
    payment = failure.value.payment
    assert payment is not None
    assert services.resume_a2u(payment.identifier, source="reconcile").status == S.COMPLETED


def test_a_lost_answer_to_complete_counts_when_pi_shows_it(
    a2u: SandboxHandle, pioneer: str, signal_log: SignalLog
) -> None:
    a2u.add_fault("complete", after="respond")

    payment = services.send_payment(pioneer, "1", "x")

    assert payment.status == S.COMPLETED
    assert signal_log.received == [("completed", payment.identifier)]


def test_a_lost_answer_to_the_creation_is_found_in_pi_incomplete_list(
    a2u: SandboxHandle, pioneer: str
) -> None:
    a2u.add_fault("create_payment", after="respond")

    payment = services.send_payment(pioneer, "1.25", "x", {"k": "v"})

    assert payment.status == S.COMPLETED
    assert len(a2u.payments()) == 1
    assert len(a2u.ledger()) == 1


def test_pi_rate_limiting_the_creation_created_nothing(a2u: SandboxHandle, pioneer: str) -> None:
    """A 429 refuses before acting: not "Pi may have created it", even when the list of payments
    in flight cannot be read either."""
    a2u.add_fault("create_payment", status=429, body={"error": "too_many_requests"})
    a2u.add_fault("incomplete_server_payments", status=429, count=None)

    with pytest.raises(PiUnreachable) as failure:
        services.send_payment(pioneer, "1.25", "prize")

    assert failure.value.code == "pi_unavailable"
    assert a2u.calls("incomplete_server_payments") == []
    assert not Payment.objects.exists() and a2u.payments() == []


def test_a_lost_creation_during_a_pi_outage_then_a_retry_pays_once(
    a2u: SandboxHandle, pioneer: str, signal_log: SignalLog
) -> None:
    a2u.add_fault("create_payment", after="respond")  # Pi creates it; the answer is lost
    a2u.add_fault("incomplete_server_payments", status=503, count=None)  # nor can it be read

    with pytest.raises(services.A2UError) as failure:
        services.send_payment(pioneer, "1.25", "prize", {"k": "v"})

    assert failure.value.code == "a2u_creation_unknown"
    assert failure.value.payment is None
    assert "may have created" in failure.value.detail
    assert not Payment.objects.exists()
    a2u.clear_faults()

    payment = services.send_payment(pioneer, "1.25", "prize", {"k": "v"})  # the caller retries

    assert payment.status == S.COMPLETED
    assert [p["identifier"] for p in a2u.payments()] == [payment.identifier]
    # the lost answer, then ongoing_payment_found with it: never a second creation
    assert [call["status"] for call in a2u.calls("create_payment")] == [None, 400]
    assert len(a2u.ledger()) == 1
    assert kinds(payment.identifier) == [
        "a2u_adopted",
        "a2u_taken_over",
        "a2u_submitted",
        "completed",
    ]
    assert signal_log.received == [("completed", payment.identifier)]


def test_a_retry_with_metadata_json_writes_differently_pays_once(
    a2u: SandboxHandle, pioneer: str
) -> None:
    request = (pioneer, "1.25", "prize", {"round": (1, 2), 7: "seven"})  # JSON: a list, a "7" key
    a2u.add_fault("create_payment", after="respond")
    a2u.add_fault("incomplete_server_payments", status=503, count=None)
    with pytest.raises(services.A2UError):
        services.send_payment(*request)
    a2u.clear_faults()

    payment = services.send_payment(*request)  # the caller retries with the same values

    assert payment.metadata == {"round": [1, 2], "7": "seven"}
    assert [p["identifier"] for p in a2u.payments()] == [payment.identifier]
    assert len(a2u.ledger()) == 1


def test_a_crash_between_creation_and_storing_then_a_retry_pays_once(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_after(monkeypatch, PiClient, "create_payment")
    with pytest.raises(Crash):
        services.send_payment(pioneer, "2", "prize", {"n": 1})
    assert not Payment.objects.exists() and len(a2u.payments()) == 1

    payment = services.send_payment(pioneer, "2", "prize", {"n": 1})

    assert payment.status == S.COMPLETED
    assert len(a2u.payments()) == 1 and len(a2u.ledger()) == 1


def test_a_retry_after_pi_reconcile_paid_the_lost_creation_is_not_paid_again(
    a2u: SandboxHandle, pioneer: str, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    crash_after(monkeypatch, PiClient, "create_payment")
    with pytest.raises(Crash):
        services.send_payment(pioneer, "2", "prize", {"n": 1})
    call_command("pi_reconcile", "--older-than", "0", stdout=io.StringIO())
    (orphan,) = Payment.objects.all()
    assert orphan.status == S.COMPLETED and len(a2u.ledger()) == 1

    payment = services.send_payment(pioneer, "2", "prize", {"n": 1})

    assert payment == orphan and payment.status == S.COMPLETED
    assert len(a2u.payments()) == 1 and len(a2u.ledger()) == 1
    assert signal_log.received == [("completed", orphan.identifier)]
    other = services.send_payment(pioneer, "2", "prize", {"n": 1})  # a new send is a new payout
    assert other != orphan and len(a2u.ledger()) == 2
