"""Fixtures for the payment tests: a configured app, signal recording, and payment flows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from django_pi_payments import signals
from django_pi_payments.models import Payment, PaymentEvent

SIGNALS = {
    "approved": signals.payment_approved,
    "completed": signals.payment_completed,
    "cancelled": signals.payment_cancelled,
}


@dataclass
class SignalLog:
    """Every payment signal received, as ``(name, identifier)``."""

    received: list[tuple[str, str]] = field(default_factory=list)

    def count(self, name: str, identifier: str | None = None) -> int:
        return sum(
            1 for n, i in self.received if n == name and (identifier is None or i == identifier)
        )

    def by_name(self) -> Counter[str]:
        return Counter(name for name, _ in self.received)


@pytest.fixture
def signal_log() -> Iterator[SignalLog]:
    log = SignalLog()
    receivers = []
    for name, signal in SIGNALS.items():

        def receiver(sender: Any, payment: Payment, _name: str = name, **kwargs: Any) -> None:
            log.received.append((_name, payment.identifier))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)


@pytest.fixture
def app(pi_settings_for_sandbox, transactional_db):
    """The app configured for the sandbox, with a database that really commits (signals)."""
    return pi_settings_for_sandbox


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@dataclass
class Shopper:
    uid: str
    token: str
    username: str


@pytest.fixture
def shopper(pi_sandbox) -> Shopper:
    user, token = pi_sandbox.login(username="shopper")
    return Shopper(uid=user["uid"], token=token, username=user["username"])


class Flow:
    """Drives payments through the sandbox (as the Pioneer) and the app's routes."""

    def __init__(self, sandbox: Any, api: APIClient, shopper: Shopper) -> None:
        self.sandbox = sandbox
        self.api = api
        self.shopper = shopper

    def for_new_shopper(self, username: str = "another") -> Flow:
        """The same flow for a new Pioneer (Pi allows one open payment with a tx per user)."""
        user, token = self.sandbox.login(username=username)
        return Flow(self.sandbox, self.api, Shopper(user["uid"], token, user["username"]))

    def post(self, route: str, body: Any, **kwargs: Any) -> Any:
        return self.api.post(f"/pi_payment/{route}", body, format="json", **kwargs)

    def create(self, amount: str = "3.5", memo: str = "a book", **kwargs: Any) -> str:
        created = self.sandbox.create_payment(self.shopper.uid, amount, memo=memo, **kwargs)
        return str(created["identifier"])

    def approve(self, identifier: str) -> Any:
        return self.post("approve", {"paymentId": identifier, "accessToken": self.shopper.token})

    def approved(self, **kwargs: Any) -> str:
        identifier = self.create(**kwargs)
        response = self.approve(identifier)
        assert response.status_code == 200, response.json()
        return identifier

    def paid(self, **tx_overrides: Any) -> tuple[str, str]:
        identifier = self.approved()
        txid = self.sandbox.submit_transaction(identifier, **tx_overrides)["txid"]
        return identifier, str(txid)

    def complete(self, identifier: str, txid: str) -> Any:
        return self.post("complete", {"paymentId": identifier, "transactionId": txid})


@pytest.fixture
def flow(app, pi_sandbox, api, shopper) -> Flow:
    return Flow(pi_sandbox, api, shopper)


def events(identifier: str, kind: str | None = None) -> list[PaymentEvent]:
    queryset = PaymentEvent.objects.filter(payment__identifier=identifier)
    if kind:
        queryset = queryset.filter(kind=kind)
    return list(queryset)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters and the /me cache start empty in every test."""
    cache.clear()
    yield
    cache.clear()
