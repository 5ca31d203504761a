"""Approve, complete, cancel, sync and resolve user-to-app payments.

Every function here re-reads the payment from Pi (unless the caller hands over a DTO Pi has just
sent, as ``pi_reconcile`` does with Pi's incomplete list), then changes local state only under the
row lock of :mod:`.core`. Calls to Pi that change Pi's state are made while the lock is held, so two
racing requests can never both approve or complete one payment. An ambiguous answer (a timeout
after the request left, or a refusal such as ``already_completed``) counts as success only when
a fresh read from Pi shows it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from ..a2u import get_wallet_horizon
from ..auth import require_scope
from ..client import get_client
from ..conf import pi_settings
from ..dto import APP_TO_USER, TXID_RE, USER_TO_APP, PaymentDTO
from ..exceptions import (
    HorizonError,
    IllegalTransition,
    InvalidRequest,
    NotPayer,
    PaymentError,
    PaymentNotFound,
    PaymentRejected,
    PiAPIError,
    PiError,
    PiNotFound,
    PiRefused,
    PiUnavailable,
    PiUnreachable,
    VerificationFailed,
)
from ..horizon import verify_payment_transaction
from ..models import Direction, EventSource, Payment, PaymentStatus, PiUser
from .core import (
    adopt,
    atomic,
    chain_search_start,
    lock,
    lock_and_adopt,
    lock_or_create,
    record_event,
    transition,
)

logger = logging.getLogger("django_pi_payments.services")

S = PaymentStatus
IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
PAYMENTS_SCOPE = "payments"
# The frontend errors kept per payment: a frontend stuck in a loop, or anyone who knows the
# payment's identifier (the route is anonymous, as the Pi SDK's onError posts it), cannot grow
# its audit log further.
MAX_FRONTEND_ERRORS = 50
# The failed verifications of each code kept per payment, for the same reason: the complete
# route is anonymous too, and each transaction id that does not prove the payment is one failure
# (as is each pi_reconcile run on a payment whose transaction does not pay it). Counted per code,
# so that transaction ids made up by anyone (``no_tx``, ``txid_mismatch``) cannot crowd out the
# failure of the payer's own transaction (``tx_payment_mismatch``...).
MAX_VERIFICATION_FAILURES = 50
# Pi's error code for a payment it does not know.
NOT_FOUND_CODE = "payment_not_found"


def _check_identifier(identifier: str) -> None:
    if not IDENTIFIER_RE.fullmatch(identifier):
        raise InvalidRequest(_("paymentId is not a Pi payment identifier."))


def _check_txid(txid: str) -> None:
    if not TXID_RE.fullmatch(txid):
        raise InvalidRequest(_("transactionId is not a 64-character hex transaction id."))


def fetch(identifier: str) -> PaymentDTO:
    """Pi's current view of the payment; maps Pi's errors to service errors."""
    _check_identifier(identifier)
    try:
        return get_client().get_payment(identifier)
    except PiNotFound:
        raise PaymentNotFound(_("Pi Network knows no such payment.")) from None
    except PiUnavailable:
        raise PiUnreachable(_("Pi Network is unreachable; try again.")) from None
    except PiAPIError as exc:
        raise PiRefused(exc.message or str(exc), code=exc.code) from None


def _approval_check() -> Callable[[Payment, HttpRequest | None], None] | None:
    check: Callable[[Payment, HttpRequest | None], None] | None = pi_settings.APPROVAL_CHECK
    return check


def _check_network(dto: PaymentDTO) -> None:
    if dto.network and dto.network != pi_settings.NETWORK:
        raise PaymentRejected(
            _("The payment is on %(network)s, not on %(expected)s.")
            % {"network": dto.network, "expected": pi_settings.NETWORK},
            code="wrong_network",
        )


def _check_user_to_app(dto: PaymentDTO) -> None:
    if dto.direction != USER_TO_APP:
        raise PaymentRejected(_("Only user-to-app payments are approved."), code="wrong_direction")


# The actions of audit_pi_failure that read Horizon, not the Pi Platform API: Horizon may be down,
# or lag behind and not know the transaction yet.
HORIZON_READS = frozenset({"verify", "find"})


def audit_pi_failure(
    payment: Payment,
    source: str,
    action: str,
    exc: PiError,
    *,
    status: str | None = None,
    state_unknown: bool = False,
) -> PaymentError:
    """Audit a failed Pi call on the locked payment and return the error to raise after commit.

    ``state_unknown``: Pi could not be read again after the call, so a call that reached Pi
    may have acted (its answer lost); the error says so for a cancel.
    """
    detail: dict[str, Any] = {"action": action}
    if isinstance(exc, PiAPIError | PiUnavailable):
        detail.update(exc.as_detail())
    elif isinstance(exc, HorizonError):
        detail.update(code="horizon_error", message=str(exc))
    record_event(
        payment,
        "pi_error",
        source,
        from_status=payment.status,
        to_status=status or payment.status,
        detail=detail,
    )
    if isinstance(exc, PiUnavailable) and action in HORIZON_READS:
        return PiUnreachable(
            _(
                "Horizon (Pi Network's blockchain) could not confirm the transaction; the payment "
                "will be retried."
            )
        )
    if isinstance(exc, PiUnavailable) and action == "cancel":  # staff or the caller try again
        if state_unknown and exc.request_sent:
            return PiUnreachable(
                _(
                    "Pi Network did not answer; the payment may have been cancelled there. Sync "
                    "it from Pi Network later to see."
                )
            )
        return PiUnreachable(
            _("Pi Network is unreachable; the payment was not cancelled. Try again later.")
        )
    if isinstance(exc, PiUnavailable):
        return PiUnreachable(_("Pi Network is unreachable; the payment will be retried."))
    if isinstance(exc, PiAPIError):
        return PiRefused(exc.message or str(exc), code=exc.code)
    return PiRefused(str(exc))


def _record_kept(
    payment: Payment,
    kind: str,
    limit: int,
    source: str,
    detail: dict[str, Any],
    *,
    per_code: bool = False,
) -> None:
    """Audit an event of ``kind`` on the locked payment, unless it holds ``limit`` of them (of
    them with the same ``detail["code"]``, ``per_code``)."""
    kept = payment.events.filter(kind=kind)
    if per_code:
        kept = kept.filter(detail__code=detail["code"])
    if kept.count() < limit:
        record_event(
            payment,
            kind,
            source,
            from_status=payment.status,
            to_status=payment.status,
            detail=detail,
        )


def reread(identifier: str) -> PaymentDTO | None:
    """Pi's state after an ambiguous answer; ``None`` when Pi cannot be read either."""
    try:
        return get_client().get_payment(identifier)
    except PiError:
        return None


