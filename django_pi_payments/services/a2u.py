"""App-to-user payments (payouts and refunds): create at Pi, pay on the chain, complete.

Three steps (PI_PLATFORM_API.md §4.2), each in its own transaction and each audited:

1. **create** (here): under the app's A2U lock (:func:`take_a2u_lock`), finish the app-to-user
   payment still in flight, if any (Pi allows one), then create the payment at Pi and store it.
   This is committed before anything touches the chain, and it queues concurrent sends one
   behind the other.
2. **pay** and 3. **complete**: :func:`~.a2u_resume.resume_a2u`, which ``pi_reconcile`` also
   calls to finish a payment after a crash, never paying it twice.

A refund is an app-to-user payment too: :func:`refund` applies the rules of :mod:`.refunds`
under the refunded payment's row lock, in the transaction that creates the refund.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..client import get_client
from ..conf import SETTINGS_NAME, pi_settings
from ..dto import APP_TO_USER, MAX_AMOUNT, MAX_NESTING, STROOP, PaymentDTO, nesting
from ..exceptions import (
    InvalidRequest,
    PaymentError,
    PaymentNotFound,
    PiAPIError,
    PiError,
    PiNotFound,
    PiRefused,
    PiUnavailable,
    PiUnreachable,
)
from ..models import (
    FINAL_STATUSES,
    A2ULock,
    Direction,
    EventSource,
    Payment,
    PaymentEvent,
    PaymentStatus,
)
from .a2u_resume import (
    REFUND_KEY,
    SHORTEST_RESUME_TIMEOUT,
    UNREQUESTED,
    A2UError,
    landing_cutoff,
    link_refund,
    resume_a2u,
    store,
    wallet,
)
from .core import atomic, db_alias, lock, record_event
from .refunds import check_refund

logger = logging.getLogger("django_pi_payments.services")

S = PaymentStatus
A2U_LOCK = "a2u"
# The events that tie a stored payment to a send of this app. An adopted payment with none was
# created at Pi by an attempt whose answer was lost (or by another program).
CLAIMED = ("a2u_created", "a2u_taken_over", UNREQUESTED)
# Creation attempts: the first, then one after each in-flight payment finished first.
MAX_CREATE_ATTEMPTS = 3


class RecipientNotFound(A2UError):
    """Pi knows no user with this uid (``user_not_found``)."""

    status_code = 404
    default_code = "user_not_found"


class A2UCreationUnknown(A2UError):
    """Pi may have created the payment: its answer was lost and its incomplete list unreadable."""

    status_code = 503
    default_code = "a2u_creation_unknown"


class A2UBusy(A2UError):
    """Another app-to-user payment is in flight and could not be finished first."""

    status_code = 409
    default_code = "ongoing_payment_found"


@dataclass(frozen=True)
class PayoutRequest:
    """What to create at Pi. ``amount`` is ``None`` only for a refund of all that is left."""

    uid: str
    amount: Decimal | None
    memo: str
    metadata: dict[str, Any] = field(default_factory=dict)
    refund_of: Payment | None = None
    expected_left: Decimal | None = None


def checked_amount(value: Decimal | int | str) -> Decimal:
    """``value`` as a positive Decimal of at most 7 decimal places that one payment on the chain
    can carry and Pi's API takes digit for digit; else :class:`InvalidRequest`."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount <= 0:
        raise InvalidRequest(_("The amount must be a positive number with at most 7 decimals."))
    if amount > MAX_AMOUNT:  # checked first: quantizing a huge amount raises InvalidOperation
        raise InvalidRequest(
            _("The amount must be at most %(limit)s Pi.") % {"limit": f"{MAX_AMOUNT:f}"}
        )
    if amount != amount.quantize(STROOP):
        raise InvalidRequest(_("The amount must be a positive number with at most 7 decimals."))
    reaching_pi = Decimal(repr(float(amount)))  # Pi's API takes a JSON number: a double
    if reaching_pi != amount:
        raise InvalidRequest(
            _("Pi keeps amounts as double-precision numbers: %(amount)s would reach Pi as %(pi)s.")
            % {"amount": f"{amount:f}", "pi": f"{reaching_pi:f}"}
        )
    return amount


