"""The ``Payment`` admin actions: cancel, sync and complete, one service call per payment.

Every action goes through :mod:`django_pi_payments.services`, which applies a transition (and
sends its signal) only when the payment is not there yet, so no action can send a business signal
twice. Each action reports one message per payment, at a level that says how it went. Whenever a
service was called, the outcome also goes to the payment's admin history, which names the staff
user; so do the services' ``PaymentEvent`` rows (``detail["actor"]``), which outlive that user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import services
from ..exceptions import (
    IllegalTransition,
    PaymentError,
    PiRefused,
    PiUnreachable,
    VerificationFailed,
    is_database_busy,
    is_unreachable,
)
from ..models import Direction, EventSource, Payment, PaymentStatus
from ..services.a2u_resume import cancel_deadline
from ..services.payments import cancelled_as_unknown

CONFIRMATION_TEMPLATE = "admin/pi_payments/cancel_confirmation.html"
# The fields a confirmation form posts besides those of its payments: the CSRF token, ``action``
# and ``post`` (includes/confirm_buttons.html).
CONFIRMATION_FIELDS = 3

# The most payments one run of an action handles. Each costs calls to Pi Network (and a refund,
# a transaction on the chain), all within one HTTP request, which must end before the server's
# timeout; pi_reconcile settles any number.
MAX_PAYMENTS_PER_ACTION = 50

CANCEL = gettext_lazy("Cancel on Pi Network")
SYNC = gettext_lazy("Sync from Pi Network")
COMPLETE = gettext_lazy("Complete verified payments")


def status_label(payment: Payment) -> str:
    """The payment's status as it reads inside a sentence ("completed", "cancelled by the user")."""
    label = str(payment.get_status_display())
    return label[:1].lower() + label[1:]


def report(
    modeladmin: admin.ModelAdmin[Payment],
    request: HttpRequest,
    payment: Payment,
    outcome: str,
    level: int,
    *,
    action: Promise | None = None,
) -> None:
    """Add the message for one payment: its identifier, then what happened to it.

    With ``action`` (a service was called), also log the outcome in the payment's admin history.
    """
    modeladmin.message_user(
        request,
        _("Payment %(payment)s: %(outcome)s") % {"payment": payment.identifier, "outcome": outcome},
        level,
    )
    if action is not None:
        modeladmin.log_change(
            request, payment, _("%(action)s: %(outcome)s") % {"action": action, "outcome": outcome}
        )


def report_error(
    modeladmin: admin.ModelAdmin[Payment],
    request: HttpRequest,
    payment: Payment,
    error: PaymentError,
    action: Promise,
) -> None:
    """Report a service error: a Pi refusal as a warning with Pi's code, others as errors.

    A :class:`PiRefused` without a code of Pi's (``pi_refused``) is Horizon's answer, not Pi's:
    its detail names Horizon, and it is reported as the other errors are.
    """
    if isinstance(error, PiRefused) and error.code != PiRefused.default_code:
        outcome = _("refused by Pi: %(code)s (%(reason)s)") % {
            "code": error.code,
            "reason": error.detail,
        }
        report(modeladmin, request, payment, outcome, messages.WARNING, action=action)
    elif isinstance(error, PiUnreachable):
        report(modeladmin, request, payment, error.detail, messages.ERROR, action=action)
    else:
        outcome = _("%(detail)s (%(code)s)") % {"detail": error.detail, "code": error.code}
        report(modeladmin, request, payment, outcome, messages.ERROR, action=action)


def report_busy(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, payment: Payment
) -> None:
    """Report a payment whose step waited too long for a lock: rolled back, to try again."""
    outcome = _("not done: the database is busy (another process holds its lock); try again.")
    report(modeladmin, request, payment, outcome, messages.ERROR)


