"""The JSON of a stored payment, as every payment endpoint answers it (docs/frontend.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from django_pi_payments.models import Payment
from django_pi_payments.serializers import payment_data

APPROVED_AT = dt.datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC)


def _payment(**fields: object) -> Payment:
    values: dict[str, object] = {
        "identifier": "payment1",
        "user_uid": "uid-1",
        "direction": "user_to_app",
        "amount": Decimal("1.5"),
        "memo": "Order #1",
        "metadata": {"order": [1, 2]},
        "network": "Pi Testnet",
        "status": "approved",
        "approved_at": APPROVED_AT,
    }
    values.update(fields)
    return Payment.objects.create(**values)


@pytest.mark.django_db
def test_a_payment_s_json_in_utc() -> None:
    original = _payment(identifier="original", status="completed", txid="ab" * 32)
    refund = _payment(
        identifier="refund1",
        direction="app_to_user",
        amount=Decimal("0.1234567"),
        refund_of=original,
    )
    refund.refresh_from_db()
    assert payment_data(refund) == {
        "identifier": "refund1",
        "user_uid": "uid-1",
        "direction": "app_to_user",
        "amount": "0.1234567",
        "memo": "Order #1",
        "metadata": {"order": [1, 2]},
        "from_address": "",
        "to_address": "",
        "network": "Pi Testnet",
        "txid": None,
        "status": "approved",
        "pi_created_at": None,
        "approved_at": "2026-01-02T03:04:05.123000Z",
        "completed_at": None,
        "cancelled_at": None,
        "refund_of": "original",
        "created_at": refund.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": refund.updated_at.isoformat().replace("+00:00", "Z"),
    }
    assert payment_data(original)["refund_of"] is None
    assert payment_data(original)["txid"] == "ab" * 32


@pytest.mark.django_db
def test_amounts_keep_seven_places_and_times_follow_the_current_time_zone() -> None:
    payment = _payment(amount=Decimal("2"))
    assert payment_data(payment)["amount"] == "2.0000000"  # before the database rounds it
    with timezone.override("Europe/Paris"):
        assert payment_data(payment)["approved_at"] == "2026-01-02T04:04:05.123000+01:00"
