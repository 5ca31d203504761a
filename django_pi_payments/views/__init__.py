"""HTTP endpoints: a thin layer over :mod:`django_pi_payments.services` and ``auth``."""

from .auth import AuthView, MeView
from .payments import (
    ApproveView,
    CancelView,
    CompleteView,
    ErrorView,
    IncompleteView,
    PaymentDetailView,
    PaymentListView,
)

__all__ = [
    "ApproveView",
    "AuthView",
    "CancelView",
    "CompleteView",
    "ErrorView",
    "IncompleteView",
    "MeView",
    "PaymentDetailView",
    "PaymentListView",
]
