"""``services.refund``: a refund is an A2U payment to the payer, never more than paid in total."""

from __future__ import annotations

import io
import logging
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from django_pi_payments import services, signals
from django_pi_payments.client import PiClient, get_client
from django_pi_payments.exceptions import InvalidRequest, PaymentError
from django_pi_payments.models import Payment, PaymentEvent, PaymentStatus
from django_pi_payments.services import a2u as a2u_service
from django_pi_payments.services.core import lock_or_create
from django_pi_payments.testing import SandboxHandle
from tests.admin.conftest import PaymentMaker

from .conftest import Crash, SignalLog, crash_after, ledger_for

S = PaymentStatus


@pytest.fixture
def make(a2u: SandboxHandle) -> PaymentMaker:
    return PaymentMaker(a2u)


@pytest.fixture
def paid(make: PaymentMaker) -> Payment:
    """A completed user-to-app payment of 3.14 Pi."""
    return make.completed()


def refunded_total(payment: Payment) -> Decimal:
    return sum((r.amount for r in payment.refunds.filter(status=S.COMPLETED)), Decimal(0))


def test_a_full_refund_pays_the_payer_back(
    a2u: SandboxHandle, paid: Payment, signal_log: SignalLog
) -> None:
    refund = services.refund(paid)

    assert refund.status == S.COMPLETED
    assert refund.direction == "app_to_user"
    assert refund.refund_of == paid
    assert refund.amount == paid.amount == Decimal("3.14")
    assert (refund.user_uid, refund.to_address) == (paid.user_uid, paid.from_address)
    assert refund.metadata == {"refund_of": paid.identifier}
    assert refund.memo == f"Refund of payment {paid.identifier}"
    assert [tx["amount"] for tx in ledger_for(a2u, refund.identifier)] == [Decimal("3.14")]
    assert services.refundable_amount(paid) == 0
    event = PaymentEvent.objects.get(payment=paid, kind="refund_created")
    assert event.detail == {"refund": refund.identifier, "amount": "3.14"}
    assert sorted(signal_log.received) == [
        ("completed", refund.identifier),
        ("refunded", refund.identifier),
    ]
    (refunded,) = [kwargs for kwargs in signal_log.kwargs if kwargs["name"] == "refunded"]
    assert refunded["payment"] == refund and refunded["original"] == paid


def test_partial_refunds_add_up_to_the_amount_at_most(a2u: SandboxHandle, paid: Payment) -> None:
    services.refund(paid, "1")
    services.refund(paid, Decimal("1.5"))
    assert services.refundable_amount(paid) == Decimal("0.64")

    with pytest.raises(services.RefundRefused) as failure:
        services.refund(paid, "0.65")
    assert failure.value.code == "refund_exceeds_payment"

    rest = services.refund(paid)  # all that is left
    assert rest.amount == Decimal("0.64")
    assert refunded_total(paid) == paid.amount
    with pytest.raises(services.RefundRefused) as failure:
        services.refund(paid, "0.0000001")
    assert failure.value.code == "fully_refunded"
    assert len(a2u.ledger()) == 1 + 3  # the payment itself, then three refunds


def test_a_refund_of_all_that_is_left_pi_cannot_take_digit_for_digit_is_refused(
    a2u: SandboxHandle, paid: Payment
) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite stores decimals as doubles: it cannot hold such an amount either")
    Payment.objects.filter(pk=paid.pk).update(amount=Decimal("9876543210.1234567"))
    a2u.clear_calls()
    with pytest.raises(InvalidRequest, match=r"would reach Pi as 9876543210\.123457"):
        services.refund(paid)
    assert a2u.calls() == [] and not paid.refunds.exists()


def test_a_refund_over_the_amount_is_refused_before_pi_is_called(
    a2u: SandboxHandle, paid: Payment
) -> None:
    a2u.clear_calls()
    with pytest.raises(services.RefundRefused) as failure:
        services.refund(paid, "3.1400001")
    assert failure.value.code == "refund_exceeds_payment"
    assert a2u.calls() == []
    assert not paid.refunds.exists()


def test_a_refund_inside_a_transaction_of_the_caller_is_refused(
    a2u: SandboxHandle, paid: Payment
) -> None:
    ledger = a2u.ledger()
    with transaction.atomic(), pytest.raises(services.A2UError) as failure:
        services.refund(paid)
    assert failure.value.code == "in_transaction"
    assert not paid.refunds.exists() and a2u.ledger() == ledger


@pytest.mark.parametrize("state", ["approved", "user_cancelled"])
def test_only_completed_user_to_app_payments_are_refundable(
    a2u: SandboxHandle, make: PaymentMaker, state: str
) -> None:
    payment = getattr(make, state)()
    with pytest.raises(services.RefundRefused) as failure:
        services.refund(payment)
    assert failure.value.code == "not_refundable"


