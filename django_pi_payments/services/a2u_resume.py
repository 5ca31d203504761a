"""Taking a stored app-to-user payment to a final state: pay on the chain, complete, or cancel.

Steps 2 and 3 of :mod:`.a2u`, each in its own transaction under the payment's row lock:

* **pay**: read the wallet's sequence number, then look on Horizon for a transaction that already
  pays the payment (from the wallet, memo = identifier). Only if there is none, sign one on that
  sequence number and submit it; store and commit its txid. A crash after the submission is
  caught by the look-up next time, and two processes paying one payment build on the same
  sequence number, so at most one transaction can ever land.
* **complete**: Pi's complete with the txid; ``payment_completed`` is sent on commit.

A payment that still has no transaction after ``A2U_RESUME_TIMEOUT`` seconds is cancelled at Pi
instead. Every transaction signed here expires by that deadline (its time bounds end there), so a
transaction signed before a crash can never land after the cancel.

:func:`resume_a2u` runs the steps from whatever state a payment is in: the send itself, the send
that finds it in flight, and ``pi_reconcile`` call it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext as _

from ..a2u import SubmissionFailed, Wallet, WalletHorizon, get_wallet, get_wallet_horizon
from ..client import get_client
from ..conf import pi_settings
from ..dto import APP_TO_USER, PaymentDTO
from ..exceptions import (
    HorizonError,
    IllegalTransition,
    InvalidRequest,
    PaymentError,
    PaymentNotFound,
    PiError,
    PiRefused,
    PiUnavailable,
)
from ..models import Payment, PaymentEvent, PaymentStatus
from .core import (
    CLOCK_MARGIN,
    adopt,
    atomic,
    born,
    chain_search_start,
    db_alias,
    lock,
    lock_or_create,
    record_event,
    send_on_commit,
    transition,
)
from .payments import audit_pi_failure, cancel_unknown, fetch, reread, reread_after

logger = logging.getLogger("django_pi_payments.services")

S = PaymentStatus
# How long a signed transaction stays valid at most (as pi-backend).
TX_VALIDITY = timedelta(seconds=180)
# The refusal of a payment from another wallet than WALLET_PRIVATE_SEED's.
WALLET_MISMATCH = "wallet_mismatch"
# The shortest A2U_RESUME_TIMEOUT, in seconds: the margin on each side of the deadline.
SHORTEST_RESUME_TIMEOUT = 2 * CLOCK_MARGIN.total_seconds()


class A2UError(PaymentError):
    """An app-to-user payment could not be made, or not finished now.

    ``payment`` is the local payment when one was created: it stays recoverable, and
    ``pi_reconcile`` completes it (or cancels it after ``A2U_RESUME_TIMEOUT``).
    """

    status_code = 502
    default_code = "a2u_failed"

    def __init__(
        self, detail: str, *, code: str | None = None, payment: Payment | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.payment = payment


class A2UCancelTooEarly(A2UError):
    """A transaction signed for the app-to-user payment may still land: it cannot be cancelled
    yet (see :func:`cancel_deadline`)."""

    status_code = 409
    default_code = "a2u_cancel_too_early"


def wallet() -> Wallet:
    """The app wallet; :class:`A2UError` (``wallet_not_configured``) when there is none."""
    try:
        return get_wallet()
    except ImproperlyConfigured as exc:
        raise A2UError(str(exc), code="wallet_not_configured") from None


# The event that stores a payment Pi created unlike the request (another Pioneer or amount): it
# is cancelled, never paid.
UNREQUESTED = "a2u_unrequested"
# The event that stores a payment refused as from another wallet than WALLET_PRIVATE_SEED's: it is
# never paid, even once the seed is that wallet's (a retry of the send would then pay twice).
WALLET_REFUSED = "a2u_wallet_refused"

# The key of a refund's metadata that names the payment it refunds: how a refund found at Pi,
# unknown here (its creation's answer lost), is linked again.
REFUND_KEY = "refund_of"


def store(dto: PaymentDTO, source: str, *, kind: str, refund_of: Payment | None = None) -> Payment:
    """Lock the payment, inserting it (approved: A2U is) when it is new; no signal is sent.

    A refund stored earlier without its ``refund_of`` (by a callback, which knows nothing of
    refunds) is linked now, so that it counts against the refunded payment.
    """
    payment, created = lock_or_create(dto)
    if created:
        payment.status = S.APPROVED
        payment.approved_at = timezone.now()
        payment.refund_of = refund_of or _refunded_by(dto)
        payment.save()
        detail = {"amount": str(dto.amount), "to_address": dto.to_address}
        record_event(payment, kind, source, to_status=S.APPROVED, detail=detail)
    elif payment.refund_of_id is None:
        original = refund_of or _refunded_by(dto)
        if original is not None:
            link_refund(payment, original, source)
    return payment


def link_refund(payment: Payment, original: Payment, source: str) -> None:
    """Make the locked ``payment`` a refund of ``original``, so that it counts against it.

    A refund completed before it was linked sent ``payment_completed`` unlinked, which sent no
    ``payment_refunded``: that is sent now, once the link is committed.
    """
    payment.refund_of = original
    payment.save(update_fields=["refund_of", "updated_at"])
    status = payment.status
    detail = {"refund_of": original.identifier}
    record_event(
        payment, "refund_linked", source, from_status=status, to_status=status, detail=detail
    )
    if status == S.COMPLETED:
        send_on_commit("payment_refunded", payment, original=original)


def _refunded_by(dto: PaymentDTO) -> Payment | None:
    """The payment a refund found at Pi refunds, from the ``refund_of`` of its metadata."""
    identifier = dto.metadata.get(REFUND_KEY)
    if not isinstance(identifier, str):
        return None
    return Payment.objects.using(db_alias()).filter(identifier=identifier).first()


def resume_a2u(identifier: str, *, source: str, dto: PaymentDTO | None = None) -> Payment:
    """Bring an app-to-user payment as far as it can go now, never paying it twice.

    Pi's truth first (completed or cancelled there: adopted). Then, without a transaction, look
    on the chain and submit one, or cancel after ``A2U_RESUME_TIMEOUT``; with a transaction,
    complete. ``dto`` is Pi's fresh view when the caller has one. Returns the payment: final,
    unless it must wait (just around its deadline). Failures are audited, then raised as
    :class:`PaymentError` subclasses.
    """
    dto = dto or fetch(identifier)
    if dto.direction != APP_TO_USER:
        raise InvalidRequest(_("Not an app-to-user payment."))
    payment = settle_from_pi(dto, source)
    if dto.is_cancelled:  # adopted, or waiting for its deadline: never paid now
        return payment
    if not payment.is_final and not payment.txid:
        payment = _pay(identifier, source)
    if not payment.is_final and payment.txid:
        payment = _complete(identifier, payment.txid, source)
    return payment


def settle_from_pi(dto: PaymentDTO, source: str) -> Payment:
    """Adopt Pi's truth for an app-to-user payment, paying nothing (``services.sync`` of one).

    A cancel at Pi is adopted only after looking on the chain, so that the payment keeps the
    transaction that paid it; without one, only after :func:`cancel_deadline`, until which a
    transaction signed earlier could still land (the payment waits for a later sync).
    """
    failure: Exception | None = None
    with atomic():
        payment = store(dto, source, kind="a2u_adopted")
        if payment.is_final:
            return payment
        if dto.is_cancelled and not dto.status.developer_completed and not payment.txid:
            # Pi accepts a cancel while our transaction is on the chain (it knows none until the
            # completion): keep the txid, so that a refund that paid still counts.
            try:
                found = _find_tx(payment, get_wallet_horizon(), source)
            except (PiUnavailable, HorizonError) as exc:
                failure = _chain_failure(payment, source, "find", exc)
            else:
                if not found and timezone.now() < cancel_deadline(payment):
                    return payment
        if failure is None and (dto.status.developer_completed or dto.is_cancelled):
            adopt(payment, dto, source=source)
        elif failure is None and dto.txid and not payment.txid:
            _record_tx(payment, dto.txid, source, "a2u_tx_linked")
    if failure is not None:
        raise failure
    return payment


def _find_tx(payment: Payment, horizon: WalletHorizon, source: str) -> bool:
    """Look on the chain for the wallet's transaction paying ``payment``; record it if found."""
    since = chain_search_start(payment)
    found = horizon.find_payment(payment.from_address, payment.identifier, since)
    if found is None:
        return False
    _record_tx(payment, found, source, "a2u_tx_found")
    return True