def _lost_by_pi(exc: PiError) -> bool:
    return isinstance(exc, PiNotFound) and exc.code == NOT_FOUND_CODE


def reread_after(identifier: str, exc: PiError) -> tuple[PaymentDTO | None, bool]:
    """Pi's state after its call failed with ``exc`` (``None`` when Pi cannot be read either),
    and whether a sandbox lost the payment: ``API_BASE_URL`` is a loopback host, and it answered
    ``payment_not_found`` to that call and to this read (the sandbox was reset).

    Pi itself never loses a payment: there, ``payment_not_found`` for a stored one means that
    ``PI_API_KEY`` or ``API_BASE_URL`` is not this app's, and the payment can still be paid."""
    try:
        return get_client().get_payment(identifier), False
    except PiError as read_exc:
        lost = pi_settings.api_is_loopback and _lost_by_pi(exc) and _lost_by_pi(read_exc)
        return None, lost


def cancellable_when_lost(payment: Payment) -> bool:
    """Whether *Cancel* can settle ``payment`` here when a sandbox lost it: no transaction is
    stored, and a user-to-app payment has its payer's address, to search the chain with."""
    return not payment.txid and (
        payment.direction == Direction.APP_TO_USER or bool(payment.from_address)
    )


def cancel_unknown(payment: Payment, source: str, reason: str) -> None:
    """Cancel here the locked ``payment`` a sandbox lost (see :func:`reread_after`), which
    nothing can then pay: the audit row says so."""
    transition(
        payment,
        S.CANCELLED,
        kind="cancelled",
        source=source,
        detail={"reason": reason, "pi_error": NOT_FOUND_CODE},
    )


