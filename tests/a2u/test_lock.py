"""The A2U lock serializes sends across processes: a database lock, not a process lock."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from django_pi_payments import services
from django_pi_payments.exceptions import PaymentError
from django_pi_payments.models import A2ULock, Payment, PaymentStatus
from django_pi_payments.services.a2u import take_a2u_lock
from django_pi_payments.testing import SandboxHandle

S = PaymentStatus


@pytest.mark.django_db(transaction=True)
def test_the_lock_row_is_made_on_first_use_and_reused() -> None:
    with transaction.atomic():
        take_a2u_lock()
    with transaction.atomic():
        take_a2u_lock()
    (row,) = A2ULock.objects.all()
    assert row.name == "a2u" and row.taken_at is not None


@pytest.fixture
def postgres(transactional_db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("lock races need PostgreSQL: run with DATABASE_URL (make test-postgres)")


@pytest.mark.postgres
def test_a_second_transaction_waits_for_the_lock(postgres: None) -> None:
    held = threading.Event()
    moments: dict[str, float] = {}

    def holder() -> None:
        try:
            with transaction.atomic():
                take_a2u_lock()
                held.set()
                time.sleep(0.3)
                moments["released"] = time.monotonic()
        finally:
            connections.close_all()

    def waiter() -> None:
        held.wait()
        try:
            with transaction.atomic():
                take_a2u_lock()
                moments["taken"] = time.monotonic()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert moments["taken"] >= moments["released"]


@pytest.mark.postgres
def test_concurrent_sends_are_serialized(postgres: None, a2u: SandboxHandle) -> None:
    uids = [a2u.create_user(username=f"payee{n}")["uid"] for n in range(4)]
    barrier = threading.Barrier(len(uids))
    results: list[Payment | PaymentError] = []

    def send(uid: str) -> None:
        barrier.wait()
        try:
            results.append(services.send_payment(uid, "1", "payout"))
        except PaymentError as error:
            results.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(uid,)) for uid in uids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [getattr(result, "status", result) for result in results] == [S.COMPLETED] * 4
    # Each send waited for the one in flight: Pi never answered ongoing_payment_found.
    assert [call["status"] for call in a2u.calls("create_payment")] == [200] * 4
    assert len(a2u.ledger()) == 4
    assert len({tx["memo"] for tx in a2u.ledger()}) == 4
