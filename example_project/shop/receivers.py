"""Orders follow their payments: paid on ``payment_completed``, cancelled on ``payment_cancelled``.

django-pi-payments sends each signal once per transition, after the transaction commits, whether
the transition came from a frontend callback, the admin or ``pi_reconcile``. This is the only
place an order becomes paid. App-to-user payments (refunds, payouts) send these signals too;
they are not orders' payments and are ignored.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from django_pi_payments.models import Direction, Payment
from django_pi_payments.signals import payment_cancelled, payment_completed

from .models import Order, OrderStatus
from .payments import order_id_of


@receiver(payment_completed, dispatch_uid="shop.mark_order_paid")
def mark_order_paid(sender: type[Payment], payment: Payment, **kwargs: Any) -> None:
    """Mark the order claimed by ``payment`` paid, if the completed amount is the order's."""
    if payment.direction != Direction.USER_TO_APP:
        return  # a payout or refund pays no order
    Order.objects.filter(
        payment_identifier=payment.identifier, amount=payment.amount, status=OrderStatus.PENDING
    ).update(status=OrderStatus.PAID, paid_at=timezone.now())


@receiver(payment_cancelled, dispatch_uid="shop.cancel_order")
def cancel_order(sender: type[Payment], payment: Payment, **kwargs: Any) -> None:
    """Cancel the payer's pending order of ``payment``.

    That is the order the payment claimed, or the one its metadata names if no payment claimed
    it yet (a payment cancelled before approval). Another user's order is never touched.
    """
    if payment.direction != Direction.USER_TO_APP:
        return
    Order.objects.filter(
        Q(payment_identifier=payment.identifier)
        | Q(
            pk=order_id_of(payment),
            payment_identifier__isnull=True,
            user__pi_user__uid=payment.user_uid,
        ),
        status=OrderStatus.PENDING,
    ).update(status=OrderStatus.CANCELLED)
