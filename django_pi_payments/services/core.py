"""The mechanics every state change shares: the row lock, the transition, the audit row, the signal.

A transition is applied only under the payment's row lock, only when the transition table allows
it, and it writes exactly one :class:`PaymentEvent` and schedules exactly one signal for after the
commit. Callers open the transaction with :func:`atomic`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache, partial
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.dispatch import Signal
from django.utils import timezone

from .. import signals
from ..dto import STROOP, PaymentDTO, storable
from ..exceptions import IllegalTransition
from ..locking import write_first
from ..models import TRANSITIONS, Payment, PaymentEvent, PaymentStatus, PiUser

logger = logging.getLogger("django_pi_payments.services")

S = PaymentStatus
# Who the audit rows written now act for (a staff user's username), if anyone: see acting_as.
_actor: ContextVar[str | None] = ContextVar("pi_payments_actor", default=None)
# The clock difference between this host and the network that the rules reading the chain
# tolerate (how far back a payment's transaction is searched for, a payout's deadline).
CLOCK_MARGIN = timedelta(seconds=60)

# The signal (named in :mod:`django_pi_payments.signals`) each status sends on arrival.
SIGNALS: dict[str, str] = {
    S.APPROVED: "payment_approved",
    S.COMPLETED: "payment_completed",
    S.CANCELLED: "payment_cancelled",
    S.USER_CANCELLED: "payment_cancelled",
}

# The fields of a stored payment that say who pays whom how much: Pi is not expected to change
# them, so an answer that does is copied (Pi's truth wins) and audited as ``pi_changed``.
WATCHED_FIELDS = ("amount", "user_uid", "from_address", "to_address")

# The timestamp each status stamps on first arrival.
TIMESTAMPS: dict[str, str] = {
    S.APPROVED: "approved_at",
    S.COMPLETED: "completed_at",
    S.CANCELLED: "cancelled_at",
    S.USER_CANCELLED: "cancelled_at",
}


def db_alias() -> str:
    """The database that payments are written to."""
    return router.db_for_write(Payment)


@contextmanager
def atomic() -> Iterator[None]:
    """A transaction on the payments database."""
    with transaction.atomic(using=db_alias()):
        yield


def status_from_dto(dto: PaymentDTO) -> str:
    """The local status that Pi's flags describe."""
    flags = dto.status
    if flags.user_cancelled:
        return S.USER_CANCELLED
    if flags.cancelled:
        return S.CANCELLED
    if flags.developer_completed:
        return S.COMPLETED
    if dto.has_verified_transaction:
        return S.TRANSACTION_VERIFIED
    if flags.developer_approved:
        return S.APPROVED
    return S.CREATED


def apply_dto(payment: Payment, dto: PaymentDTO) -> dict[str, list[str]]:
    """Copy Pi's descriptive fields onto ``payment`` (not its status); return the
    :data:`WATCHED_FIELDS` whose stored value this changed, as ``{field: [before, after]}``.

    The direction is set once, on a new payment: an old-style answer without ``direction`` reads
    as user-to-app, and must not turn a stored payout into one. The payer's memo and metadata
    (and the raw answer holding them) are stored as :func:`~django_pi_payments.dto.storable`
    leaves them. A field filled for the first time (e.g. the payer's address, known once the
    transaction is) is no change.
    """
    before = {name: getattr(payment, name) for name in WATCHED_FIELDS} if payment.pk else {}
    payment.user_uid = dto.user_uid or payment.user_uid
    payment.amount = dto.amount
    payment.memo = storable(dto.memo)
    payment.metadata = storable(dto.metadata)
    payment.from_address = dto.from_address or payment.from_address
    payment.to_address = dto.to_address or payment.to_address
    if payment.pk is None:
        payment.direction = dto.direction
    payment.network = dto.network or payment.network
    payment.pi_created_at = dto.created_at or payment.pi_created_at
    if dto.txid and not payment.txid:
        payment.txid = dto.txid
    payment.raw = storable(dto.raw)
    payment.last_synced_at = timezone.now()
    changed = {}
    for name, value in before.items():
        stored, now = _as_stored(value), _as_stored(getattr(payment, name))
        if value not in ("", None) and stored != now:
            changed[name] = [stored, now]
    return changed


def _as_stored(value: object) -> str:
    """A watched field's value as the database keeps it: amounts to the stroop (Pi's answer, a
    double, may carry more places: ``0.30000000000000004`` is stored as ``0.3000000``)."""
    return f"{value.quantize(STROOP):f}" if isinstance(value, Decimal) else str(value)