def _checked_text(value: object, name: str, *, required: bool) -> str:
    """``value`` when it is a string (non-empty when ``required``); else :class:`InvalidRequest`."""
    if not isinstance(value, str):
        raise InvalidRequest(_("%(name)s must be a string.") % {"name": name})
    if required and not value:
        raise InvalidRequest(_("%(name)s must not be empty.") % {"name": name})
    return value


def _json_object(metadata: object) -> dict[str, Any]:
    """``metadata`` as Pi stores and answers it: a JSON object, read back from its strict JSON.

    So a retry is recognised by the metadata Pi answers (``(1, 2)`` becomes ``[1, 2]``, a key
    ``7`` becomes ``"7"``); anything strict JSON cannot say is :class:`InvalidRequest`.
    """
    too_deep = InvalidRequest(
        _("metadata must not nest lists and objects more than %(levels)d levels deep.")
        % {"levels": MAX_NESTING - 1}
    )
    try:
        if not isinstance(metadata, dict):
            raise TypeError
        normalized: dict[str, Any] = json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError):
        raise InvalidRequest(
            _("metadata must be a JSON object (a dict of strings, numbers, lists and dicts).")
        ) from None
    except RecursionError:
        raise too_deep from None
    if nesting(normalized) >= MAX_NESTING:
        # Pi would create the payment, and its answer (one level more) would be unreadable.
        raise too_deep
    return normalized


def take_a2u_lock() -> None:
    """Hold the app's A2U lock until the current transaction ends (the row is made on first use).

    An UPDATE of one row: a row lock on PostgreSQL, MySQL and Oracle, the database write lock
    on SQLite, so it must come first in its transaction.
    """
    locks = A2ULock.objects.using(db_alias())
    now = timezone.now()
    if locks.filter(name=A2U_LOCK).update(taken_at=now):
        return
    try:
        with transaction.atomic(using=db_alias()):
            locks.create(name=A2U_LOCK, taken_at=now)
    except IntegrityError:  # another process created it first: wait for its lock
        locks.filter(name=A2U_LOCK).update(taken_at=now)


def _check_outside_transactions() -> None:
    """Refuse to start inside a transaction of the caller (as a ``durable`` atomic block does).

    Each step must be committed before the next touches Pi or the chain: rolled back with the
    caller's transaction, a payout paid and completed at Pi would be unknown here, and paid again
    by the caller's retry. Django's test cases' own transactions are allowed, as for ``durable``.
    """
    alias = db_alias()
    if not connections[alias].in_atomic_block:
        return  # nothing to check; an empty block would begin a transaction (a lock on SQLite)
    try:
        with transaction.atomic(using=alias, durable=True):
            pass
    except RuntimeError:
        raise A2UError(
            _(
                "App-to-user payments commit each step themselves: call send_payment and refund "
                "outside transaction.atomic() (with ATOMIC_REQUESTS, decorate the view with "
                "transaction.non_atomic_requests)."
            ),
            code="in_transaction",
        ) from None


def _check_resume_timeout() -> None:
    configured: float = pi_settings.A2U_RESUME_TIMEOUT
    if configured < SHORTEST_RESUME_TIMEOUT:
        raise A2UError(
            _('%(setting)s["A2U_RESUME_TIMEOUT"] must be at least %(seconds)d seconds.')
            % {"setting": SETTINGS_NAME, "seconds": SHORTEST_RESUME_TIMEOUT},
            code="improperly_configured",
        )


