"""Fixtures of the app-to-user tests: a real app wallet in the sandbox, signals, crashes.

The app wallet is a fresh ``stellar_sdk`` key pair: its account is registered in the sandbox's
Horizon, the sandbox creates A2U payments from it (config ``app_wallet_address``), and its seed is
``PI_PAYMENTS["WALLET_PRIVATE_SEED"]``. The seed is also watched by the suite's leak guard: it
must reach no log record and no database row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.dispatch import Signal
from django.utils import timezone
from stellar_sdk import Keypair

from django_pi_payments import signals
from django_pi_payments.models import Payment, PaymentEvent
from django_pi_payments.testing import SandboxHandle

APP_WALLET_BALANCE = 100000


class Crash(BaseException):
    """The process dies here: not an ``Exception``, so nothing in the app catches it."""


@pytest.fixture
def wallet(
    pi_settings_for_sandbox: SandboxHandle, settings: Any, watched_secrets: set[str]
) -> Keypair:
    """The app wallet, registered in the sandbox and configured as ``WALLET_PRIVATE_SEED``."""
    keypair = Keypair.random()
    pi_settings_for_sandbox.add_account(keypair.public_key, balance=APP_WALLET_BALANCE)
    pi_settings_for_sandbox.set_config(app_wallet_address=keypair.public_key)
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "WALLET_PRIVATE_SEED": keypair.secret}
    watched_secrets.add(keypair.secret)
    return keypair


@pytest.fixture
def a2u(wallet: Keypair, pi_sandbox: SandboxHandle, transactional_db: None) -> SandboxHandle:
    """The sandbox, with the wallet configured and a database that really commits (signals)."""
    return pi_sandbox


@pytest.fixture
def pioneer(pi_sandbox: SandboxHandle) -> str:
    """A new Pioneer with a wallet: their uid."""
    return str(pi_sandbox.create_user(username="payee")["uid"])


@dataclass
class SignalLog:
    """Every payment signal received: ``(name, identifier)`` and the keyword arguments."""

    received: list[tuple[str, str]] = field(default_factory=list)
    kwargs: list[dict[str, Any]] = field(default_factory=list)

    def count(self, name: str, identifier: str | None = None) -> int:
        return sum(
            1 for n, i in self.received if n == name and (identifier is None or i == identifier)
        )

    def by_name(self) -> Counter[str]:
        return Counter(name for name, _ in self.received)


@pytest.fixture
def signal_log() -> Iterator[SignalLog]:
    log = SignalLog()
    watched: dict[str, Signal] = {
        "approved": signals.payment_approved,
        "completed": signals.payment_completed,
        "cancelled": signals.payment_cancelled,
        "refunded": signals.payment_refunded,
    }
    receivers = []
    for name, signal in watched.items():

        def receiver(sender: Any, payment: Payment, _name: str = name, **kwargs: Any) -> None:
            log.received.append((_name, payment.identifier))
            log.kwargs.append({**kwargs, "name": _name, "payment": payment})

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def ledger_for(sandbox: SandboxHandle, identifier: str) -> list[dict[str, Any]]:
    """The sandbox ledger's transactions whose memo is ``identifier``."""
    return [tx for tx in sandbox.ledger() if tx["memo"] == identifier]


def kinds(identifier: str) -> list[str]:
    """The payment's audit events, oldest first."""
    events = PaymentEvent.objects.filter(payment__identifier=identifier).order_by(
        "created_at", "id"
    )
    return list(events.values_list("kind", flat=True))


def crash_after(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Make ``owner.name`` run for real, then :class:`Crash` (once); return what it returned."""
    real = getattr(owner, name)
    results: list[Any] = []

    def crashing(*args: Any, **kwargs: Any) -> Any:
        results.append(real(*args, **kwargs))
        monkeypatch.setattr(owner, name, real)
        raise Crash(name)

    monkeypatch.setattr(owner, name, crashing)
    return results


# Seconds after which no transaction signed for a payment can land: A2U_RESUME_TIMEOUT (600 s)
# and the clock margin.
PAST_THE_DEADLINE = 600 + 61


def backdate(payment: Payment, seconds: float) -> None:
    """Make ``payment`` as old as ``seconds``, here and at Pi."""
    moment = timezone.now() - timedelta(seconds=seconds)
    Payment.objects.filter(pk=payment.pk).update(created_at=moment, pi_created_at=moment)
