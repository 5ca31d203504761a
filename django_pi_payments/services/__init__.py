"""The only code that changes payment state. Views, the admin and commands all call it."""

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

__all__ = [
    "approve",
    "cancel",
    "complete",
    "fetch",
    "record_frontend_error",
    "resolve_incomplete",
    "sync",
    "verify_transaction",
]