def send_payment(
    uid: str,
    amount: Decimal | int | str,
    memo: str,
    metadata: dict[str, Any] | None = None,
    *,
    refund_of: Payment | None = None,
    source: str = EventSource.A2U,
) -> Payment:
    """Pay ``amount`` Pi from the app wallet to the Pioneer ``uid``; return the completed payment.

    With ``refund_of`` (a completed user-to-app payment of ``uid``) the payment is a refund of
    it, checked as :func:`refund` checks it. Raises, with nothing created, :class:`InvalidRequest`
    (``uid``, ``amount``, ``memo`` or ``metadata``), :class:`A2UError` (wallet not configured;
    ``in_transaction``: called inside a transaction of the caller),
    :class:`RecipientNotFound`, :class:`A2UBusy`, :class:`~.refunds.RefundRefused`,
    :class:`PiRefused` or :class:`PiUnreachable`. Raises :class:`A2UCreationUnknown` when Pi may
    have created the payment but could not say so. Once the payment is created, any failure raises
    :class:`A2UError` with ``payment`` set: ``pi_reconcile`` finishes that payment, never paying
    it twice.

    A payment that Pi created for an earlier call with the same ``uid``, ``amount``, ``memo``
    and ``metadata`` whose answer was lost (or whose process died before storing it) is taken
    over, not created again: whether it is still in flight at Pi or was adopted and paid by
    ``pi_reconcile`` within ``A2U_RESUME_TIMEOUT``.
    """
    request = PayoutRequest(
        _checked_text(uid, "uid", required=True),
        checked_amount(amount),
        _checked_text(memo, "memo", required=False),
        _json_object({} if metadata is None else metadata),
        refund_of,
    )
    named = request.metadata.get(REFUND_KEY)
    if named is not None and (refund_of is None or named != refund_of.identifier):
        # Pi would answer it, and the payout would be linked as a refund of that payment
        # without the refund's checks.
        raise InvalidRequest(
            _("metadata's %(key)s names the refunded payment: pass refund_of instead.")
            % {"key": REFUND_KEY}
        )
    if refund_of is not None:
        request.metadata[REFUND_KEY] = refund_of.identifier
    return _send(request, source)


def refund(
    payment: Payment,
    amount: Decimal | int | str | None = None,
    *,
    source: str = EventSource.ADMIN,
    expected_left: Decimal | int | str | None = None,
) -> Payment:
    """Refund ``amount`` Pi (default: all that is left) of a completed user-to-app payment.

    Sends an app-to-user payment to the payer, linked by ``refund_of``. Partial refunds add up to
    the payment's amount at most: the check runs under the payment's row lock in the transaction
    that creates the refund. With ``expected_left`` (what was left to refund when someone decided
    on this refund) the refund is refused (``refund_changed``) unless exactly that is still left,
    so a refund submitted twice, or after another one, is not sent again. ``payment_refunded``
    follows the refund's ``payment_completed``. Raises as :func:`send_payment` does.
    """
    request = PayoutRequest(
        uid=payment.user_uid,
        amount=None if amount is None else checked_amount(amount),
        memo=_("Refund of payment %(identifier)s") % {"identifier": payment.identifier},
        metadata={REFUND_KEY: payment.identifier},
        refund_of=payment,
        expected_left=None if expected_left is None else checked_amount(expected_left),
    )
    return _send(request, source)


def _send(request: PayoutRequest, source: str) -> Payment:
    _check_outside_transactions()
    wallet()  # a missing or bad seed is reported before anything is created
    _check_resume_timeout()
    payment, dto = _create(request, source)
    try:
        finished = resume_a2u(payment.identifier, source=source, dto=dto)
    except PaymentError as exc:
        raise A2UError(
            _("%(payment)s was created but not completed: %(detail)s")
            % {"payment": payment.identifier, "detail": exc.detail},
            code=exc.code,
            # The step's own, as that step left it (cancelled instead of paid, say).
            payment=getattr(exc, "payment", None) or payment,
        ) from exc
    if finished.status != S.COMPLETED:
        raise A2UError(
            _("%(payment)s is %(status)s; pi_reconcile will finish it.")
            % {"payment": payment.identifier, "status": finished.get_status_display()},
            code="a2u_incomplete",
            payment=finished,
        )
    return finished


@dataclass(frozen=True)
class Blocking:
    """The app-to-user payment in flight that keeps a new one from being created."""

    identifier: str
    dto: PaymentDTO | None = None