def landing_cutoff() -> datetime:
    """A payment born (:func:`cancel_deadline`'s clock) before this can have no transaction
    signed for it land any more; one born since may."""
    return timezone.now() - timedelta(seconds=pi_settings.A2U_RESUME_TIMEOUT) - CLOCK_MARGIN


def cancel_deadline(payment: Payment) -> datetime:
    """When no transaction signed for ``payment`` can land any more, clock margin included.

    Every transaction signed here expires by ``born + A2U_RESUME_TIMEOUT``.
    """
    return _deadline(payment) + CLOCK_MARGIN


def cancel_a2u(identifier: str, *, source: str) -> Payment:
    """Cancel an app-to-user payment at Pi, only when that cannot hide a payment on the chain.

    Pi knows no transaction of an A2U payment until it is completed, so it would accept the
    cancel of a paid one. Under the row lock, the chain is read first: a transaction found there
    is recorded and the payment completed instead. Without one, the cancel is refused with
    :class:`A2UCancelTooEarly` until :func:`cancel_deadline`. Raises :class:`IllegalTransition`
    when the payment is already final.
    """
    failure: Exception | None = None
    with atomic():
        payment = _locked(identifier)
        if payment.is_final:
            raise IllegalTransition(_("The payment is already %s.") % payment.get_status_display())
        if not payment.txid:
            try:
                failure = _cancel_unpaid_locked(payment, get_wallet_horizon(), source)
            except (PiUnavailable, HorizonError) as exc:
                failure = _chain_failure(payment, source, "find", exc)
    if failure is not None:
        raise failure
    if not payment.is_final and payment.txid:
        return _complete(identifier, payment.txid, source)
    return payment