def cancelled_as_unknown(payment: Payment) -> bool:
    """Whether ``payment`` was cancelled here by :func:`cancel_unknown`."""
    cancel = payment.events.filter(kind="cancelled").order_by("-created_at", "-pk").first()
    return cancel is not None and cancel.detail.get("pi_error") == NOT_FOUND_CODE


def approve(
    identifier: str,
    pi_user: PiUser,
    *,
    request: HttpRequest | None = None,
    source: str = EventSource.CALLBACK,
) -> Payment:
    """Approve a user-to-app payment for its payer, after the checks; idempotent.

    Raises, with nothing stored and nothing sent to Pi, :class:`NotPayer` when ``pi_user`` is
    not the payer, :class:`MissingScope` without the ``payments`` scope, and
    :class:`PaymentRejected` for an app-to-user payment (a recipient must not be able to cancel
    a payout). Raises :class:`PaymentRejected` after cancelling the payment at Pi when the
    network or the site's ``APPROVAL_CHECK`` refuses it.
    """
    dto = fetch(identifier)
    if dto.user_uid != pi_user.uid:
        raise NotPayer(_("This payment belongs to another Pi user."))
    require_scope(pi_user, PAYMENTS_SCOPE)
    _check_user_to_app(dto)
    failure: Exception | None = None
    with atomic():
        payment = lock_and_adopt(dto, source=source, pi_user=pi_user)
        if payment.status in {S.APPROVED, S.TRANSACTION_VERIFIED, S.COMPLETED}:
            return payment
        if payment.is_final:
            failure = IllegalTransition(_("The payment is %s.") % payment.get_status_display())
        else:
            failure = _approve_locked(payment, dto, request, source)
    if failure is not None:
        raise failure
    return payment


def _approve_locked(
    payment: Payment, dto: PaymentDTO, request: HttpRequest | None, source: str
) -> Exception | None:
    try:
        _check_network(dto)
        check = _approval_check()
        if check is not None:
            check(payment, request)
    except PaymentRejected as rejection:
        _reject(payment, rejection, source)
        return rejection
    try:
        approved = get_client().approve_payment(payment.identifier)
    except PiError as exc:
        confirmed = reread(payment.identifier)
        if confirmed is None or not confirmed.status.developer_approved:
            return audit_pi_failure(payment, source, "approve", exc)
        approved = confirmed
    transition(payment, S.APPROVED, kind="approved", source=source, dto=approved)
    return None


def _reject(payment: Payment, rejection: PaymentRejected, source: str) -> None:
    """Cancel a refused payment at Pi (best effort) and record the refusal."""
    detail = {"code": rejection.code, "reason": rejection.reason}
    try:
        cancelled = get_client().cancel_payment(payment.identifier)
    except PiError as exc:
        audit_pi_failure(payment, source, "cancel", exc)
        record_event(
            payment,
            "rejected",
            source,
            from_status=payment.status,
            to_status=payment.status,
            detail=detail,
        )
        return
    transition(payment, S.CANCELLED, kind="rejected", source=source, dto=cancelled, detail=detail)


def complete(
    identifier: str,
    txid: str,
    *,
    source: str = EventSource.CALLBACK,
    dto: PaymentDTO | None = None,
    locked: Payment | None = None,
) -> Payment:
    """Complete a user-to-app payment once its transaction is proven; idempotent.

    The transaction must be the one Pi linked and verified and, with ``VERIFY_TRANSACTIONS``,
    must pay exactly the payment on Horizon. Pi's complete is never called otherwise.
    ``locked`` is the payment's row when the caller already holds its lock in the current
    transaction (as ``pi_reconcile`` does), which spares locking it again.
    """
    _check_identifier(identifier)
    _check_txid(txid)
    dto = dto or fetch(identifier)
    if dto.direction != USER_TO_APP:  # a payout is completed by a2u_resume, never by a callback
        raise VerificationFailed(_("Not a user-to-app payment."), code="wrong_direction")
    failure: Exception | None = None
    with atomic():
        payment = locked if locked is not None else lock_or_create(dto)[0]
        if dto.status.developer_completed or dto.is_cancelled:
            adopt(payment, dto, source=source)
        if payment.status == S.COMPLETED:
            if payment.txid and payment.txid != txid:
                failure = IllegalTransition(
                    _("The payment was completed with another transaction.")
                )
            else:
                return payment
        elif payment.is_final:
            failure = IllegalTransition(_("The payment is %s.") % payment.get_status_display())
        elif not dto.status.developer_approved:
            failure = IllegalTransition(_("The payment has not been approved."))
        else:
            failure = _complete_locked(payment, dto, txid, source)
    if failure is not None:
        raise failure
    return payment