def _create(request: PayoutRequest, source: str) -> tuple[Payment, PaymentDTO | None]:
    """Under the A2U lock: finish the payment in flight, if any, then create and store ours.

    Holding the lock while finishing the other payment queues concurrent sends one behind the
    other. Errors are raised after the commit, so that the other payment's progress is kept.
    A payment Pi created for a lost earlier attempt of this request is taken over instead.
    """
    failure: PaymentError = A2UBusy(
        _("Another app-to-user payment is in flight; pi_reconcile will finish it. Try again later.")
    )
    with atomic():
        take_a2u_lock()
        for _attempt in range(MAX_CREATE_ATTEMPTS):
            try:
                prepared = _prepared(request)
                lost = _lost_attempt(prepared)
                if lost is not None:
                    return _take_over(lost, prepared, source), None
                created = _in_flight() or _create_at_pi(prepared)
            except PaymentError as exc:
                failure = exc
                break
            if not isinstance(created, Blocking):
                return _store_new(created, prepared, source), created
            if (
                created.dto is not None
                and _matches(created.dto, prepared)
                and not _claimed(created.identifier)
            ):
                # Pi created it for an earlier attempt of this request: it is this payment.
                orphan = store(
                    created.dto, source, kind="a2u_adopted", refund_of=prepared.refund_of
                )
                return _take_over(orphan, prepared, source), created.dto
            try:
                blocking = resume_a2u(created.identifier, source=source, dto=created.dto)
            except PaymentError as exc:
                failure = A2UBusy(
                    _(
                        "The app-to-user payment %(payment)s in flight could not be finished "
                        "(%(detail)s); pi_reconcile will finish it. Try again later."
                    )
                    % {"payment": created.identifier, "detail": str(exc.detail).rstrip(".")}
                )
                break
            if not blocking.is_final:
                failure = A2UBusy(
                    _(
                        "The app-to-user payment %(payment)s is still in flight; pi_reconcile "
                        "will finish it. Try again later."
                    )
                    % {"payment": created.identifier}
                )
                break
    raise failure


def _in_flight() -> Blocking | None:
    """The stored app-to-user payment of ``NETWORK`` that is not final yet, if any (the oldest).

    One of another network (left unfinished when the site moved to another Pi app) is not this
    app's to finish: Pi does not know it under the current key, and it does not block a payout."""
    identifier = (
        Payment.objects.using(db_alias())
        .filter(direction=Direction.APP_TO_USER, network=pi_settings.NETWORK)
        .exclude(status__in=FINAL_STATUSES)
        .order_by("created_at")
        .values_list("identifier", flat=True)
        .first()
    )
    return None if identifier is None else Blocking(identifier)


def _store_new(dto: PaymentDTO, request: PayoutRequest, source: str) -> Payment:
    """Store the payment Pi created for ``request``. One that would pay another Pioneer or amount
    is stored as ``a2u_unrequested`` instead of ``a2u_created``: it is cancelled, never paid."""
    requested = _pays_as_requested(dto, request)
    kind = "a2u_created" if requested else UNREQUESTED
    payment = store(dto, source, kind=kind, refund_of=request.refund_of)
    if not requested:
        logger.error(
            "payment %s: Pi created it for %s Pi to %s, not %s Pi to %s as requested",
            dto.identifier,
            dto.amount,
            dto.user_uid,
            request.amount,
            request.uid,
        )
    _note_refund(payment, request, source)
    return payment


def _pays_as_requested(dto: PaymentDTO, request: PayoutRequest) -> bool:
    """Whether Pi's new payment ``dto`` pays what ``request`` asks: direction, Pioneer, amount."""
    return (dto.direction, dto.user_uid, dto.amount) == (APP_TO_USER, request.uid, request.amount)


def _note_refund(payment: Payment, request: PayoutRequest, source: str) -> None:
    """Audit on the refunded payment that ``payment`` refunds it (when it is a refund)."""
    if request.refund_of is not None:
        status = request.refund_of.status
        record_event(
            request.refund_of,
            "refund_created",
            source,
            from_status=status,
            to_status=status,
            detail={"refund": payment.identifier, "amount": str(payment.amount)},
        )


def _matches(dto: PaymentDTO, request: PayoutRequest) -> bool:
    """Whether Pi's app-to-user payment ``dto`` is what ``request`` asks for."""
    return dto.direction == APP_TO_USER and (dto.user_uid, dto.amount, dto.memo, dto.metadata) == (
        request.uid,
        request.amount,
        request.memo,
        request.metadata,
    )


