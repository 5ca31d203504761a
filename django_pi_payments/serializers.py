"""Request bodies of the app's endpoints, validated with DRF serializers; a payment's JSON."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .auth import MAX_TOKEN_LENGTH
from .dto import storable
from .models import Payment


class StrictCharField(serializers.CharField):
    """A ``CharField`` that refuses numbers and booleans instead of turning them into text."""

    default_error_messages = {"invalid": _("Not a valid string.")}

    def to_internal_value(self, data: Any) -> str:
        """Accept only JSON strings."""
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class AccessTokenSerializer(serializers.Serializer[dict[str, Any]]):
    """``{"accessToken": "<Pi access token>"}``, as posted by ``Pi.authenticate()`` frontends."""

    accessToken = StrictCharField(max_length=MAX_TOKEN_LENGTH)  # the wire name


MAX_ERROR_LENGTH = 2000

payment_identifier = RegexValidator(
    r"^[A-Za-z0-9]{1,64}$", _("Not a Pi payment identifier."), code="invalid_payment_id"
)
transaction_id = RegexValidator(
    r"^[0-9a-fA-F]{64}$", _("Not a 64-character hex transaction id."), code="invalid_txid"
)


def payment_id_field(**kwargs: Any) -> StrictCharField:
    """The ``paymentId`` of every callback body."""
    return StrictCharField(
        max_length=64, validators=[payment_identifier], trim_whitespace=False, **kwargs
    )


class TransactionIdField(StrictCharField):
    """A transaction id: 64 hex characters, in either case, read as lower case (as Horizon and
    Pi write it)."""

    def to_internal_value(self, data: Any) -> str:
        """The id in lower case."""
        return super().to_internal_value(data).lower()


def txid_field(**kwargs: Any) -> TransactionIdField:
    """A transaction id: 64 hex characters."""
    return TransactionIdField(
        max_length=64, validators=[transaction_id], trim_whitespace=False, **kwargs
    )


class ApproveRequestSerializer(serializers.Serializer[Any]):
    """``{"paymentId", "accessToken"?}`` (pi-sdk-js approve)."""

    paymentId = payment_id_field()
    accessToken = StrictCharField(
        max_length=MAX_TOKEN_LENGTH, required=False, allow_blank=True, trim_whitespace=False
    )


class CompleteRequestSerializer(serializers.Serializer[Any]):
    """``{"paymentId", "transactionId"}``; ``txid`` is accepted for ``transactionId``."""

    paymentId = payment_id_field()
    transactionId = txid_field(required=False)
    txid = txid_field(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Require one transaction id, under either name."""
        txid = attrs.get("transactionId") or attrs.get("txid")
        if not txid:
            raise serializers.ValidationError(
                {"transactionId": _("This field is required.")}, code="required"
            )
        return {"paymentId": attrs["paymentId"], "txid": txid}


class CancelRequestSerializer(serializers.Serializer[Any]):
    """``{"paymentId"}``."""

    paymentId = payment_id_field()


class ErrorRequestSerializer(serializers.Serializer[Any]):
    """``{"paymentId", "error"}``; ``error`` may be text or any JSON the SDK produced."""

    paymentId = payment_id_field()
    error = serializers.JSONField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Turn the error into bounded text that any database can store: no NUL character, and
        no lone surrogate (both become U+FFFD)."""
        error = attrs.get("error")
        text = error if isinstance(error, str) else json.dumps(error, default=str)
        return {"paymentId": attrs["paymentId"], "error": storable(text[:MAX_ERROR_LENGTH])}


class IncompleteTransactionSerializer(serializers.Serializer[Any]):
    """The ``transaction`` of a PaymentDTO: only ``txid`` is read."""

    txid = txid_field(required=False, allow_null=True)


class IncompletePaymentSerializer(serializers.Serializer[Any]):
    """A PaymentDTO sent by the Pi demo frontend: only the ids are read."""

    identifier = payment_id_field()
    transaction = IncompleteTransactionSerializer(required=False, allow_null=True)


class IncompleteRequestSerializer(serializers.Serializer[Any]):
    """``{"paymentId", "transactionId"|null}`` (pi-sdk-js) or ``{"payment": PaymentDTO}`` (demo)."""

    paymentId = payment_id_field()
    transactionId = txid_field(required=False, allow_null=True)
    payment = IncompletePaymentSerializer(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        data = kwargs.get("data")
        if isinstance(data, dict) and "paymentId" not in data and "payment" in data:
            self.fields["paymentId"].required = False

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Reduce either shape to ``paymentId`` and an optional ``txid``."""
        payment = attrs.get("payment")
        if "paymentId" in attrs:
            return {"paymentId": attrs["paymentId"], "txid": attrs.get("transactionId")}
        if payment:
            transaction = payment.get("transaction") or {}
            return {"paymentId": payment["identifier"], "txid": transaction.get("txid")}
        raise serializers.ValidationError(
            {"paymentId": _("This field is required.")}, code="required"
        )


# The representation of a stored payment. Written out rather than declared as a DRF serializer:
# instantiating one deep-copies its 19 fields for every payment rendered, about a tenth of a
# callback's CPU, and the format is fixed here whatever REST_FRAMEWORK's coercion settings say.
SEVEN_PLACES = Decimal("0.0000001")


def exact_amount(amount: Decimal) -> str:
    """A Pi amount as an exact decimal string with 7 places, e.g. ``"3.1415926"``."""
    return format(amount.quantize(SEVEN_PLACES, rounding=ROUND_HALF_UP), "f")


def iso_datetime(value: datetime | None) -> str | None:
    """ISO 8601 in the current time zone, ``Z`` for UTC; ``None`` stays ``None``."""
    if value is None:
        return None
    if settings.USE_TZ and timezone.is_aware(value):
        value = timezone.localtime(value)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def payment_data(payment: Payment) -> dict[str, Any]:
    """A stored payment as the API shows it: amounts are exact decimal strings, times ISO 8601,
    ``refund_of`` the identifier of the refunded payment."""
    refunded = payment.refund_of  # no query when there is none
    return {
        "identifier": payment.identifier,
        "user_uid": payment.user_uid,
        "direction": payment.direction,
        "amount": exact_amount(payment.amount),
        "memo": payment.memo,
        "metadata": payment.metadata,
        "from_address": payment.from_address,
        "to_address": payment.to_address,
        "network": payment.network,
        "txid": payment.txid,
        "status": payment.status,
        "pi_created_at": iso_datetime(payment.pi_created_at),
        "approved_at": iso_datetime(payment.approved_at),
        "completed_at": iso_datetime(payment.completed_at),
        "cancelled_at": iso_datetime(payment.cancelled_at),
        "refund_of": refunded.identifier if refunded is not None else None,
        "created_at": iso_datetime(payment.created_at),
        "updated_at": iso_datetime(payment.updated_at),
    }
