"""The shop's ``PI_PAYMENTS["APPROVAL_CHECK"]``: a payment is approved only for its own order."""

from __future__ import annotations

from django.http import HttpRequest

from django_pi_payments.exceptions import PaymentRejected
from django_pi_payments.models import Payment

from .models import Order, OrderStatus


def order_id_of(payment: Payment) -> int | None:
    """The ``order_id`` the frontend put in the payment's metadata, if it is an integer."""
    metadata = payment.metadata if isinstance(payment.metadata, dict) else {}
    order_id = metadata.get("order_id")
    return order_id if isinstance(order_id, int) and not isinstance(order_id, bool) else None


def check_order(payment: Payment, request: HttpRequest | None) -> None:
    """Accept ``payment`` only for a pending order of its payer, for exactly the order's amount.

    The payment (already re-read from Pi, so its amount and payer are Pi's) names its order in
    ``metadata["order_id"]``. On success the order is claimed for this payment: no other payment
    can be approved for it. Raises :class:`PaymentRejected` otherwise; django-pi-payments then
    cancels the payment at Pi and answers the frontend with the reason.
    """
    order_id = order_id_of(payment)
    if order_id is None:
        raise PaymentRejected("The payment names no order.", code="missing_order")
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise PaymentRejected("No such order.", code="unknown_order")
    if payment.pi_user is None or order.user_id != payment.pi_user.user_id:
        raise PaymentRejected("This order belongs to someone else.", code="not_your_order")
    if order.status != OrderStatus.PENDING:
        raise PaymentRejected("This order is not awaiting payment.", code="order_not_pending")
    if order.payment_identifier not in (None, payment.identifier):
        raise PaymentRejected("This order already has a payment.", code="order_has_payment")
    if payment.amount != order.amount:
        raise PaymentRejected(
            f"The payment is for {payment.amount} π but the order costs {order.amount} π.",
            code="amount_mismatch",
        )
    order.payment_identifier = payment.identifier
    order.save(update_fields=["payment_identifier"])
