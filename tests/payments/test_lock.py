"""services.core.lock reads a payment row exactly as the ORM does, under the row lock."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from django_pi_payments.models import Payment
from django_pi_payments.services.core import lock


@pytest.mark.django_db
def test_lock_reads_every_field_as_the_orm_does() -> None:
    original = Payment.objects.create(
        identifier="original", user_uid="u", amount=Decimal("2"), network="Pi Testnet"
    )
    Payment.objects.create(
        identifier="locked1",
        user_uid="uid-1",
        direction="app_to_user",
        amount=Decimal("3.1415926"),
        memo="Order #1",
        metadata={"order": [1, 2], "note": "é"},
        network="Pi Testnet",
        txid="ab" * 32,
        status="completed",
        approved_at=dt.datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC),
        raw={"identifier": "locked1", "amount": 3.1415926},
        refund_of=original,
    )
    expected = Payment.objects.get(identifier="locked1")
    with transaction.atomic():
        found = lock("locked1")
        assert lock("missing") is None
    assert found is not None
    names = [field.attname for field in Payment._meta.concrete_fields]
    assert [getattr(found, name) for name in names] == [getattr(expected, name) for name in names]
    assert isinstance(found.amount, Decimal) and found.metadata["note"] == "é"
    assert found.refund_of == original
    assert (found._state.adding, found._state.db) == (False, "default")
