"""The only code that changes payment state. Views, the admin and commands all call it."""

from .a2u import A2UBusy, A2UCreationUnknown, RecipientNotFound, refund, send_payment
from .a2u_resume import A2UCancelTooEarly, A2UError, resume_a2u
from .core import acting_as
from .payments import (
    approve,
    cancel,
    complete,
    fetch,
    record_frontend_error,
    resolve_incomplete,
    sync,
    verify_transaction,
)
from .refunds import RefundRefused, refundable_amount

__all__ = [
    "A2UBusy",
    "A2UCancelTooEarly",
    "A2UCreationUnknown",
    "A2UError",
    "RecipientNotFound",
    "RefundRefused",
    "acting_as",
    "approve",
    "cancel",
    "complete",
    "fetch",
    "record_frontend_error",
    "refund",
    "refundable_amount",
    "resolve_incomplete",
    "resume_a2u",
    "send_payment",
    "sync",
    "verify_transaction",
]
