"""Bring every incomplete payment to a final state: the engine behind ``manage.py pi_reconcile``.

:func:`reconcile` is a plain function, so any scheduler (cron, Celery beat, django-q, django-rq)
can run it. It takes Pi's ``incomplete_server_payments`` (fresh truth: acted on without another
read) plus the local payments stuck in a non-final status longer than ``older_than``, and runs each
through :mod:`django_pi_payments.services` on a pool of worker threads.

Overlapping runs never act on one payment twice: on PostgreSQL each payment is claimed with
``SELECT … FOR UPDATE SKIP LOCKED`` and a run skips what another holds; on databases without row
locks (SQLite) a file lock lets one run at a time proceed and the others stop at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from . import services
from .client import get_client
from .conf import pi_settings
from .dto import APP_TO_USER, USER_TO_APP, PaymentDTO
from .exceptions import (
    PaymentError,
    PaymentNotFound,
    PiError,
    PiUnavailable,
    PiUnreachable,
    is_unreachable,
)
from .horizon import get_horizon_client
from .models import FINAL_STATUSES, EventSource, Payment, PaymentStatus
from .services.core import atomic, db_alias, lock, status_from_dto
from .services.payments import cancellable_when_lost

logger = logging.getLogger("django_pi_payments.reconcile")

S = PaymentStatus
SOURCE = EventSource.RECONCILE
# After this many payments in a row failed because Pi (or Horizon) was unreachable, a run asks Pi
# for its incomplete list and Horizon for its root; if either fails too, it starts no more
# payments: during an outage each one waits for its timeouts and retries, and a run would last
# hours. The rest are reported as ``not_tried``, for the next run. If both answer, the failures
# were the payments' own: go on.
STOP_AFTER_UNREACHABLE = 10
NOT_TRIED = "not_tried"
NOT_TRIED_ERROR = f"{PiUnreachable.default_code}: not tried, Pi Network or Horizon is unreachable"


class ReconcileBusy(Exception):
    """Another run holds the database's reconcile lock (databases without row locks only)."""


@dataclass
class Outcome:
    """What happened to one payment: its status before and after, the action, any error."""

    identifier: str
    action: str
    before: str | None = None
    after: str | None = None
    error: str | None = None
    unreachable: bool = field(default=False, repr=False)

    @property
    def failed(self) -> bool:
        """An error stopped this payment's action (or kept the run from trying it)."""
        return self.error is not None

    def as_json(self) -> dict[str, Any]:
        """The payment's entry in :meth:`Report.as_json`."""
        entry = asdict(self)
        del entry["unreachable"]
        return entry


