"""The rules of refunds: only a completed user-to-app payment, never more than it in total.

A refund is an app-to-user payment to the payer, linked by ``refund_of``, sent by
:func:`django_pi_payments.services.a2u.refund`. That function applies :func:`check_refund` in the
transaction that creates the refund, under the original payment's row lock, so two refunds of one
payment are checked one after the other, each counting the other.

``payment_refunded`` is sent by a receiver of the refund's ``payment_completed``, so on commit and
exactly once, whichever code path completed the refund: the send itself, ``pi_reconcile`` or an
admin sync.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.dispatch import receiver
from django.utils.translation import gettext as _

from .. import signals
from ..exceptions import PaymentError
from ..models import Direction, Payment, PaymentStatus
from .a2u_resume import landing_cutoff
from .core import db_alias, send_robustly

S = PaymentStatus


def may_have_paid() -> Q:
    """Refunds that paid or may still pay: all but the cancelled ones without a transaction
    whose deadline (:func:`~.a2u_resume.cancel_deadline`) has passed.

    Before it, a transaction signed for a cancelled refund can still land: Pi accepts the cancel
    of an A2U payment whatever the chain holds, as it knows no transaction until completion.
    """
    cutoff = landing_cutoff()
    still_may_land = Q(created_at__gt=cutoff) & (
        Q(pi_created_at__isnull=True) | Q(pi_created_at__gt=cutoff)
    )
    return ~Q(status__in=(S.CANCELLED, S.USER_CANCELLED)) | Q(txid__isnull=False) | still_may_land


class RefundRefused(PaymentError):
    """The refund breaks a rule: not a completed user-to-app payment, or too much."""

    status_code = 409
    default_code = "refund_refused"


def display_amount(amount: Decimal) -> str:
    """``amount`` for people: no exponent, no trailing zeros (``3.14``, not ``3.1400000``)."""
    return f"{amount.normalize():f}"


def is_refundable(payment: Payment) -> bool:
    """Whether ``payment`` is of a kind that can be refunded: completed, user to app."""
    return payment.direction == Direction.USER_TO_APP and payment.status == S.COMPLETED


def refunds_of(payment: Payment) -> QuerySet[Payment]:
    """The payment's refunds, read from the database payments are written to, never a read
    replica (a host's router): one lagging behind a refund just made would miss it."""
    return Payment.objects.using(db_alias()).filter(refund_of=payment)


def refunded_amount(payment: Payment) -> Decimal:
    """The total of the payment's refunds that paid or may still pay (:func:`refunds_of`: a
    refund just made counts, so the next cannot exceed the payment)."""
    refunds = refunds_of(payment)
    total = refunds.filter(may_have_paid()).aggregate(total=Sum("amount"))["total"]
    return Decimal(total or 0)


def refundable_amount(payment: Payment) -> Decimal:
    """What can still be refunded of ``payment`` (zero when it cannot be refunded at all)."""
    if not is_refundable(payment):
        return Decimal(0)
    return max(payment.amount - refunded_amount(payment), Decimal(0))


def check_refund(
    original: Payment, amount: Decimal | None, *, expected_left: Decimal | None = None
) -> Decimal:
    """The amount to refund now: ``amount``, or all that is left when it is ``None``.

    Call it with ``original`` locked. Raises :class:`RefundRefused` (``not_refundable``,
    ``fully_refunded``, ``refund_changed`` when ``expected_left`` is given and is not what is
    left, or ``refund_exceeds_payment``).
    """
    if not is_refundable(original):
        raise RefundRefused(
            _("Only a completed user-to-app payment can be refunded."), code="not_refundable"
        )
    left = original.amount - refunded_amount(original)
    if left <= 0:
        raise RefundRefused(_("The payment has been refunded in full."), code="fully_refunded")
    if expected_left is not None and left != expected_left:
        raise RefundRefused(
            _(
                "What is left to refund has changed since this refund was decided: %(left)s Pi "
                "now, not %(expected)s Pi."
            )
            % {"left": display_amount(left), "expected": display_amount(expected_left)},
            code="refund_changed",
        )
    if amount is None:
        return left
    if amount > left:
        raise RefundRefused(
            _("%(amount)s Pi is more than what is left to refund (%(left)s Pi).")
            % {"amount": display_amount(amount), "left": display_amount(left)},
            code="refund_exceeds_payment",
        )
    return amount


@receiver(signals.payment_completed, dispatch_uid="django_pi_payments.services.refunds")
def send_payment_refunded(sender: Any, *, payment: Payment, **kwargs: Any) -> None:
    """After a refund's ``payment_completed``: ``payment_refunded(payment=, original=)``."""
    if payment.refund_of_id is not None:
        send_robustly("payment_refunded", payment, original=payment.refund_of)