def refresh_from_pi(payment: Payment, dto: PaymentDTO, source: str) -> None:
    """:func:`apply_dto` to the locked, stored ``payment``, auditing (``pi_changed``) and logging
    any change of its :data:`WATCHED_FIELDS`; the caller saves."""
    changed = apply_dto(payment, dto)
    if changed:
        logger.warning("payment %s: Pi changed %s", payment.identifier, changed)
        record_event(
            payment,
            "pi_changed",
            source,
            from_status=payment.status,
            to_status=payment.status,
            detail=changed,
        )


@cache
def _lock_sql(alias: str, vendor: str, skip_locked: bool) -> str:
    """``SELECT … FOR UPDATE [SKIP LOCKED]`` of one payment by identifier, as the ORM writes it.

    Compiled once per database: every callback and every reconciled payment takes this lock,
    and compiling it anew each time cost more CPU (about 1 ms) than the query itself. It selects
    the concrete fields in their model order, as every ORM query of a whole row does.
    """
    queryset = Payment.objects.using(alias).select_for_update(skip_locked=skip_locked)
    query = queryset.filter(identifier="").query
    sql: str = query.get_compiler(using=alias).as_sql()[0]  # one placeholder: the identifier
    return sql


def lock(identifier: str, *, skip_locked: bool = False) -> Payment | None:
    """The payment row, locked until the transaction ends; ``None`` when it does not exist.

    With ``skip_locked`` (databases with ``SKIP LOCKED`` only), ``None`` also when another
    transaction holds the lock. Must run inside :func:`atomic`. The row is read with the
    database's and the fields' converters, as the ORM reads it, into :meth:`Payment.from_db`.

    On a database without ``SELECT … FOR UPDATE`` (SQLite) this takes the database's write lock
    (:func:`~django_pi_payments.locking.write_first`): it must then be the transaction's first
    statement.
    """
    alias = db_alias()
    connection = connections[alias]
    write_first(Payment.objects.using(alias).filter(identifier=identifier), "identifier")
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(alias, connection.vendor, skip_locked), [identifier])
        row = cursor.fetchone()
    if row is None:
        return None
    fields = Payment._meta.concrete_fields
    values = list(row)
    for index, field in enumerate(fields):
        column = field.get_col(Payment._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + field.get_db_converters(
            connection
        ):
            values[index] = convert(values[index], column, connection)
    return Payment.from_db(alias, [field.attname for field in fields], values)


def lock_or_create(dto: PaymentDTO, pi_user: PiUser | None = None) -> tuple[Payment, bool]:
    """Lock the payment for ``dto``, inserting it (status ``created``) when it is new.

    Two requests racing to insert the same identifier are settled by the unique constraint: the
    loser waits for the winner's commit, gets ``IntegrityError`` and locks the winner's row.
    A stored payment without a payer (stored by an anonymous callback before the payer signed
    in) takes ``pi_user``, which the caller's next save writes.
    """
    payment = lock(dto.identifier)
    if payment is None:
        created = Payment(identifier=dto.identifier, status=S.CREATED, pi_user=pi_user)
        apply_dto(created, dto)
        if pi_user is None:
            created.pi_user = PiUser.objects.filter(uid=dto.user_uid).first()
        try:
            with transaction.atomic(using=db_alias()):
                created.save(force_insert=True)
        except IntegrityError:
            payment = lock(dto.identifier)
            if payment is None:
                raise
        else:
            return created, True
    if payment.pi_user_id is None and pi_user is not None:
        payment.pi_user = pi_user
    return payment, False


def lock_and_adopt(dto: PaymentDTO, *, source: str, pi_user: PiUser | None = None) -> Payment:
    """:func:`lock_or_create` the payment for ``dto``, then :func:`adopt` Pi's status.

    A payment inserted just now already holds ``dto``: it is written again only when Pi's status
    moves it on.
    """
    payment, created = lock_or_create(dto, pi_user)
    if not created or status_from_dto(dto) != payment.status:
        adopt(payment, dto, source=source)
    return payment


def born(payment: Payment) -> datetime:
    """When ``payment`` came to be: stored here, or created at Pi, whichever is earlier."""
    return min(moment for moment in (payment.created_at, payment.pi_created_at) if moment)


def chain_search_start(payment: Payment) -> datetime:
    """How far back the chain is searched for the payment's transaction."""
    return born(payment) - CLOCK_MARGIN


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Name ``actor`` (e.g. the staff user running an admin action) in the ``detail`` of every
    audit row written inside the block, so the audit log says who did it even after Django's
    admin history is gone with that user."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def record_event(
    payment: Payment,
    kind: str,
    source: str,
    *,
    from_status: str = "",
    to_status: str = "",
    detail: dict[str, Any] | None = None,
) -> PaymentEvent:
    """Write one audit row; ``detail`` must hold no secret. Texts in it (Pi's error messages)
    are stored as :func:`~django_pi_payments.dto.storable` leaves them; inside
    :func:`acting_as`, ``detail["actor"]`` names who acted."""
    actor = _actor.get()
    if actor is not None:
        detail = {**(detail or {}), "actor": actor}
    return PaymentEvent.objects.create(
        payment=payment,
        kind=kind,
        source=source,
        from_status=from_status,
        to_status=to_status,
        detail=storable(detail) if detail else {},
    )