def verify_transaction(dto: PaymentDTO, txid: str) -> None:
    """Raise :class:`VerificationFailed` unless ``txid`` proves ``dto`` (Pi's flags, Horizon)."""
    if dto.direction != USER_TO_APP:
        raise VerificationFailed(_("Not a user-to-app payment."), code="wrong_direction")
    if dto.network and dto.network != pi_settings.NETWORK:
        raise VerificationFailed(_("The payment is on another network."), code="wrong_network")
    if dto.transaction is None:
        raise VerificationFailed(_("Pi has no transaction for this payment yet."), code="no_tx")
    if dto.txid != txid:
        raise VerificationFailed(
            _("The transaction is not the one Pi linked to the payment."), code="txid_mismatch"
        )
    if not dto.has_verified_transaction:
        raise VerificationFailed(_("Pi has not verified the transaction."), code="not_verified")
    if pi_settings.VERIFY_TRANSACTIONS:
        verify_payment_transaction(dto, txid)


def _complete_locked(payment: Payment, dto: PaymentDTO, txid: str, source: str) -> Exception | None:
    try:
        verify_transaction(dto, txid)
    except VerificationFailed as exc:
        _record_kept(
            payment,
            "verification_failed",
            MAX_VERIFICATION_FAILURES,
            source,
            {"code": exc.code, "txid": txid},
            per_code=True,
        )
        return exc
    except (PiUnavailable, HorizonError) as exc:
        return audit_pi_failure(payment, source, "verify", exc)
    try:
        completed = get_client().complete_payment(payment.identifier, txid)
    except PiError as exc:
        confirmed = reread(payment.identifier)
        if confirmed is None or not (
            confirmed.status.developer_completed and confirmed.txid == txid
        ):
            if payment.status in {S.CREATED, S.APPROVED}:
                transition(payment, S.TRANSACTION_VERIFIED, kind="verified", source=source, dto=dto)
            return audit_pi_failure(payment, source, "complete", exc)
        completed = confirmed
    if not completed.status.developer_completed:
        return audit_pi_failure(
            payment, source, "complete", PiUnavailable("Pi did not mark the payment completed")
        )
    payment.txid = txid
    transition(payment, S.COMPLETED, kind="completed", source=source, dto=completed)
    return None


def cancel(identifier: str, *, source: str = EventSource.ADMIN) -> Payment:
    """Cancel the payment at Pi and record it.

    Raises :class:`IllegalTransition` when the payment is already final here, and
    :class:`PiRefused` (with Pi's code, e.g. ``payment_tx_present``) when Pi refuses; in that
    case the local payment adopts Pi's state. An app-to-user payment is cancelled by
    :func:`~.a2u_resume.cancel_a2u`, which looks on the chain and waits for the deadline first:
    Pi would accept the cancel of one whose transaction landed (it knows none until completion).

    A payment a sandbox lost (``payment_not_found`` to the cancel and to a read, from a
    loopback ``API_BASE_URL``: the sandbox was reset) is cancelled here when no transaction
    paying it is stored or on the chain, since nothing can pay it any more; otherwise it is left
    as it is, with the error. Against Pi, such an answer is only an error: see
    :func:`reread_after`.
    """
    _check_identifier(identifier)
    failure: Exception | None = None
    with atomic():
        payment = lock(identifier)
        if payment is None:
            raise PaymentNotFound(_("No such payment."))
        to_user = payment.direction == Direction.APP_TO_USER
        if payment.is_final:
            raise IllegalTransition(_("The payment is already %s.") % payment.get_status_display())
        if not to_user:
            failure = _cancel_locked(payment, source)
    if to_user:
        from .a2u_resume import cancel_a2u  # a2u_resume builds on this module

        return cancel_a2u(identifier, source=source)
    if failure is not None:
        raise failure
    return payment