def _claimed(identifier: str) -> bool:
    """Whether a send of this app created or took over the stored payment ``identifier``."""
    events = PaymentEvent.objects.using(db_alias())
    return events.filter(payment__identifier=identifier, kind__in=CLAIMED).exists()


def _lost_attempt(request: PayoutRequest) -> Payment | None:
    """The adopted payment Pi created for a lost earlier attempt of ``request``, locked.

    Stored by ``pi_reconcile``, a sync or another send but claimed by no send, matching the
    request (a refund of the same payment, or no refund), not cancelled unpaid, and stored within
    ``A2U_RESUME_TIMEOUT`` (+ margin): an older one is another payout's.
    """
    assert request.amount is not None  # set by the caller, or by _prepared for a refund
    cutoff = landing_cutoff()
    candidates = (
        Payment.objects.using(db_alias())
        .filter(
            direction=Direction.APP_TO_USER,
            user_uid=request.uid,
            amount=request.amount,
            memo=request.memo,
            created_at__gt=cutoff,
        )
        .filter(Q(refund_of__isnull=True) | Q(refund_of=request.refund_of))
        .exclude(status__in=(S.CANCELLED, S.USER_CANCELLED), txid__isnull=True)
        .exclude(events__kind__in=CLAIMED)
        .order_by("created_at")
    )
    for candidate in candidates:
        if candidate.metadata == request.metadata:
            return lock(candidate.identifier)
    return None


def _take_over(payment: Payment, request: PayoutRequest, source: str) -> Payment:
    """Make the locked adopted ``payment`` the one of ``request`` (audited once); a refund is
    linked to the payment it refunds."""
    status = payment.status
    record_event(payment, "a2u_taken_over", source, from_status=status, to_status=status)
    if request.refund_of is not None and payment.refund_of_id is None:
        link_refund(payment, request.refund_of, source)
    _note_refund(payment, request, source)
    return payment


def _prepared(request: PayoutRequest) -> PayoutRequest:
    """The request with a refund's checks applied under the original payment's row lock."""
    if request.refund_of is None:
        return request
    original = lock(request.refund_of.identifier)
    if original is None:
        raise PaymentNotFound(_("No such payment."))
    if request.uid != original.user_uid:
        raise InvalidRequest(_("A refund is paid to the payer of the refunded payment."))
    amount = check_refund(original, request.amount, expected_left=request.expected_left)
    return replace(request, amount=checked_amount(amount), refund_of=original)


def _create_at_pi(request: PayoutRequest) -> PaymentDTO | Blocking:
    """``POST /v2/payments``: the new payment, or the one Pi says is in flight."""
    assert request.amount is not None  # set by the caller, or by _prepared for a refund
    client = get_client()
    try:
        return client.create_payment(request.uid, request.amount, request.memo, request.metadata)
    except PiNotFound as exc:
        raise RecipientNotFound(
            _("Pi Network knows no user %(uid)s.") % {"uid": request.uid}, code=exc.code
        ) from None
    except PiAPIError as exc:
        if exc.code == "ongoing_payment_found" and exc.payment is not None:
            return Blocking(exc.payment.identifier, exc.payment)
        raise PiRefused(exc.message or str(exc), code=exc.code) from None
    except PiUnavailable as exc:
        # The request may have created the payment: it is in Pi's incomplete list if so.
        found = _find_created(request) if exc.request_sent else None
        if found is None:
            raise PiUnreachable(_("Pi Network is unreachable; try again.")) from None
        return found


def _find_created(request: PayoutRequest) -> PaymentDTO | None:
    """The payment the request created at Pi, from Pi's incomplete list; ``None``: none.

    Raises :class:`A2UCreationUnknown` when the list cannot be read either.
    """
    try:
        incomplete = get_client().incomplete_server_payments()
    except PiError:
        raise A2UCreationUnknown(
            _(
                "Pi Network may have created the payment, but did not answer and its list of "
                "payments in flight could not be read. Send it again with the same uid, amount, "
                "memo and metadata within A2U_RESUME_TIMEOUT: a payment Pi did create is then "
                "taken over and paid once, not created again."
            )
        ) from None
    return next((dto for dto in incomplete if _matches(dto, request)), None)
