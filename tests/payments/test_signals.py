"""What the payment signals promise their receivers, and what a failing receiver cannot undo."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.dispatch import Signal

from django_pi_payments import signals
from django_pi_payments.models import Payment, PaymentStatus

from .conftest import events

S = PaymentStatus


@pytest.fixture
def failing_receiver() -> Iterator[Any]:
    """Connect a receiver that raises to a signal: ``failing_receiver(signal)``."""
    connected: list[tuple[Signal, Any]] = []

    def connect(signal: Signal) -> None:
        def fulfil(sender: Any, payment: Payment, **kwargs: Any) -> None:
            raise RuntimeError("the order could not be fulfilled")

        signal.connect(fulfil, weak=False)
        connected.append((signal, fulfil))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


def test_a_failing_completed_receiver_neither_fails_the_callback_nor_the_others(
    flow, pi_sandbox, signal_log, failing_receiver, caplog
):
    failing_receiver(signals.payment_completed)
    heard_after: list[str] = []

    def after(sender: Any, payment: Payment, **kwargs: Any) -> None:
        heard_after.append(payment.identifier)

    signals.payment_completed.connect(after, weak=False)
    identifier, txid = flow.paid()
    try:
        with caplog.at_level(logging.ERROR, logger="django_pi_payments.services"):
            response = flow.complete(identifier, txid)
    finally:
        signals.payment_completed.disconnect(after)
    # Pi accepted the completion and it is committed: the callback says so.
    assert response.status_code == 200
    assert response.json()["payment"]["status"] == "completed"
    assert Payment.objects.get(identifier=identifier).status == S.COMPLETED
    assert pi_sandbox.payment(identifier)["status"]["developer_completed"] is True
    # Every receiver heard it, even those after the failing one, and the failure is logged.
    assert signal_log.count("completed", identifier) == 1
    assert heard_after == [identifier]
    [record] = [
        r
        for r in caplog.records
        if r.name == "django_pi_payments.services" and r.levelno >= logging.ERROR
    ]
    message = record.getMessage()
    assert identifier in message and "payment_completed" in message
    assert "RuntimeError: the order could not be fulfilled" in message
    # A retry answers the same, without a second signal or event.
    assert flow.complete(identifier, txid).status_code == 200
    assert signal_log.count("completed", identifier) == 1
    assert len(events(identifier, "completed")) == 1


def test_a_failing_approved_receiver_does_not_fail_the_approval(
    flow, pi_sandbox, signal_log, failing_receiver
):
    failing_receiver(signals.payment_approved)
    identifier = flow.create()
    response = flow.approve(identifier)
    assert response.status_code == 200
    assert response.json()["payment"]["status"] == "approved"
    assert signal_log.count("approved", identifier) == 1
    assert flow.approve(identifier).status_code == 200
    assert len(events(identifier, "approved")) == 1