def _cancel_locked(payment: Payment, source: str) -> Exception | None:
    try:
        cancelled = get_client().cancel_payment(payment.identifier)
    except PiError as exc:
        latest, lost = reread_after(payment.identifier, exc)
        if lost and cancellable_when_lost(payment):
            return _cancel_unknown_unpaid(payment, source, exc)
        failure = None
        if latest is None or not latest.is_cancelled:
            failure = audit_pi_failure(payment, source, "cancel", exc, state_unknown=latest is None)
        if latest is not None:
            kind = "cancelled" if latest.is_cancelled else "synced"
            adopt(payment, latest, source=source, kind=kind)
        return failure
    if not adopt(payment, cancelled, source=source, kind="cancelled"):
        return PiRefused(_("Pi did not cancel the payment."), code="not_cancelled")
    return None


def _cancel_unknown_unpaid(payment: Payment, source: str, exc: PiError) -> Exception | None:
    """Cancel here the locked payment a sandbox lost, unless the payer's transaction for it is
    on the chain: that one is left as it is, for staff to look into."""
    try:
        txid = get_wallet_horizon().find_payment(
            payment.from_address, payment.identifier, chain_search_start(payment)
        )
    except (PiUnavailable, HorizonError) as horizon_exc:
        return audit_pi_failure(payment, source, "find", horizon_exc)
    if txid is None:
        cancel_unknown(payment, source, "requested")
        return None
    audit_pi_failure(payment, source, "cancel", exc)
    return PiRefused(
        _(
            "The sandbox does not know this payment, but the payer's transaction %(txid)s for "
            "it is on the chain: it is left as it is."
        )
        % {"txid": txid},
        code=NOT_FOUND_CODE,
    )


def sync(
    identifier: str, *, source: str = EventSource.API, dto: PaymentDTO | None = None
) -> Payment:
    """Adopt Pi's truth for the payment, creating the local row when it is new.

    An app-to-user payment goes to :func:`~.a2u_resume.settle_from_pi`, which looks on the chain
    before adopting a cancel: Pi accepts one while the app's transaction is on the chain.
    """
    dto = dto or fetch(identifier)
    if dto.direction == APP_TO_USER:
        from .a2u_resume import settle_from_pi  # a2u_resume builds on this module

        return settle_from_pi(dto, source)
    with atomic():
        payment = lock_and_adopt(dto, source=source)
    return payment


def record_frontend_error(
    identifier: str, error: str, *, source: str = EventSource.CALLBACK
) -> Payment:
    """Audit an error the frontend reported for the payment (the first
    :data:`MAX_FRONTEND_ERRORS` of them), and sync it from Pi."""
    dto = fetch(identifier)
    to_user = dto.direction == APP_TO_USER
    if to_user:
        sync(identifier, source=source, dto=dto)  # stored and synced as a payout is
    with atomic():
        payment, _created = lock_or_create(dto)
        _record_kept(payment, "frontend_error", MAX_FRONTEND_ERRORS, source, {"error": error[:500]})
        if not to_user:
            adopt(payment, dto, source=source)
    return payment


def resolve_incomplete(
    identifier: str,
    txid: str | None = None,
    *,
    source: str = EventSource.CALLBACK,
    dto: PaymentDTO | None = None,
) -> Payment:
    """Settle a payment the Pi SDK reported as incomplete, from Pi's truth.

    Completes it when Pi shows a verified transaction that passes :func:`verify_transaction`;
    otherwise adopts Pi's state (cancelled, approved without a tx...) and returns the payment.
    ``txid``, when given, must be the transaction Pi linked.
    """
    dto = dto or fetch(identifier)
    if txid is not None:
        _check_txid(txid)
        if dto.txid and dto.txid != txid:
            raise VerificationFailed(
                _("The transaction is not the one Pi linked to the payment."),
                code="txid_mismatch",
            )
    if (
        dto.has_verified_transaction
        and not dto.is_cancelled
        and not dto.status.developer_completed
        and dto.direction == USER_TO_APP
        and dto.txid
    ):
        return complete(identifier, dto.txid, source=source, dto=dto)
    return sync(identifier, source=source, dto=dto)