def _cancel_unpaid_locked(
    payment: Payment, horizon: WalletHorizon, source: str
) -> Exception | None:
    if _find_tx(payment, horizon, source):
        return None
    deadline = cancel_deadline(payment)
    if timezone.now() < deadline:
        return A2UCancelTooEarly(
            _(
                "A transaction signed for this app-to-user payment could still land until "
                "%(deadline)s UTC: it can be cancelled after that (pi_reconcile then cancels it "
                "by itself)."
            )
            % {"deadline": f"{deadline.astimezone(UTC):%Y-%m-%d %H:%M:%S}"},
            payment=payment,
        )
    return _cancel_locked(payment, source, "requested")


def _locked(identifier: str) -> Payment:
    payment = lock(identifier)
    if payment is None:
        raise PaymentNotFound(_("No such payment."))
    return payment


def _record_tx(payment: Payment, txid: str, source: str, kind: str) -> None:
    payment.txid = txid
    payment.save(update_fields=["txid", "updated_at"])
    status = payment.status
    record_event(payment, kind, source, from_status=status, to_status=status, detail={"txid": txid})


def _pay(identifier: str, source: str) -> Payment:
    """Step 2 under the row lock: find the transaction on the chain, or submit it, or cancel."""
    payer, horizon = wallet(), get_wallet_horizon()
    failure: Exception | None = None
    with atomic():
        payment = _locked(identifier)
        if payment.is_final or payment.txid:
            return payment
        try:
            failure = _pay_locked(payment, payer, horizon, source)
        except (PiUnavailable, HorizonError) as exc:
            failure = _chain_failure(payment, source, "horizon", exc)
    if failure is not None:
        raise failure
    return payment


def _deadline(payment: Payment) -> datetime:
    """When every transaction signed for ``payment`` has expired (their time bounds end)."""
    return born(payment) + timedelta(seconds=pi_settings.A2U_RESUME_TIMEOUT)


def _refusal_marks(payment: Payment) -> set[str]:
    """The events of ``payment`` that refuse to pay it (:data:`UNREQUESTED`,
    :data:`WALLET_REFUSED`)."""
    return set(
        PaymentEvent.objects.using(db_alias())
        .filter(payment=payment, kind__in=(UNREQUESTED, WALLET_REFUSED))
        .values_list("kind", flat=True)
    )


