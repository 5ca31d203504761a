"""Request bodies of the app's endpoints, validated with DRF serializers."""

from __future__ import annotations

import json
from typing import Any

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .auth import MAX_TOKEN_LENGTH
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


def txid_field(**kwargs: Any) -> StrictCharField:
    """A transaction id: 64 hex characters."""
    return StrictCharField(
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
        return {"paymentId": attrs["paymentId"], "txid": txid.lower()}


class CancelRequestSerializer(serializers.Serializer[Any]):
    """``{"paymentId"}``."""

    paymentId = payment_id_field()


class ErrorRequestSerializer(serializers.Serializer[Any]):
    """``{"paymentId", "error"}``; ``error`` may be text or any JSON the SDK produced."""

    paymentId = payment_id_field()
    error = serializers.JSONField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Turn the error into bounded text."""
        error = attrs.get("error")
        text = error if isinstance(error, str) else json.dumps(error, default=str)
        return {"paymentId": attrs["paymentId"], "error": text[:MAX_ERROR_LENGTH]}


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


class PaymentSerializer(serializers.Serializer[Any]):
    """A stored payment as the API shows it (read-only); amounts are exact decimal strings.

    The fields are declared rather than derived by a ``ModelSerializer``, which introspects the
    model again for every payment it renders: that cost each callback about 0.6 ms of CPU.
    """

    identifier = serializers.CharField(read_only=True)
    user_uid = serializers.CharField(read_only=True)
    direction = serializers.CharField(read_only=True)
    amount = serializers.DecimalField(max_digits=20, decimal_places=7, read_only=True)
    memo = serializers.CharField(read_only=True)
    metadata = serializers.JSONField(read_only=True)
    from_address = serializers.CharField(read_only=True)
    to_address = serializers.CharField(read_only=True)
    network = serializers.CharField(read_only=True)
    txid = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    pi_created_at = serializers.DateTimeField(read_only=True)
    approved_at = serializers.DateTimeField(read_only=True)
    completed_at = serializers.DateTimeField(read_only=True)
    cancelled_at = serializers.DateTimeField(read_only=True)
    refund_of: serializers.SlugRelatedField[Payment] = serializers.SlugRelatedField(
        slug_field="identifier", read_only=True
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
