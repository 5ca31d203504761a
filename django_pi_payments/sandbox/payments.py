"""Payment rules of the Platform API (``PI_PLATFORM_API.md`` §3, §4) and of the Pioneer's side.

Every function takes the :class:`~.state.SandboxState`, works under its lock, raises
:class:`~.errors.SandboxError` for a rejected transition and saves the state after a change.
Approval timeouts are evaluated lazily: :func:`sweep` runs before every payment access.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .errors import SandboxError
from .ids import is_account_id, new_identifier, new_txid
from .models import A2U, U2A, LedgerTx, Payment, User
from .state import SandboxState
from .wire import MAX_AMOUNT, MAX_DECIMALS, parse_amount

__all__ = [
    "approve",
    "cancel",
    "complete",
    "create_a2u",
    "create_u2a",
    "expire",
    "get_payment",
    "incomplete_server_payments",
    "incomplete_user_payment",
    "submit_user_transaction",
    "sweep",
    "user_cancel",
]

ONGOING_MESSAGE = "You need to complete the ongoing payment first to create a new one."
AMOUNT_MESSAGE = (
    f"The amount must be a positive number up to {MAX_AMOUNT} with at most {MAX_DECIMALS} decimals."
)


def _invalid(message: str) -> SandboxError:
    return SandboxError("invalid_arguments", message)


def _object(body: Any) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise _invalid("The request body must be a JSON object.")
    return body


def _cancel(state: SandboxState, payment: Payment, *, by_user: bool = False) -> None:
    payment.cancelled = True
    payment.user_cancelled = payment.user_cancelled or by_user
    state.awaiting_approval.discard(payment.identifier)


def sweep(state: SandboxState) -> None:
    """Cancel the U2A payments left unapproved past ``approval_timeout_seconds`` (0 = never)."""
    timeout = state.config.approval_timeout_seconds
    with state.lock:
        if not timeout or not state.awaiting_approval:
            return
        deadline = state.now() - timeout
        expired = [
            state.payments[identifier]
            for identifier in state.awaiting_approval
            if state.payments[identifier].created_at <= deadline
        ]
        for payment in expired:
            _cancel(state, payment)
        if expired:
            state.save()


def get_payment(state: SandboxState, identifier: str) -> Payment:
    """Return a payment; raise ``payment_not_found``."""
    with state.lock:
        sweep(state)
        payment = state.payments.get(identifier)
        if payment is None:
            raise SandboxError("payment_not_found", f"Payment with id {identifier} was not found.")
        return payment


def _payment_args(data: Mapping[str, Any], *, with_uid: bool) -> tuple[Decimal, str, Any, Any]:
    for name in ("amount", "memo", "uid") if with_uid else ("amount", "memo"):
        if data.get(name) is None:
            raise SandboxError("missing_param", f"Missing parameter: {name}.")
    amount = parse_amount(data["amount"])
    if amount is None:
        raise SandboxError("invalid_amount", AMOUNT_MESSAGE)
    memo = data["memo"]
    if not isinstance(memo, str):
        raise _invalid("The memo must be a string.")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise SandboxError("invalid_metadata", "The metadata must be a JSON object.")
    uid = data.get("uid")
    if with_uid and not isinstance(uid, str):
        raise _invalid("The uid must be a string.")
    return amount, memo, dict(metadata), uid


def _wallet(user: User) -> str:
    if user.wallet_address is None:
        raise SandboxError("missing_wallet", f"User {user.uid} has no wallet address.")
    return user.wallet_address


def _new_payment(
    state: SandboxState, user: User, direction: str, args: tuple[Decimal, str, Any, Any]
) -> Payment:
    amount, memo, metadata, _ = args
    app_wallet, user_wallet = state.config.app_wallet_address, _wallet(user)
    payment = Payment(
        identifier=new_identifier(),
        user_uid=user.uid,
        direction=direction,
        amount=amount,
        memo=memo,
        metadata=metadata,
        from_address=app_wallet if direction == A2U else user_wallet,
        to_address=user_wallet if direction == A2U else app_wallet,
        network=state.config.network,
        created_at=state.now(),
        developer_approved=direction == A2U,
    )
    state.payments[payment.identifier] = payment
    if direction == U2A:
        state.awaiting_approval.add(payment.identifier)
    state.save()
    return payment


def create_a2u(state: SandboxState, body: Any) -> Payment:
    """``POST /v2/payments``: create an app-to-user payment (already approved)."""
    data = _object(body)
    wrapped = data.get("payment")
    if wrapped is None and state.config.lenient_create_body and "payment" not in data:
        wrapped = data
    if not isinstance(wrapped, Mapping):
        raise _invalid('The request body must be {"payment": {amount, memo, metadata, uid}}.')
    args = _payment_args(wrapped, with_uid=True)
    with state.lock:
        sweep(state)
        user = state.get_user(args[3])
        _wallet(user)
        per_user = state.config.a2u_lock_scope == "user"
        for payment in state.payments.values():
            blocks = not per_user or payment.user_uid == user.uid
            if payment.direction == A2U and payment.is_open and blocks:
                raise SandboxError("ongoing_payment_found", ONGOING_MESSAGE, payment=payment)
        return _new_payment(state, user, A2U, args)


def approve(state: SandboxState, identifier: str) -> Payment:
    """``POST /v2/payments/{id}/approve``: idempotent unless ``duplicate_approve_error``."""
    with state.lock:
        payment = get_payment(state, identifier)
        if payment.direction == A2U:
            raise _invalid("App-to-user payments are approved automatically.")
        if payment.cancelled:
            raise SandboxError("cancelled_payment", "This payment was cancelled.")
        if payment.developer_approved:
            code = state.config.duplicate_approve_error
            if code is not None:
                raise SandboxError(code, "This payment was already approved.", payment=payment)
            return payment
        payment.developer_approved = True
        state.awaiting_approval.discard(identifier)
        state.save()
        return payment


def _verification_error(state: SandboxState, payment: Payment, txid: str) -> str | None:
    tx = state.transactions.get(txid)
    if tx is None:
        return "tx_not_found"
    checks = (
        (tx.successful, "tx_not_successful"),
        (tx.memo == payment.identifier, "tx_memo_payment_identifier_mismatch"),
        (tx.source_account == payment.from_address, "tx_source_mismatch"),
        (tx.destination == payment.to_address, "tx_destination_mismatch"),
        (tx.amount == payment.amount, "tx_amount_mismatch"),
    )
    return next((error for passed, error in checks if not passed), None)


def complete(state: SandboxState, identifier: str, body: Any) -> Payment:
    """``POST /v2/payments/{id}/complete`` with ``{"txid"}``."""
    data = _object(body)
    with state.lock:
        payment = get_payment(state, identifier)
        if payment.cancelled:
            raise SandboxError("cancelled_payment", "This payment was cancelled.")
        if payment.developer_completed:
            raise SandboxError("already_completed", "This payment was already completed.")
        txid = data.get("txid")
        if not (isinstance(txid, str) and txid):
            raise SandboxError("missing_txid", "Missing parameter: txid.")
        if payment.txid is not None and txid != payment.txid:
            raise SandboxError(
                "txid_mismatch", "The txid does not match the payment's transaction."
            )
        if payment.direction == A2U and payment.txid is None:
            error = _verification_error(state, payment, txid)
            if error is not None:
                raise SandboxError(
                    "verification_failed",
                    "The transaction does not match the payment.",
                    verification_error=error,
                )
            payment.txid, payment.tx_verified = txid, True
        if payment.txid is None or not payment.tx_verified:
            raise SandboxError("not_verified", "The payment's transaction is not verified yet.")
        payment.developer_completed = True
        state.save()
        return payment


def cancel(state: SandboxState, identifier: str) -> Payment:
    """``POST /v2/payments/{id}/cancel``."""
    with state.lock:
        payment = get_payment(state, identifier)
        if payment.developer_completed:
            raise SandboxError("already_completed", "This payment is completed.", payment=payment)
        if payment.cancelled:
            raise SandboxError("cancelled_payment", "This payment is cancelled.", payment=payment)
        if payment.txid is not None:
            raise SandboxError(
                "payment_tx_present",
                "You cannot cancel this payment, because an associated blockchain transaction "
                "has been recorded.",
            )
        _cancel(state, payment)
        state.save()
        return payment


def incomplete_server_payments(state: SandboxState) -> list[Payment]:
    """Open A2U payments, and U2A payments with a verified tx awaiting completion."""
    with state.lock:
        sweep(state)
        return [
            payment
            for payment in state.payments.values()
            if payment.is_open and (payment.direction == A2U or payment.tx_verified)
        ]


def incomplete_user_payment(state: SandboxState, user: User) -> Payment | None:
    """The user's U2A payment with a transaction that the app has not completed, if any.

    What the Pi Browser reports to ``onIncompletePaymentFound`` (Pi's client route
    ``GET /v2/payments/incomplete``); the newest one when there are several.
    """
    with state.lock:
        sweep(state)
        found = [
            payment
            for payment in state.payments.values()
            if payment.user_uid == user.uid
            and payment.direction == U2A
            and payment.is_open
            and payment.txid is not None
        ]
        return max(found, key=lambda payment: payment.created_at, default=None)


def create_u2a(state: SandboxState, body: Any) -> Payment:
    """Control API: the Pioneer (``uid`` or ``access_token``) starts a U2A payment.

    An open payment of that user without a tx is cancelled; one with a tx blocks the new one.
    """
    data = _object(body)
    args = _payment_args(data, with_uid=False)
    with state.lock:
        sweep(state)
        if "access_token" in data:
            user, _ = state.authenticate_bearer(f"Bearer {data['access_token']}")
        else:
            user = state.get_user(data.get("uid"))
        if "payments" not in user.scopes:
            raise SandboxError("missing_scope", "The user did not grant the payments scope.")
        _wallet(user)
        previous = [
            payment
            for payment in state.payments.values()
            if payment.user_uid == user.uid and payment.direction == U2A and payment.is_open
        ]
        for payment in previous:
            if payment.txid is not None:
                raise SandboxError("ongoing_payment_found", ONGOING_MESSAGE, payment=payment)
        for payment in previous:
            _cancel(state, payment)
        return _new_payment(state, user, U2A, args)


def _address(data: Mapping[str, Any], name: str, default: str) -> str:
    value = data.get(name, default)
    if not is_account_id(value):
        raise SandboxError("invalid_address", f"{name} {value!r} is not a valid account id.")
    return str(value)


def _flag(data: Mapping[str, Any], name: str, default: bool | None) -> bool | None:
    value = data.get(name, default)
    if value is not None and not isinstance(value, bool):
        raise _invalid(f'"{name}" must be a boolean.')
    return value


def submit_user_transaction(
    state: SandboxState, identifier: str, body: Any
) -> tuple[LedgerTx, Payment]:
    """Control API: put the payment's tx on the ledger, with optional mismatching overrides.

    A U2A payment gets the tx linked, ``verified`` when it matches (or as overridden). For an A2U
    payment the tx comes from the app wallet and is not linked: complete it with the txid.
    """
    data = _object(body)
    with state.lock:
        payment = get_payment(state, identifier)
        if payment.cancelled:
            raise SandboxError("cancelled_payment", "This payment was cancelled.")
        if payment.txid is not None:
            raise SandboxError("payment_tx_present", "This payment already has a transaction.")
        if not payment.developer_approved:
            raise SandboxError("payment_not_approved", "The payment is not approved yet.")
        amount = parse_amount(data.get("amount", payment.amount))
        if amount is None:
            raise SandboxError("invalid_amount", AMOUNT_MESSAGE)
        memo = data.get("memo", payment.identifier)
        if memo is not None and not isinstance(memo, str):
            raise _invalid('"memo" must be a string or null.')
        successful = _flag(data, "successful", True)
        verified = _flag(data, "verified", None)
        tx = state.record_transaction(
            txid=new_txid(identifier, str(state.ledger_sequence)),
            source=_address(data, "from_address", payment.from_address),
            destination=_address(data, "to_address", payment.to_address),
            amount=amount,
            memo=memo,
            successful=bool(successful),
        )
        if payment.direction == U2A:
            matches = _verification_error(state, payment, tx.hash) is None
            payment.txid = tx.hash
            payment.tx_verified = matches if verified is None else verified
            state.save()
        return tx, payment


def user_cancel(state: SandboxState, identifier: str) -> Payment:
    """Control API: the Pioneer cancels a U2A payment (``cancelled`` and ``user_cancelled``)."""
    with state.lock:
        payment = _open_u2a(state, identifier)
        if payment.txid is not None:
            raise SandboxError(
                "payment_tx_present", "The payment has a transaction; it cannot be cancelled."
            )
        _cancel(state, payment, by_user=True)
        state.save()
        return payment


def expire(state: SandboxState, identifier: str) -> Payment:
    """Control API: fire the approval timeout of an unapproved U2A payment now."""
    with state.lock:
        payment = _open_u2a(state, identifier)
        if payment.developer_approved:
            raise _invalid("The payment is approved; the approval timeout no longer applies.")
        _cancel(state, payment)
        state.save()
        return payment


def _open_u2a(state: SandboxState, identifier: str) -> Payment:
    payment = get_payment(state, identifier)
    if payment.direction != U2A:
        raise _invalid("This is an app-to-user payment: the user takes no action on it.")
    if payment.developer_completed:
        raise SandboxError("already_completed", "This payment is completed.")
    if payment.cancelled:
        raise SandboxError("cancelled_payment", "This payment is cancelled.")
    return payment
