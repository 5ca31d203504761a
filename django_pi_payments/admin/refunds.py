"""The "Refund to the payer" admin action: a confirmation page with an amount per payment.

The first POST (from the changelist) renders the page: what can still be refunded of each
selected payment, in an amount field that may be lowered for a partial refund. Its form posts
the selection back with ``post=yes``, and with what was shown as left to refund of each payment
offered for a refund; only then is :func:`services.refund` called, once per offered payment, with
one message per payment. The service refuses a refund unless what is left is still what the page
showed (``expected_left``), under the payment's row lock: a page confirmed twice, or after a
refund made meanwhile (another tab, another admin), sends nothing more, and a payment the page
said it would skip is never refunded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import services
from ..exceptions import InvalidRequest, PaymentError, is_unreachable
from ..models import Direction, EventSource, Payment
from ..services.a2u import checked_amount
from ..services.refunds import display_amount, is_refundable, refunds_of
from .actions import (
    CONFIRMATION_FIELDS,
    StopRun,
    fits_one_form,
    for_each_while_reachable,
    report,
    report_busy,
    report_error,
    status_label,
    within_one_run,
)

CONFIRMATION_TEMPLATE = "admin/pi_payments/refund_confirmation.html"
REFUND = gettext_lazy("Refund to the payer")


@dataclass(frozen=True)
class RefundPlan:
    """One line of the confirmation page: the payment, what is left to refund, or why not."""

    payment: Payment
    refundable: Decimal
    explanation: str
    amount_field: str
    amount_value: str = ""
    error: str = ""

    @property
    def can_refund(self) -> bool:
        """Whether a refund of this payment will be attempted."""
        return self.refundable > 0

    @property
    def left_field(self) -> str:
        """The hidden field that posts back what was shown as left to refund."""
        return left_field(self.payment)

    @property
    def left_value(self) -> str:
        """What is left to refund, as the hidden field holds it."""
        return display_amount(self.refundable)


def left_field(payment: Payment) -> str:
    """The name of the field holding what the confirmation page showed as left to refund."""
    return f"refund_left_{payment.pk}"


def plan_refund(payment: Payment, posted: str | None = None, error: str = "") -> RefundPlan:
    """What refunding ``payment`` will do, from what is stored here (Pi is not called).

    ``posted`` is the amount typed in last time, shown again with its ``error``.
    """
    field = f"refund_amount_{payment.pk}"
    if not is_refundable(payment):
        explanation = _("Will be skipped: only completed user-to-app payments are refunded.")
        return RefundPlan(payment, Decimal(0), explanation, field)
    refundable = services.refundable_amount(payment)
    if refundable <= 0:
        explanation = _("Will be skipped: it has been refunded in full.")
    else:
        explanation = _("Will send the amount to the payer's wallet from the app wallet.")
    value = display_amount(refundable) if posted is None else posted
    return RefundPlan(payment, refundable, explanation, field, value, error)


def read_amounts(
    request: HttpRequest, payments: list[Payment]
) -> tuple[dict[int, Decimal | None], dict[int, str]]:
    """The amount posted for each payment (``None``: all that is left) and the invalid ones."""
    amounts: dict[int, Decimal | None] = {}
    errors: dict[int, str] = {}
    for payment in payments:
        text = request.POST.get(f"refund_amount_{payment.pk}", "").strip()
        try:
            amounts[payment.pk] = checked_amount(text) if text else None
        except InvalidRequest as error:
            errors[payment.pk] = error.detail
    return amounts, errors


def read_offered(request: HttpRequest, payments: list[Payment]) -> dict[int, Decimal]:
    """What the confirmation page showed as left to refund, for each payment it offered."""
    offered: dict[int, Decimal] = {}
    for payment in payments:
        text = request.POST.get(left_field(payment), "").strip()
        try:
            offered[payment.pk] = checked_amount(text)
        except InvalidRequest:
            continue  # not offered (skipped on the page), or not a number the page wrote
    return offered


def refund_one(
    modeladmin: admin.ModelAdmin[Payment],
    request: HttpRequest,
    payment: Payment,
    amount: Decimal | None,
    expected_left: Decimal,
) -> bool:
    """Refund one payment through :func:`services.refund` and report how it went.

    Returns ``False`` when Pi (or Horizon) was unreachable. Raises :class:`~.actions.StopRun`
    when another app-to-user payment in flight could not be finished: every other refund would
    try to finish it first, and fail (or wait for Pi's timeouts) the same way.
    """
    try:
        refund = services.refund(
            payment, amount, source=EventSource.ADMIN, expected_left=expected_left
        )
    except services.A2UBusy as error:
        outcome = _("not refunded, nothing was sent (%(code)s): %(detail)s") % {
            "code": error.code,
            "detail": error.detail,
        }
        report(modeladmin, request, payment, outcome, messages.WARNING, action=REFUND)
        raise StopRun(
            _("not tried: an app-to-user payment in flight must be finished first (see above).")
        ) from error
    except services.RefundRefused as error:
        outcome = _("not refunded: %(detail)s") % {"detail": error.detail}
        report(modeladmin, request, payment, outcome, messages.WARNING, action=REFUND)
    except services.A2UError as error:
        if error.payment is None:
            report_error(modeladmin, request, payment, error, REFUND)
            return not is_unreachable(error)
        cause = error.__cause__
        if error.payment.is_final:  # cancelled instead of paid (not_as_requested...)
            outcome = _("refund %(refund)s cancelled instead of paid (%(code)s): %(detail)s")
            detail = cause.detail if isinstance(cause, PaymentError) else error.detail
        else:
            outcome = _("refund %(refund)s created but not completed yet (%(code)s): %(detail)s")
            if isinstance(cause, PaymentError):  # the step that failed
                detail = _("%(detail)s. pi_reconcile will finish it.") % {
                    "detail": cause.detail.rstrip(".")
                }
            else:  # the step it waits at, which says pi_reconcile will finish it
                detail = error.detail
        outcome %= {"refund": error.payment.identifier, "code": error.code, "detail": detail}
        report(modeladmin, request, payment, outcome, messages.WARNING, action=REFUND)
        return not is_unreachable(error)
    except PaymentError as error:
        report_error(modeladmin, request, payment, error, REFUND)
        return not is_unreachable(error)
    else:
        outcome = _("refunded %(amount)s Pi with payment %(refund)s (transaction %(txid)s).") % {
            "amount": display_amount(refund.amount),
            "refund": refund.identifier,
            "txid": refund.txid,
        }
        report(modeladmin, request, payment, outcome, messages.SUCCESS, action=REFUND)
    return True


@admin.action(permissions=["refund"], description=REFUND)
def refund_to_payer(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, queryset: QuerySet[Payment]
) -> TemplateResponse | None:
    """Refund the selected payments to their payers, after a confirmation page.

    An invalid amount shows the page again with the error, and nothing is refunded.
    """
    if not within_one_run(modeladmin, request, queryset):
        return None
    payments = list(queryset.select_related("pi_user"))
    if request.POST.get("post") != "yes":
        # Refused before each payment's refundable amount is read when even a page offering no
        # refund would be too large.
        least = len(payments) + CONFIRMATION_FIELDS
        if not fits_one_form(modeladmin, request, len(payments), least, at_least=True):
            return None
        return refund_confirmation(modeladmin, request, [plan_refund(p) for p in payments])
    amounts, errors = read_amounts(request, payments)
    if errors:
        plans = [
            plan_refund(p, request.POST.get(f"refund_amount_{p.pk}", ""), errors.get(p.pk, ""))
            for p in payments
        ]
        return refund_confirmation(modeladmin, request, plans)

    offered = read_offered(request, payments)
    # The refunds each payment had before its refund was tried: one more after a busy database
    # was created (and committed) before the wait.
    known: dict[int, set[int]] = {}

    def refund_or_skip(payment: Payment) -> bool:
        if payment.pk in offered:
            known[payment.pk] = set(refunds_of(payment).values_list("pk", flat=True))
            return refund_one(
                modeladmin, request, payment, amounts[payment.pk], offered[payment.pk]
            )
        if is_refundable(payment):
            outcome = _(
                "skipped: the confirmation page did not offer to refund it. Select it again to "
                "see what is left to refund."
            )
        elif payment.direction == Direction.APP_TO_USER:
            outcome = _("skipped: an app-to-user payment is never refunded.")
        else:
            outcome = _("skipped: it is %(status)s, not a completed user-to-app payment.") % {
                "status": status_label(payment)
            }
        report(modeladmin, request, payment, outcome, messages.INFO)
        return True

    def report_refund_busy(payment: Payment) -> None:
        before = known.get(payment.pk)
        created = None if before is None else refunds_of(payment).exclude(pk__in=before).first()
        if created is None:
            report_busy(modeladmin, request, payment)
            return
        # Created before the wait: it stays, for pi_reconcile, which never pays it twice. Not
        # logged in the admin history, which would wait for the same lock.
        outcome = _(
            "refund %(refund)s created but not completed yet (database_busy): the database is "
            "busy (another process holds its lock). pi_reconcile will finish it."
        ) % {"refund": created.identifier}
        report(modeladmin, request, payment, outcome, messages.WARNING)

    for_each_while_reachable(modeladmin, request, payments, refund_or_skip, report_refund_busy)
    return None


def refund_confirmation(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, plans: list[RefundPlan]
) -> TemplateResponse | None:
    """The intermediate page of :func:`refund_to_payer`; it changes nothing.

    ``None`` (back to the list, with an error message) when its form could not be posted: it
    sends each payment, and an amount and what is left to refund of each one it offers
    (:func:`~.actions.fits_one_form`).
    """
    refund_count = sum(plan.can_refund for plan in plans)
    fields = len(plans) + 2 * refund_count + CONFIRMATION_FIELDS
    if not fits_one_form(modeladmin, request, len(plans), fields):
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": gettext_lazy("Refund payments to their payers"),
        "subtitle": None,
        "opts": modeladmin.opts,
        "plans": plans,
        "refund_count": refund_count,
        "action_name": "refund_to_payer",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)
