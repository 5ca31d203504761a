"""Reuse the payment fixtures (flows, signal log) for the reconcile tests."""

from tests.payments.conftest import api, app, flow, shopper, signal_log

__all__ = ["api", "app", "flow", "shopper", "signal_log"]