def _refusal(payment: Payment, payer: Wallet, marks: set[str]) -> A2UError | None:
    """Why the app must not pay ``payment``: not from its wallet (now or when first tried), or
    not what it asked Pi for (``marks``: its :func:`_refusal_marks`)."""
    if payment.from_address != payer.public_key or WALLET_REFUSED in marks:
        deadline = cancel_deadline(payment)
        return A2UError(
            _(
                "The payment is from %(address)s, which is not the wallet of "
                "WALLET_PRIVATE_SEED: it is never paid, even once the seed is that wallet's, "
                "and it is cancelled once no transaction signed for it can land any more "
                "(%(deadline)s UTC)."
            )
            % {
                "address": payment.from_address,
                "deadline": f"{deadline.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            },
            code=WALLET_MISMATCH,
            payment=payment,
        )
    if UNREQUESTED in marks:
        return A2UError(
            _(
                "Pi answered the creation with a payment that is not the one requested "
                "(%(amount)s Pi to %(uid)s): it is cancelled, not paid."
            )
            % {"amount": payment.amount, "uid": payment.user_uid},
            code="not_as_requested",
            payment=payment,
        )
    return None


def _pay_locked(
    payment: Payment, payer: Wallet, horizon: WalletHorizon, source: str
) -> Exception | None:
    marks = _refusal_marks(payment)
    refused = _refusal(payment, payer, marks)
    # The sequence number is read BEFORE the look-up: a transaction that lands after the look-up
    # took this sequence number, so the one signed below can no longer land.
    sequence = horizon.sequence(payer.public_key) if refused is None else None
    if _find_tx(payment, horizon, source):
        return None
    if refused is not None:
        if refused.code == WALLET_MISMATCH:
            if WALLET_REFUSED not in marks:
                _mark_wallet_refused(payment, source)
            if timezone.now() < cancel_deadline(payment):
                # A transaction signed with an earlier seed of that wallet could still land.
                return refused
        return _cancel_locked(payment, source, refused.code) or refused
    assert sequence is not None  # read above when nothing refuses the payment
    now = timezone.now()
    deadline = _deadline(payment)
    if now >= deadline + CLOCK_MARGIN:
        return _cancel_locked(payment, source, "resume_timeout")
    if deadline - now < CLOCK_MARGIN:
        return None  # too close to the deadline to sign: the next run cancels it
    signed = payer.sign_payment(
        sequence=sequence,
        base_fee=horizon.base_fee(),
        network=payment.network,
        destination=payment.to_address,
        amount=payment.amount,
        memo=payment.identifier,
        max_time=int(min(now + TX_VALIDITY, deadline).timestamp()),
    )
    try:
        horizon.submit(signed.envelope_xdr)
    except (SubmissionFailed, PiUnavailable) as exc:
        # It may have landed all the same (a timeout), or another process paid first
        # (tx_bad_seq): look again before calling it a failure.
        if not _find_tx(payment, horizon, source):
            return _chain_failure(payment, source, "submit", exc, txid=signed.txid)
        return None
    _record_tx(payment, signed.txid, source, "a2u_submitted")
    return None


def _mark_wallet_refused(payment: Payment, source: str) -> None:
    """Record that the locked ``payment`` was refused as from another wallet."""
    status = payment.status
    record_event(
        payment,
        WALLET_REFUSED,
        source,
        from_status=status,
        to_status=status,
        detail={"from_address": payment.from_address},
    )


def _chain_failure(
    payment: Payment, source: str, action: str, exc: PiError, *, txid: str | None = None
) -> A2UError:
    """Audit a failed Horizon step on the locked payment; return the error to raise."""
    if isinstance(exc, SubmissionFailed):
        code = exc.code
    elif isinstance(exc, HorizonError):
        code = "horizon_error"
    else:
        code = "horizon_unavailable"
    detail: dict[str, Any] = {"action": action, "code": code, "message": str(exc)}
    if txid is not None:
        detail["txid"] = txid
    status = payment.status
    record_event(payment, "a2u_failed", source, from_status=status, to_status=status, detail=detail)
    logger.warning("payment %s: %s failed: %s", payment.identifier, action, exc)
    return A2UError(str(exc), code=code, payment=payment)


def _cancel_locked(payment: Payment, source: str, reason: str) -> Exception | None:
    """Cancel the unpaid payment at Pi; a payment Pi knows a transaction of gets it instead,
    and one a sandbox lost is cancelled here."""
    try:
        cancelled = get_client().cancel_payment(payment.identifier)
    except PiError as exc:
        latest, lost = reread_after(payment.identifier, exc)
        if lost:
            cancel_unknown(payment, source, reason)
            return None
        if latest is not None and (latest.is_cancelled or latest.status.developer_completed):
            adopt(payment, latest, source=source)
            return None
        if latest is not None and latest.txid:
            _record_tx(payment, latest.txid, source, "a2u_tx_linked")
            return None
        return audit_pi_failure(payment, source, "cancel", exc, state_unknown=latest is None)
    if not cancelled.is_cancelled:
        return PiRefused(_("Pi did not cancel the payment."), code="not_cancelled")
    target = S.USER_CANCELLED if cancelled.status.user_cancelled else S.CANCELLED
    transition(
        payment, target, kind="cancelled", source=source, dto=cancelled, detail={"reason": reason}
    )
    return None


def _complete(identifier: str, txid: str, source: str) -> Payment:
    """Step 3 under the row lock: Pi's complete; an ambiguous answer counts if Pi shows it."""
    failure: Exception | None = None
    with atomic():
        payment = _locked(identifier)
        if payment.is_final:
            return payment
        error: PiError = PiUnavailable("Pi did not mark the payment completed")
        try:
            completed: PaymentDTO | None = get_client().complete_payment(identifier, txid)
        except PiError as exc:
            error, completed = exc, reread(identifier)
        if completed is not None and completed.status.developer_completed:
            transition(payment, S.COMPLETED, kind="completed", source=source, dto=completed)
        else:
            failure = audit_pi_failure(payment, source, "complete", error)
    if failure is not None:
        raise failure
    return payment