@dataclass
class Report:
    """The result of a run: one :class:`Outcome` per payment, and counts by action."""

    dry_run: bool = False
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """``total``, ``failed`` (tried and failed) and one count per other action."""
        counts = Counter(outcome.action for outcome in self.outcomes)
        return {
            "total": len(self.outcomes),
            "failed": counts.pop("failed", 0),
            **dict(sorted(counts.items())),
        }

    @property
    def failed(self) -> bool:
        """Whether any payment failed."""
        return any(outcome.failed for outcome in self.outcomes)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready document: the counts and one entry per payment."""
        return {
            "dry_run": self.dry_run,
            "counts": self.counts,
            "payments": [outcome.as_json() for outcome in self.outcomes],
        }


@dataclass(frozen=True)
class Options:
    """The knobs of a run (see :func:`reconcile`)."""

    older_than: timedelta = timedelta(minutes=10)
    cancel_unpaid: bool = False
    dry_run: bool = False


def decide(dto: PaymentDTO, local: Payment | None, options: Options) -> str:
    """The action Pi's state calls for: complete, mark_completed, mark_cancelled, resume_a2u,
    cancel, sync, wait."""
    if dto.status.developer_completed:
        return "mark_completed"
    if dto.is_cancelled:
        return "mark_cancelled"
    if dto.direction == APP_TO_USER:
        return "resume_a2u"
    if dto.has_verified_transaction and dto.direction == USER_TO_APP:
        return "complete"
    if dto.transaction is not None:
        return "wait"
    if (
        dto.status.developer_approved
        and options.cancel_unpaid
        and _unpaid_long(dto, local, options)
    ):
        return "cancel"
    if local is not None and status_from_dto(dto) != local.status:
        return "sync"
    return "wait"


def _unpaid_long(dto: PaymentDTO, local: Payment | None, options: Options) -> bool:
    since = (local.approved_at if local else None) or dto.created_at
    return since is not None and since <= timezone.now() - options.older_than


def _perform(
    action: str, identifier: str, dto: PaymentDTO, local: Payment | None
) -> Payment | None:
    """Carry out ``action`` on the claimed payment (``local``: its locked row, if there is one);
    the payment as it is now, or ``None`` when nothing was done."""
    if action == "complete" and dto.txid:
        return services.complete(identifier, dto.txid, source=SOURCE, dto=dto, locked=local)
    if action == "resume_a2u":
        return services.resume_a2u(identifier, source=SOURCE, dto=dto)
    if action == "cancel":
        services.sync(identifier, source=SOURCE, dto=dto)
        return services.cancel(identifier, source=SOURCE)
    if action != "wait":
        return services.sync(identifier, source=SOURCE, dto=dto)
    return None


def _claim(identifier: str) -> tuple[bool, Payment | None]:
    """Lock the local row without waiting: ``(False, None)`` when another run holds it."""
    connection = connections[db_alias()]
    if connection.features.has_select_for_update_skip_locked:
        local = lock(identifier, skip_locked=True)
        if local is None and Payment.objects.filter(identifier=identifier).exists():
            return False, None
        return True, local
    return True, lock(identifier)


def process(identifier: str, dto: PaymentDTO | None, options: Options) -> Outcome:
    """Reconcile one payment inside its own transaction; errors become the outcome's ``error``.

    A database error (e.g. SQLite's lock timeout) fails this payment only; its transaction is
    rolled back and the next run retries it. Any other error (a bug) fails this payment only too,
    with the status it has now, and is logged with its traceback. (A signal receiver that raises
    fails nothing: the services log it and go on.)
    """
    try:
        return _process(identifier, dto, options)
    except DatabaseError as exc:
        logger.warning("pi_reconcile: payment %s: database error: %s", identifier, exc)
        return Outcome(identifier, "failed", error=f"database_error: {exc}")
    except Exception as exc:
        logger.exception("pi_reconcile: payment %s: unexpected error", identifier)
        try:
            after = _status(identifier)
        except DatabaseError:
            after = None
        return Outcome(identifier, "failed", after=after, error=f"{type(exc).__name__}: {exc}")


def _process(identifier: str, dto: PaymentDTO | None, options: Options) -> Outcome:
    with atomic():
        claimed, local = _claim(identifier)
        if not claimed:
            return Outcome(identifier, "skipped_locked")
        before = local.status if local else None
        if local is not None and local.is_final:
            return Outcome(identifier, "already_final", before, before)
        try:
            dto = dto or services.fetch(identifier)
            action = decide(dto, local, options)
            if options.dry_run:
                return Outcome(identifier, f"would_{action}", before, before)
            done = _perform(action, identifier, dto, local)
        except (PaymentError, PiError) as exc:
            after = _status(identifier)
            error = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
            if isinstance(exc, PaymentNotFound) and local is not None:
                error += f" ({_unknown_hint(local)})"
            return Outcome(identifier, "failed", before, after, error, is_unreachable(exc))
        if action == "mark_cancelled" and done is not None and not done.is_final:
            action = "wait"  # a payout's cancel at Pi waits for its deadline
        return Outcome(identifier, action, before, done.status if done else before)


def _unknown_hint(local: Payment) -> str:
    """What to do about the stored payment ``local`` that Pi answers ``payment_not_found`` for."""
    if local.network != pi_settings.NETWORK:
        return (
            f"it is a payment of {local.network}, while NETWORK is {pi_settings.NETWORK}: only "
            "that network's PI_API_KEY (and, for a payout, its seed) can finish it"
        )
    if not pi_settings.api_is_loopback:
        return (
            "check PI_API_KEY and API_BASE_URL: Pi does not lose payments, and while they are "
            "another app's, this app's payments can still be paid there"
        )
    if cancellable_when_lost(local):
        return "the sandbox was reset? The admin's Cancel on Pi Network cancels it here"
    return "the sandbox was reset? A payment with a transaction cannot be settled here"


def _status(identifier: str) -> str | None:
    return Payment.objects.filter(identifier=identifier).values_list("status", flat=True).first()


def candidates(options: Options) -> Iterator[tuple[str, PaymentDTO | None]]:
    """Pi's incomplete payments (with their DTO), then local stuck ones, each once. A payment
    of Pi's list that cannot be read is logged and left out, not the whole run.

    Both lists are read before the first payment is handed out (the local one as identifiers
    only), so no worker waits for this read to end: on SQLite a read that stays open holds off
    every write.
    """
    incomplete = get_client().incomplete_server_payments(skip_unreadable=True)
    cutoff = timezone.now() - options.older_than
    stuck = list(
        Payment.objects.exclude(status__in=FINAL_STATUSES)
        .filter(updated_at__lte=cutoff)
        .order_by("updated_at")
        .values_list("identifier", flat=True)
    )
    seen: set[str] = set()
    for dto in incomplete:
        if dto.identifier not in seen:
            seen.add(dto.identifier)
            yield dto.identifier, dto
    for identifier in stuck:
        if identifier not in seen:
            seen.add(identifier)
            yield identifier, None


@contextmanager
def run_lock() -> Iterator[None]:
    """Serialize runs on databases without ``SKIP LOCKED`` (a file lock per database)."""
    connection = connections[db_alias()]
    if connection.features.has_select_for_update_skip_locked:
        yield
        return
    name = hashlib.sha256(str(connection.settings_dict["NAME"]).encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"pi_reconcile-{name}.lock")
    # Read-only, so that a lock file another user created (root, by hand) still serves cron's.
    with open(os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReconcileBusy("another pi_reconcile run is in progress") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reconcile(
    *,
    older_than: timedelta = timedelta(minutes=10),
    cancel_unpaid: bool = False,
    dry_run: bool = False,
    workers: int = 4,
    progress: Callable[[Outcome], None] | None = None,
    stop: threading.Event | None = None,
) -> Report:
    """Reconcile every incomplete payment and return the :class:`Report`.

    Raises :class:`PiError` when Pi's incomplete list cannot be read and :class:`ReconcileBusy`
    when another run holds the lock (SQLite). Once ``stop`` is set (by a signal handler, say),
    no more payments are started: those running finish and are reported, and the run returns
    with the others left as they are for the next one. ``KeyboardInterrupt`` does the same,
    then propagates (however many more come meanwhile).
    """
    options = Options(older_than=older_than, cancel_unpaid=cancel_unpaid, dry_run=dry_run)
    report = Report(dry_run=dry_run)
    if stop is not None and stop.is_set():
        return report
    with run_lock():
        for outcome in _run_pool(candidates(options), options, max(1, workers), stop):
            report.outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    return report


def _run_pool(
    items: Iterable[tuple[str, PaymentDTO | None]],
    options: Options,
    workers: int,
    stop: threading.Event | None = None,
) -> Iterator[Outcome]:
    """Run :func:`process` over ``items`` with at most twice as many payments as workers in flight.

    Once :data:`STOP_AFTER_UNREACHABLE` payments in a row failed because Pi or Horizon was
    unreachable and :func:`pi_answers` finds one of them not answering, no more are started:
    those in flight finish, and the rest come out as ``not_tried``. Once ``stop`` is set, no more
    are started either: those running finish, and the rest are left for the next run.

    Each worker thread keeps its database connections for the whole run (opening one per payment
    would cost more than the payment's own queries); they are closed once every worker has
    finished and exited, never while one may still use its connection.
    """
    items = iter(items)
    unreachable_in_a_row = 0

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    def unless_stopped(identifier: str, dto: PaymentDTO | None) -> Outcome | None:
        """:func:`process` the payment, in a worker; ``None`` (not started) once stopped: a
        payment waiting for a worker must not start after the stop."""
        return None if stopping() else process(identifier, dto, options)

    def results(done: Iterable[Future[Outcome | None]]) -> Iterator[Outcome]:
        nonlocal unreachable_in_a_row
        for future in done:
            outcome = future.result()
            if outcome is None:
                continue
            unreachable_in_a_row = unreachable_in_a_row + 1 if outcome.unreachable else 0
            yield outcome

    def not_started(futures: set[Future[Outcome | None]]) -> set[Future[Outcome | None]]:
        """Cancel the payments of ``futures`` not started yet; return those running."""
        return {future for future in futures if not future.cancel()}

    opened: list[BaseDatabaseWrapper] = []
    pool = ThreadPoolExecutor(
        max_workers=workers,
        thread_name_prefix="pi_reconcile",
        initializer=_share_connections,
        initargs=(opened,),
    )
    pending: set[Future[Outcome | None]] = set()
    try:
        for identifier, dto in items:
            if stopping():
                break
            pending.add(pool.submit(unless_stopped, identifier, dto))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from results(done)
                if unreachable_in_a_row >= STOP_AFTER_UNREACHABLE and not stopping():
                    if not pi_answers():
                        break
                    unreachable_in_a_row = 0
        while pending:
            if stopping():
                pending = not_started(pending)
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from results(done)
    except KeyboardInterrupt:
        # The payments already running finish (none is left half done): report them too.
        running = not_started(pending)
        _through_interrupts(lambda: wait(running))
        yield from results(running)
        raise
    except BaseException:
        not_started(pending)
        raise
    finally:
        _through_interrupts(lambda: pool.shutdown(wait=True))
        for connection in opened:
            connection.close()
            connection.dec_thread_sharing()
    if stopping():
        return
    for identifier, _dto in items:
        yield Outcome(identifier, NOT_TRIED, error=NOT_TRIED_ERROR, unreachable=True)


def _through_interrupts(wait_for: Callable[[], object]) -> None:
    """Call ``wait_for`` to its end, however many ``KeyboardInterrupt`` (Ctrl-C) come meanwhile:
    it waits for payments that are running, and those must finish before their connections are
    closed (closing one in use can crash the process)."""
    while True:
        try:
            wait_for()
        except KeyboardInterrupt:
            continue
        return


def pi_answers() -> bool:
    """Whether Pi answers a call that concerns no payment (its incomplete list) right now, and
    so does Horizon when the site reads it (``VERIFY_TRANSACTIONS``, or a wallet for payouts)."""
    try:
        get_client().incomplete_server_payments(skip_unreadable=True)  # an odd payment answers too
    except PiUnavailable:
        return False
    except PiError:
        pass  # an answer, if not the expected one
    if pi_settings.reads_horizon:
        return get_horizon_client().answers()
    return True


def _share_connections(opened: list[BaseDatabaseWrapper]) -> None:
    """Worker initializer: hand this thread's connections to the run, which closes them."""
    for connection in connections.all():
        connection.inc_thread_sharing()
        opened.append(connection)