def test_a_refund_is_not_refundable(a2u: SandboxHandle, paid: Payment) -> None:
    refund = services.refund(paid, "1")
    with pytest.raises(services.RefundRefused):
        services.refund(refund)


def test_send_payment_with_refund_of_applies_the_same_rules(
    a2u: SandboxHandle, paid: Payment, pioneer: str
) -> None:
    with pytest.raises(InvalidRequest):
        services.send_payment(pioneer, "1", "not the payer", refund_of=paid)
    with pytest.raises(services.RefundRefused):
        services.send_payment(paid.user_uid, "5", "too much", refund_of=paid)
    refund = services.send_payment(paid.user_uid, "1", "sorry", {"order": 7}, refund_of=paid)
    assert refund.refund_of == paid and refund.memo == "sorry"
    # Named in its metadata, as refund() names it, so pi_reconcile links it again were it lost.
    assert refund.metadata == {"order": 7, "refund_of": paid.identifier}


def test_a_cancelled_refund_does_not_count(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_after(monkeypatch, a2u_service, "_create")
    with pytest.raises(Crash):
        services.refund(paid)
    refund = paid.refunds.get()
    with pytest.raises(PaymentError):  # in flight: counted until it is settled
        services.refund(paid, "3.14", source="admin")
    past_the_deadline = timezone.now() - timedelta(seconds=600 + 61)
    Payment.objects.filter(pk=refund.pk).update(
        created_at=past_the_deadline, pi_created_at=past_the_deadline
    )
    services.cancel(refund.identifier)

    again = services.refund(paid)

    assert again.amount == paid.amount
    assert services.refundable_amount(paid) == 0


def test_payment_refunded_is_sent_once_when_pi_reconcile_completes_the_refund(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch, signal_log: SignalLog
) -> None:
    crash_after(monkeypatch, PiClient, "complete_payment")
    with pytest.raises(Crash):
        services.refund(paid, "2")
    refund = paid.refunds.get()
    signal_log.received.clear()

    call_command("pi_reconcile", "--older-than", "0", stdout=io.StringIO())
    call_command("pi_reconcile", "--older-than", "0", stdout=io.StringIO())

    assert sorted(signal_log.received) == [
        ("completed", refund.identifier),
        ("refunded", refund.identifier),
    ]
    (refunded,) = [kwargs for kwargs in signal_log.kwargs if kwargs["name"] == "refunded"]
    assert refunded["original"] == paid


def test_a_refund_first_stored_by_a_callback_is_still_linked_and_counted(
    a2u: SandboxHandle, paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_after(monkeypatch, PiClient, "create_payment")  # created at Pi, never stored here
    with pytest.raises(Crash):
        services.refund(paid)
    (at_pi,) = [p for p in a2u.payments() if p["direction"] == "app_to_user"]
    # Stored first without its link, as the callbacks of earlier versions stored a payout.
    with transaction.atomic():
        lock_or_create(get_client().get_payment(at_pi["identifier"]))
    assert Payment.objects.filter(identifier=at_pi["identifier"]).exists()
    assert not paid.refunds.exists()

    refund = services.resume_a2u(at_pi["identifier"], source="reconcile")

    assert refund.status == S.COMPLETED
    assert Payment.objects.get(pk=refund.pk).refund_of == paid
    assert services.refundable_amount(paid) == 0
    with pytest.raises(services.RefundRefused) as failure:
        services.refund(paid)
    assert failure.value.code == "fully_refunded"
    assert len(a2u.ledger()) == 1 + 1
    assert PaymentEvent.objects.filter(payment=refund, kind="refund_linked").count() == 1


@pytest.fixture
def postgres(transactional_db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock races need PostgreSQL: run with DATABASE_URL (make test-postgres)")


def race(threads: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(threads)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(work())
        except PaymentError as error:
            results.append(error)
        finally:
            connections.close_all()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return results


@pytest.mark.postgres
def test_two_concurrent_refunds_never_exceed_the_payment(
    postgres: None, a2u: SandboxHandle, paid: Payment, signal_log: SignalLog
) -> None:
    results = race(2, lambda: services.refund(paid, "2"))

    refunds = [result for result in results if isinstance(result, Payment)]
    refused = [result for result in results if isinstance(result, services.RefundRefused)]
    assert (len(refunds), len(refused)) == (1, 1), results
    assert refused[0].code == "refund_exceeds_payment"
    assert refunded_total(paid) == Decimal("2")
    assert [c["status"] for c in a2u.calls("create_payment")] == [200]
    assert len(ledger_for(a2u, refunds[0].identifier)) == 1
    assert signal_log.count("refunded") == 1


@pytest.mark.postgres
def test_many_concurrent_partial_refunds_stop_at_the_amount(
    postgres: None, a2u: SandboxHandle, paid: Payment
) -> None:
    results = race(5, lambda: services.refund(paid, "1"))

    assert sum(isinstance(result, Payment) for result in results) == 3, results
    assert refunded_total(paid) == Decimal("3")
    assert Payment.objects.filter(refund_of=paid).count() == 3
    assert all(c["status"] == 200 for c in a2u.calls("create_payment"))
    assert len(a2u.ledger()) == 1 + 3


def lose_a_refund_creation(
    a2u: SandboxHandle, paid: Payment
) -> tuple[str, str, str, dict[str, Any]]:
    """Refund 1 Pi of ``paid`` while Pi creates the refund but its answer, and its list of
    payments in flight, are lost; return the send's arguments, for the caller's retry."""
    a2u.add_fault("create_payment", after="respond")
    a2u.add_fault("incomplete_server_payments", status=503, count=None)
    request = (paid.user_uid, "1", "part of your order back", {"order": 7})
    with pytest.raises(services.A2UError):
        services.send_payment(*request, refund_of=paid)
    a2u.clear_faults()
    return request


def test_a_refund_taken_over_after_a_lost_creation_is_linked_and_counted(
    a2u: SandboxHandle, paid: Payment
) -> None:
    request = lose_a_refund_creation(a2u, paid)

    refund = services.send_payment(*request, refund_of=paid)  # the caller retries

    assert refund.status == S.COMPLETED
    assert Payment.objects.get(pk=refund.pk).refund_of == paid
    assert services.refundable_amount(paid) == paid.amount - 1
    assert len([p for p in a2u.payments() if p["direction"] == "app_to_user"]) == 1


def test_a_refund_pi_reconcile_paid_before_the_retry_took_it_over_is_announced_once(
    a2u: SandboxHandle, paid: Payment, signal_log: SignalLog
) -> None:
    request = lose_a_refund_creation(a2u, paid)
    signal_log.received.clear()
    call_command("pi_reconcile", "--older-than", "0", stdout=io.StringIO())
    # Its metadata names the refunded payment: pi_reconcile links it as it pays it.
    (paid_back,) = Payment.objects.filter(refund_of=paid)
    assert sorted(signal_log.received) == [
        ("completed", paid_back.identifier),
        ("refunded", paid_back.identifier),
    ]

    refund = services.send_payment(*request, refund_of=paid)  # the caller retries

    assert refund == paid_back and refund.status == S.COMPLETED
    assert signal_log.count("refunded") == 1
    (refunded,) = [kwargs for kwargs in signal_log.kwargs if kwargs["name"] == "refunded"]
    assert refunded["original"] == paid
    assert services.refundable_amount(paid) == paid.amount - 1


def test_a_failing_refunded_receiver_neither_fails_the_refund_nor_the_receivers_after_it(
    paid: Payment, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[tuple[str, str]] = []

    def book(sender: Any, payment: Payment, **kwargs: Any) -> None:
        raise RuntimeError("the refund could not be booked")

    def notify(sender: Any, payment: Payment, original: Payment, **kwargs: Any) -> None:
        heard.append((payment.identifier, original.identifier))

    signals.payment_refunded.connect(book, weak=False)
    signals.payment_refunded.connect(notify, weak=False)
    try:
        with caplog.at_level(logging.ERROR, logger="django_pi_payments.services"):
            refund = services.refund(paid)
    finally:
        signals.payment_refunded.disconnect(book)
        signals.payment_refunded.disconnect(notify)

    assert refund.status == S.COMPLETED
    assert heard == [(refund.identifier, paid.identifier)]
    assert [
        record.getMessage() for record in caplog.records if record.name.endswith("services")
    ] == [
        f"payment {refund.identifier} is completed, but a payment_refunded receiver "
        "(test_a_failing_refunded_receiver_neither_fails_the_refund_nor_the_receivers_after_it"
        ".<locals>.book) raised RuntimeError: the refund could not be booked"
    ]


class PaymentReadsFromReplica:
    """A host's router that sends reads of payments to a read replica ("replica", not set up
    here: any read of it fails, as a stale one would mislead)."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return "replica" if model is Payment else None


def test_the_refund_check_reads_the_refunds_where_they_are_written(
    a2u: SandboxHandle, paid: Payment
) -> None:
    services.refund(paid, "1")

    # A replica lagging behind the first refund would let the second exceed the payment.
    with (
        override_settings(DATABASE_ROUTERS=[PaymentReadsFromReplica()]),
        pytest.raises(services.RefundRefused) as failure,
    ):
        services.refund(paid, "3", expected_left="3.14")

    assert failure.value.code == "refund_changed"
