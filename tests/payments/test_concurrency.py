"""Racing callbacks on a real PostgreSQL server: one completion, one event, one signal."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from django_pi_payments import services
from django_pi_payments.exceptions import IllegalTransition, PiRefused
from django_pi_payments.models import Payment, PaymentEvent
from django_pi_payments.reconcile import reconcile

pytestmark = pytest.mark.postgres

THREADS = 16


@pytest.fixture
def postgres(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("row-lock races need PostgreSQL: run with DATABASE_URL (make test-postgres)")


def test_sixteen_concurrent_completes(postgres, pi_settings_for_sandbox, pi_sandbox, signal_log):
    user, token = pi_sandbox.login(username="racer")
    identifier = pi_sandbox.create_payment(user["uid"], "7.5", memo="race")["identifier"]
    api = APIClient()
    approve = api.post(
        "/pi_payment/approve", {"paymentId": identifier, "accessToken": token}, format="json"
    )
    assert approve.status_code == 200
    txid = pi_sandbox.submit_transaction(identifier)["txid"]
    pi_sandbox.clear_calls()
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []

    def complete() -> None:
        client = APIClient()
        barrier.wait()
        try:
            response = client.post(
                "/pi_payment/complete",
                {"paymentId": identifier, "transactionId": txid},
                format="json",
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=complete) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * THREADS
    assert signal_log.count("completed", identifier) == 1
    completed_events = PaymentEvent.objects.filter(payment__identifier=identifier, kind="completed")
    assert completed_events.count() == 1
    accepted = [c for c in pi_sandbox.calls("complete") if c["status"] == 200]
    assert len(accepted) == 1


def race(requests: list[tuple[str, dict[str, object]]]) -> list[int]:
    """POST every ``(route, body)`` at once, each from its own thread; the statuses."""
    barrier = threading.Barrier(len(requests))
    statuses: list[int] = []

    def post(route: str, body: dict[str, object]) -> None:
        client = APIClient()
        barrier.wait()
        try:
            statuses.append(client.post(f"/pi_payment/{route}", body, format="json").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_concurrent_approves(postgres, pi_settings_for_sandbox, pi_sandbox, signal_log):
    user, token = pi_sandbox.login(username="racer")
    identifier = pi_sandbox.create_payment(user["uid"], "2", memo="race")["identifier"]
    body = {"paymentId": identifier, "accessToken": token}
    assert race([("approve", body)] * 8) == [200] * 8
    assert signal_log.count("approved", identifier) == 1
    events = PaymentEvent.objects.filter(payment__identifier=identifier)
    assert [event.kind for event in events] == ["approved"]
    assert [c["status"] for c in pi_sandbox.calls("approve")] == [200]


def test_every_callback_racing_to_the_same_end(
    postgres, pi_settings_for_sandbox, pi_sandbox, signal_log
):
    user, token = pi_sandbox.login(username="racer")
    identifier = pi_sandbox.create_payment(user["uid"], "2", memo="race")["identifier"]
    approve = {"paymentId": identifier, "accessToken": token}
    assert race([("approve", approve)]) == [200]
    txid = pi_sandbox.submit_transaction(identifier)["txid"]
    with_tx = {"paymentId": identifier, "transactionId": txid}
    only_id = {"paymentId": identifier}
    requests: list[tuple[str, dict[str, object]]] = [
        ("complete", with_tx),
        ("incomplete", with_tx),
        ("cancel", only_id),
        ("error", {**only_id, "error": "closed"}),
        ("approve", approve),
    ] * 3
    assert race(requests) == [200] * len(requests)
    assert signal_log.count("completed", identifier) == 1
    assert signal_log.count("approved", identifier) == 1
    # One event per transition, each from where the last one left the payment (a sync may
    # have seen the verified transaction first); none of them a conflict.
    events = PaymentEvent.objects.filter(payment__identifier=identifier).order_by("id")
    moves = [(e.from_status, e.to_status) for e in events if e.kind != "frontend_error"]
    assert [to for _from, to in moves][-1] == "completed"
    assert all(to == after for (_f, to), (after, _t) in pairwise(moves))
    assert len({to for _from, to in moves}) == len(moves)
    assert not events.filter(kind="sync_conflict").exists()


def test_callbacks_admin_cancels_syncs_and_reconcile_runs_racing(
    postgres, flow, pi_sandbox, signal_log
):
    """Paid and unpaid payments, each completed, cancelled (as the admin does), synced and
    reconciled (``--cancel-unpaid``) from six threads at once: each ends final, here as at Pi,
    with the one signal of its final status."""
    paid = [flow.for_new_shopper(f"payer{n}").paid() for n in range(3)]
    unpaid = [flow.for_new_shopper(f"walker{n}").approved() for n in range(3)]
    identifiers = [identifier for identifier, _txid in paid] + unpaid
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def completes() -> None:
        client = APIClient()
        for identifier, txid in paid:
            body = {"paymentId": identifier, "transactionId": txid}
            response = client.post("/pi_payment/complete", body, format="json")
            assert response.status_code in (200, 409), response.json()  # 409: cancelled first

    def cancels() -> None:
        for identifier in identifiers:
            with contextlib.suppress(IllegalTransition, PiRefused):  # final, or paid at Pi
                services.cancel(identifier)

    def syncs() -> None:
        for identifier in identifiers:
            services.sync(identifier)

    def reconciles() -> None:
        reconcile(older_than=timedelta(0), cancel_unpaid=True, workers=4)

    def run(work: Callable[[], None]) -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # reported by the test
            failures.append(exc)
        finally:
            connections.close_all()

    works = (completes, completes, cancels, syncs, reconciles, reconciles)
    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    reconcile(older_than=timedelta(0), cancel_unpaid=True, workers=4)

    for identifier in identifiers:
        payment = Payment.objects.get(identifier=identifier)
        at_pi = pi_sandbox.payment(identifier)["status"]
        assert payment.is_final, payment.status
        assert at_pi["developer_completed"] == (payment.status == "completed")
        assert signal_log.count("completed", identifier) == (payment.status == "completed")
        assert signal_log.count("cancelled", identifier) == (payment.status != "completed")
        assert not PaymentEvent.objects.filter(payment=payment, kind="sync_conflict").exists()
    assert {Payment.objects.get(identifier=i).status for i, _txid in paid} == {"completed"}