class StopRun(Exception):
    """Raised by an action's step, once it reported its payment, when the next payments would
    fail the same way: they are reported as not tried, with ``reason``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def for_each_while_reachable(
    modeladmin: admin.ModelAdmin[Payment],
    request: HttpRequest,
    payments: Iterable[Payment],
    act: Callable[[Payment], bool],
    on_busy: Callable[[Payment], None] | None = None,
) -> None:
    """Call ``act`` for each payment until it returns ``False`` (Pi unreachable), raises
    :class:`StopRun` or the database is busy.

    The payments after that are reported as not tried: during an outage every call waits for
    its timeouts and retries, and while another process holds the database's lock (SQLite's
    only one: e.g. ``pi_reconcile`` waiting on a slow Pi) every payment waits for the lock's
    timeout, so going on would make the request outlast any HTTP timeout. They stay as they are,
    for a later run of the action or ``pi_reconcile``. The payment that met the busy database is
    reported by ``on_busy`` (default :func:`report_busy`), which writes nothing. Every audit row
    the services write meanwhile names the staff user (``detail["actor"]``).
    """
    stopped: str | None = None
    with services.acting_as(request.user.get_username()):
        for payment in payments:
            if stopped is not None:
                report(modeladmin, request, payment, stopped, messages.ERROR)
                continue
            try:
                if not act(payment):
                    stopped = _("not tried: Pi Network or Horizon is unreachable.")
            except StopRun as stop:
                stopped = stop.reason
            except DatabaseError as error:
                if not is_database_busy(error):
                    raise
                if on_busy is None:
                    report_busy(modeladmin, request, payment)
                else:
                    on_busy(payment)
                stopped = _("not tried: the database is busy.")


def within_one_run(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, queryset: QuerySet[Payment]
) -> bool:
    """Whether the selection is at most :data:`MAX_PAYMENTS_PER_ACTION` payments; if not, say so
    with an error message, before a payment is read or Pi called: nothing is done."""
    selected = queryset.count()
    if selected <= MAX_PAYMENTS_PER_ACTION:
        return True
    message = _(
        "Nothing was done: %(count)d payments are too many for one run of this action, which "
        "calls Pi Network for each of them while the page waits. Select at most %(limit)d, for "
        "example by filtering the list; pi_reconcile settles any number of payments."
    ) % {"count": selected, "limit": MAX_PAYMENTS_PER_ACTION}
    modeladmin.message_user(request, message, messages.ERROR)
    return False


def fits_one_form(
    modeladmin: admin.ModelAdmin[Payment],
    request: HttpRequest,
    selected: int,
    fields: int,
    *,
    at_least: bool = False,
) -> bool:
    """Whether a confirmation form of ``selected`` payments, posting ``fields`` fields in all
    (or more, with ``at_least``), stays within ``DATA_UPLOAD_MAX_NUMBER_FIELDS``; if not, say so
    with an error message.

    Django answers a POST with more fields than that with a bare "400 Bad Request", so a page
    whose form would exceed it is not shown: the staff member is told to select fewer payments,
    and nothing is done.
    """
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if limit is None or fields <= limit:
        return True
    if at_least:
        sent = _("at least %(fields)d fields") % {"fields": fields}
    else:
        sent = _("%(fields)d fields") % {"fields": fields}
    message = _(
        "Nothing was done: %(count)d payments are too many to confirm at once (the confirmation "
        "form would send %(sent)s, more than DATA_UPLOAD_MAX_NUMBER_FIELDS = %(limit)d). "
        "Select fewer payments, for example by filtering the list."
    ) % {"count": selected, "sent": sent, "limit": limit}
    modeladmin.message_user(request, message, messages.ERROR)
    return False


def report_skipped_final(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, payment: Payment
) -> None:
    """Report that a payment was left alone because it is already final."""
    outcome = _("skipped: already %(status)s.") % {"status": status_label(payment)}
    report(modeladmin, request, payment, outcome, messages.INFO)


class CancelOutcome(StrEnum):
    """What the cancel action expects to happen to one payment, from what is stored here."""

    CANCEL = "cancel"
    SKIP = "skip"
    LIKELY_REFUSED = "likely_refused"
    COMPLETE_INSTEAD = "complete_instead"
    REFUSED_TOO_EARLY = "refused_too_early"


# The outcomes that ask Pi to cancel.
ASKS_PI = frozenset({CancelOutcome.CANCEL, CancelOutcome.LIKELY_REFUSED})


@dataclass(frozen=True)
class CancelPlan:
    """One line of the cancel confirmation page."""

    payment: Payment
    outcome: CancelOutcome
    explanation: str


def plan_cancel(payment: Payment) -> CancelPlan:
    """Predict, without calling Pi, what cancelling ``payment`` will do."""
    if payment.is_final:
        explanation = _("Will be skipped: it is already %(status)s.") % {
            "status": status_label(payment)
        }
        return CancelPlan(payment, CancelOutcome.SKIP, explanation)
    if payment.direction == Direction.APP_TO_USER:
        return plan_a2u_cancel(payment)
    if payment.txid or payment.status == PaymentStatus.TRANSACTION_VERIFIED:
        explanation = _(
            "Has a blockchain transaction: Pi will probably refuse (payment_tx_present) and the "
            "payment will be synced instead."
        )
        return CancelPlan(payment, CancelOutcome.LIKELY_REFUSED, explanation)
    return CancelPlan(payment, CancelOutcome.CANCEL, _("Will be cancelled at Pi Network."))


def plan_a2u_cancel(payment: Payment) -> CancelPlan:
    """Predict the cancel of an unfinished app-to-user payment
    (:func:`~django_pi_payments.services.a2u_resume.cancel_a2u`)."""
    if payment.txid:
        explanation = _(
            "Its transaction is on the chain: it will be completed at Pi Network, not cancelled."
        )
        return CancelPlan(payment, CancelOutcome.COMPLETE_INSTEAD, explanation)
    deadline = cancel_deadline(payment)
    if timezone.now() < deadline:
        explanation = _(
            "Will be refused: a transaction signed for this app-to-user payment could still land "
            "until %(deadline)s UTC. If its transaction is found on the chain, it will be "
            "completed instead."
        ) % {"deadline": f"{deadline.astimezone(UTC):%Y-%m-%d %H:%M:%S}"}
        return CancelPlan(payment, CancelOutcome.REFUSED_TOO_EARLY, explanation)
    explanation = _(
        "Will be cancelled at Pi Network, unless its transaction is found on the chain: then it "
        "will be completed instead."
    )
    return CancelPlan(payment, CancelOutcome.CANCEL, explanation)


def cancel_one(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, payment: Payment
) -> bool:
    """Cancel one payment through :func:`services.cancel` and report how it went.

    Returns ``False`` when Pi was unreachable.
    """
    try:
        cancelled = services.cancel(payment.identifier, source=EventSource.ADMIN)
    except IllegalTransition:
        payment.refresh_from_db(fields=["status"])
        report_skipped_final(modeladmin, request, payment)
    except PaymentError as error:
        report_error(modeladmin, request, payment, error, CANCEL)
        return not is_unreachable(error)
    else:
        if cancelled.status == PaymentStatus.CANCELLED and cancelled_as_unknown(cancelled):
            outcome = _("cancelled here: the sandbox does not know it.")
        elif cancelled.status == PaymentStatus.CANCELLED:
            outcome = _("cancelled.")
        else:
            outcome = _("now %(status)s.") % {"status": status_label(cancelled)}
        report(modeladmin, request, payment, outcome, messages.SUCCESS, action=CANCEL)
    return True


@admin.action(permissions=["cancel"], description=CANCEL)
def cancel_on_pi(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, queryset: QuerySet[Payment]
) -> TemplateResponse | None:
    """Cancel the selected payments at Pi, after a confirmation page listing what will happen.

    The first POST (from the changelist) only renders the confirmation page; its form posts the
    same selection back with ``post=yes``, and only then is :func:`services.cancel` called, once
    per payment.
    """
    if not within_one_run(modeladmin, request, queryset):
        return None
    payments = list(queryset.select_related("pi_user"))
    if request.POST.get("post") != "yes":
        return cancel_confirmation(modeladmin, request, payments)
    for_each_while_reachable(
        modeladmin, request, payments, lambda payment: cancel_one(modeladmin, request, payment)
    )
    return None


def cancel_confirmation(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, payments: list[Payment]
) -> TemplateResponse | None:
    """The intermediate page of :func:`cancel_on_pi`; it changes nothing.

    ``None`` (back to the list, with an error message) when its form could not be posted
    (:func:`fits_one_form`).
    """
    if not fits_one_form(modeladmin, request, len(payments), len(payments) + CONFIRMATION_FIELDS):
        return None
    plans = [plan_cancel(payment) for payment in payments]
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": gettext_lazy("Cancel payments on Pi Network"),
        "subtitle": None,
        "opts": modeladmin.opts,
        "plans": plans,
        "cancel_count": sum(plan.outcome in ASKS_PI for plan in plans),
        "action_name": "cancel_on_pi",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)


def sync_one(modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, payment: Payment) -> bool:
    """Sync one payment through :func:`services.sync` and report how it went.

    Returns ``False`` when Pi was unreachable.
    """
    before = payment.status
    try:
        synced = services.sync(payment.identifier, source=EventSource.ADMIN)
    except PaymentError as error:
        report_error(modeladmin, request, payment, error, SYNC)
        return not is_unreachable(error)
    if synced.status == before:
        outcome = _("unchanged (%(status)s).") % {"status": status_label(synced)}
        report(modeladmin, request, payment, outcome, messages.INFO, action=SYNC)
    else:
        outcome = _("now %(status)s.") % {"status": status_label(synced)}
        report(modeladmin, request, payment, outcome, messages.SUCCESS, action=SYNC)
    return True


@admin.action(permissions=["sync"], description=SYNC)
def sync_from_pi(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, queryset: QuerySet[Payment]
) -> None:
    """Adopt Pi's current state for each selected payment through :func:`services.sync`."""
    if not within_one_run(modeladmin, request, queryset):
        return
    for_each_while_reachable(
        modeladmin,
        request,
        queryset.select_related("pi_user"),
        lambda payment: sync_one(modeladmin, request, payment),
    )


