"""Adopting Pi's answer: an answer older than the local state is no conflict; a real one is."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from django_pi_payments import services
from django_pi_payments.dto import PaymentStatusDTO
from django_pi_payments.models import Payment, PaymentStatus

from .conftest import events

S = PaymentStatus


def test_an_answer_read_before_the_completion_changes_nothing(flow, pi_sandbox, signal_log):
    identifier, txid = flow.paid()
    read_before = services.fetch(identifier)  # e.g. by the cancel route, racing the completion
    assert flow.complete(identifier, txid).status_code == 200
    stored = Payment.objects.get(identifier=identifier)
    payment = services.sync(identifier, dto=read_before)
    assert payment.status == S.COMPLETED
    assert [event.kind for event in events(identifier)] == ["completed", "approved"]
    assert Payment.objects.get(identifier=identifier).raw == stored.raw
    assert signal_log.count("completed", identifier) == 1


def test_pi_completing_a_payment_cancelled_here_is_a_conflict(flow, pi_sandbox, signal_log):
    identifier, _txid = flow.paid()
    completed = services.fetch(identifier)
    Payment.objects.filter(identifier=identifier).update(status=S.CANCELLED)
    flags = dataclasses.replace(completed.status, developer_completed=True)
    assert isinstance(flags, PaymentStatusDTO)
    services.sync(identifier, dto=dataclasses.replace(completed, status=flags))
    [conflict] = events(identifier, "sync_conflict")
    assert (conflict.to_status, conflict.detail) == (S.CANCELLED, {"pi_status": S.COMPLETED})
    assert Payment.objects.get(identifier=identifier).status == S.CANCELLED
    assert signal_log.count("completed", identifier) == 0


def test_pi_changing_the_amount_of_a_stored_payment_is_copied_and_audited(
    flow, pi_sandbox, signal_log, caplog
):
    identifier = flow.approved(amount="3.5")
    answer = services.fetch(identifier)
    changed = dataclasses.replace(answer, amount=answer.amount * 2, to_address="G" + "B" * 55)
    payment = services.sync(identifier, dto=changed)
    assert payment.amount == 7
    [event] = events(identifier, "pi_changed")
    assert event.detail == {
        "amount": ["3.5000000", "7.0000000"],
        "to_address": [answer.to_address, "G" + "B" * 55],
    }
    assert (event.from_status, event.to_status) == (S.APPROVED, S.APPROVED)
    assert "Pi changed" in caplog.text
    assert signal_log.count("approved", identifier) == 1


def test_an_amount_pi_holds_as_a_double_is_no_change(flow, pi_sandbox):
    identifier = flow.approved(amount="0.3")
    answer = services.fetch(identifier)
    as_a_double = dataclasses.replace(answer, amount=Decimal("0.30000000000000004"))
    for _sync in range(2):
        services.sync(identifier, dto=as_a_double)
    assert Payment.objects.get(identifier=identifier).amount == Decimal("0.3")
    assert events(identifier, "pi_changed") == []


def test_a_payment_paid_and_completed_as_pi_reported_it_has_no_pi_changed_event(flow, pi_sandbox):
    identifier, txid = flow.paid()
    assert flow.complete(identifier, txid).status_code == 200
    services.sync(identifier)
    assert events(identifier, "pi_changed") == []
    assert Payment.objects.get(identifier=identifier).from_address