def transition(
    payment: Payment,
    to_status: str,
    *,
    kind: str,
    source: str,
    dto: PaymentDTO | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Move the locked ``payment`` to ``to_status``: save, audit, and signal after commit.

    Returns ``False`` and changes nothing when the payment is already there. Raises
    :class:`IllegalTransition` when the table forbids the move.
    """
    from_status = payment.status
    if from_status == to_status:
        if dto is not None:
            refresh_from_pi(payment, dto, source)
            payment.save()
        return False
    if not payment.can_transition(to_status):
        raise IllegalTransition(f"The payment is {from_status} and cannot become {to_status}.")
    if dto is not None:
        refresh_from_pi(payment, dto, source)
    payment.status = to_status
    stamp = TIMESTAMPS.get(to_status)
    if stamp and getattr(payment, stamp) is None:
        setattr(payment, stamp, timezone.now())
    payment.save()
    record_event(payment, kind, source, from_status=from_status, to_status=to_status, detail=detail)
    signal_name = SIGNALS.get(to_status)
    if signal_name is not None:
        send_on_commit(signal_name, payment)
    logger.info("payment %s: %s -> %s (%s)", payment.identifier, from_status, to_status, kind)
    return True


def send_on_commit(signal_name: str, payment: Payment, **kwargs: Any) -> None:
    """Send the signal to every receiver (:func:`send_robustly`) once the transaction commits."""
    transaction.on_commit(partial(send_robustly, signal_name, payment, **kwargs), using=db_alias())


def send_robustly(signal_name: str, payment: Payment, **kwargs: Any) -> None:
    """Send the payment signal ``signal_name`` (of :mod:`django_pi_payments.signals`) to every
    receiver, after the change it announces is stored.

    By then Pi may have accepted the change: a receiver that raises cannot undo it. Its error is
    logged (Django's dispatcher logs the traceback) and goes no further, so the other receivers
    still hear the signal and the caller (a callback the Pi SDK would retry, or the host's own
    transaction with its other commit hooks) never sees it.
    """
    signal: Signal = getattr(signals, signal_name)
    for receiver, result in signal.send_robust(sender=Payment, payment=payment, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "payment %s is %s, but a %s receiver (%s) raised %s: %s",
                payment.identifier,
                payment.status,
                signal_name,
                getattr(receiver, "__qualname__", receiver),
                type(result).__name__,
                result,
            )


def adopt(payment: Payment, dto: PaymentDTO, *, source: str, kind: str = "synced") -> bool:
    """Bring the locked ``payment`` to the status Pi reports; ``True`` when it moved.

    Pi's truth wins, but a final local status never moves: a disagreement is logged and
    audited instead. An answer that only lags behind ours (read before a racing request moved
    the payment on, or Pi's flags not caught up yet, e.g. no tx linked) is no disagreement: ours
    is kept, and a final payment is not rewritten with the older answer.
    """
    target = status_from_dto(dto)
    lags_behind = payment.status in TRANSITIONS[target]
    if target == payment.status or (lags_behind and not payment.is_final):
        refresh_from_pi(payment, dto, source)
        payment.save()
        return False
    if lags_behind:
        return False
    if not payment.can_transition(target):
        logger.error(
            "payment %s is %s here but %s at Pi", payment.identifier, payment.status, target
        )
        record_event(
            payment,
            "sync_conflict",
            source,
            from_status=payment.status,
            to_status=payment.status,
            detail={"pi_status": target},
        )
        return False
    return transition(payment, target, kind=kind, source=source, dto=dto)