def complete_one(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, payment: Payment
) -> bool:
    """Complete one payment when Pi shows a verified transaction that passes the checks.

    Returns ``False`` when Pi was unreachable.
    """
    if payment.is_final:
        report_skipped_final(modeladmin, request, payment)
        return True
    if payment.direction == Direction.APP_TO_USER:
        # Pi knows no transaction of a payout until it is completed, and finishing one may mean
        # paying it on the chain first: that is pi_reconcile's work (services.resume_a2u).
        outcome = _(
            "skipped: an app-to-user payment is completed by pi_reconcile, not by this action."
        )
        report(modeladmin, request, payment, outcome, messages.INFO)
        return True
    try:
        dto = services.fetch(payment.identifier)
    except PaymentError as error:
        report_error(modeladmin, request, payment, error, COMPLETE)
        return not is_unreachable(error)
    if not dto.has_verified_transaction or dto.txid is None:
        outcome = _("skipped: Pi shows no verified transaction.")
        report(modeladmin, request, payment, outcome, messages.INFO)
        return True
    try:
        services.complete(payment.identifier, dto.txid, source=EventSource.ADMIN, dto=dto)
    except VerificationFailed as error:
        outcome = _("skipped: verification failed: %(code)s (%(detail)s)") % {
            "code": error.code,
            "detail": error.detail,
        }
        report(modeladmin, request, payment, outcome, messages.WARNING, action=COMPLETE)
    except IllegalTransition as error:
        outcome = _("skipped: %(detail)s") % {"detail": error.detail}
        report(modeladmin, request, payment, outcome, messages.INFO, action=COMPLETE)
    except PaymentError as error:
        report_error(modeladmin, request, payment, error, COMPLETE)
        return not is_unreachable(error)
    else:
        report(modeladmin, request, payment, _("completed."), messages.SUCCESS, action=COMPLETE)
    return True


@admin.action(permissions=["complete"], description=COMPLETE)
def complete_verified(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest, queryset: QuerySet[Payment]
) -> None:
    """Complete each selected payment whose transaction Pi verified and the core checks accept.

    Final payments are skipped without calling Pi. For the others, Pi's current payment is
    fetched once and handed to :func:`services.complete`, which checks it (Pi's flags, the
    network, Horizon) before calling Pi's complete.
    """
    if not within_one_run(modeladmin, request, queryset):
        return
    for_each_while_reachable(
        modeladmin,
        request,
        queryset.select_related("pi_user"),
        lambda payment: complete_one(modeladmin, request, payment),
    )
