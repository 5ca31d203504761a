"""Fixtures of the admin tests: payments brought into each state through the real flow.

Every payment is created in the Pi sandbox by a fresh Pioneer (the sandbox cancels a Pioneer's
open payment when the same Pioneer starts another), then moved with the services exactly as the
frontend callbacks would move it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.dispatch import Signal
from django.test import Client
from django.urls import reverse

from django_pi_payments import services, signals
from django_pi_payments.models import Payment, PiUser

SCOPES = ["payments", "username"]


@dataclass
class PaymentMaker:
    """Creates Pioneers and payments in the sandbox and moves them with the services."""

    sandbox: Any
    made: int = 0

    def pioneer(self) -> PiUser:
        """A new Pioneer in the sandbox and its ``PiUser`` here."""
        self.made += 1
        data = self.sandbox.create_user(username=f"pioneer{self.made}", scopes=SCOPES)
        uid = data["uid"]
        user = get_user_model().objects.create_user(username=f"pi-{uid}")
        return PiUser.objects.create(user=user, uid=uid, username=data["username"], scopes=SCOPES)

    def start(self, amount: str = "3.14") -> tuple[str, PiUser]:
        """A new U2A payment at Pi (nothing stored here yet): its identifier and payer."""
        pi_user = self.pioneer()
        dto = self.sandbox.create_payment(
            pi_user.uid, amount, memo="Admin test order", metadata={"order": self.made}
        )
        return dto["identifier"], pi_user

    def created(self) -> Payment:
        """Known here, not approved."""
        identifier, _ = self.start()
        return services.sync(identifier)

    def approved(self) -> Payment:
        """Approved here and at Pi; no transaction."""
        identifier, pi_user = self.start()
        return services.approve(identifier, pi_user)

    def paid(self, **tx_overrides: Any) -> Payment:
        """Approved here; at Pi the Pioneer's transaction is linked (and verified if it matches)."""
        payment = self.approved()
        self.sandbox.submit_transaction(payment.identifier, **tx_overrides)
        return payment

    def verified(self) -> Payment:
        """Like :meth:`paid`, then synced: the transaction is known here too."""
        payment = self.paid()
        return services.sync(payment.identifier)

    def completed(self) -> Payment:
        """Completed here and at Pi, through the complete callback's service."""
        payment = self.approved()
        txid = self.sandbox.submit_transaction(payment.identifier)["txid"]
        return services.complete(payment.identifier, txid)

    def user_cancelled(self) -> Payment:
        """Cancelled by the Pioneer at Pi after the approval, and synced here."""
        payment = self.approved()
        self.sandbox.user_cancel(payment.identifier)
        return services.sync(payment.identifier)


@pytest.fixture
def make(pi_sandbox: Any, pi_settings_for_sandbox: Any) -> PaymentMaker:
    """Payments in every state, against the sandbox."""
    return PaymentMaker(pi_sandbox)


@dataclass
class SignalLog:
    """Counts the business signals sent, per signal name and payment identifier."""

    sent: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, name: str, payment: Payment) -> int:
        """How many times ``name`` was sent for ``payment``."""
        return self.sent[(name, payment.identifier)]

    def total(self) -> int:
        """How many signals were sent at all."""
        return sum(self.sent.values())


@pytest.fixture
def signal_log() -> Iterator[SignalLog]:
    """Record every ``payment_approved``/``payment_completed``/``payment_cancelled``."""
    log = SignalLog()
    watched: dict[str, Signal] = {
        "payment_approved": signals.payment_approved,
        "payment_completed": signals.payment_completed,
        "payment_cancelled": signals.payment_cancelled,
    }
    receivers = []
    for name, signal in watched.items():

        def receiver(*, payment: Payment, _name: str = name, **kwargs: Any) -> None:
            log.sent[(_name, payment.identifier)] += 1

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)


@pytest.fixture
def staff_client() -> Any:
    """``staff_client("view_payment", "cancel_payment")``: a client logged in as a staff user
    holding exactly those ``pi_payments`` permissions."""

    def login(*codenames: str) -> Client:
        user = get_user_model().objects.create_user(
            username=f"staff{'-'.join(codenames) or '-none'}", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="pi_payments", codename__in=codenames)
        )
        client = Client()
        client.force_login(user)
        return client

    return login


def messages_of(response: Any) -> list[tuple[str, str]]:
    """The (level tag, text) of every message shown on the page, in order.

    Pass the response of a request made with ``follow=True``: the page after the redirect shows
    (and so consumes) the messages the action added.
    """
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def confirm_refund(client: Client, payments: list[Payment], **amounts: str) -> Any:
    """Run *Refund to the payer* as a browser does: show its confirmation page, then post the
    page's form back with ``amounts`` typed into their fields (``follow=True``)."""
    url = reverse("admin:pi_payments_payment_changelist")
    selection: dict[str, Any] = {
        "action": "refund_to_payer",
        "_selected_action": [payment.pk for payment in payments],
    }
    page = client.post(url, selection, follow=True)
    shown = {
        plan.left_field: plan.left_value
        for plan in page.context.get("plans", [])
        if plan.can_refund
    }
    return client.post(url, {**selection, **shown, "post": "yes", **amounts}, follow=True)


def in_changelist_order(payments: list[Payment]) -> list[Payment]:
    """``payments`` in the order the changelist shows them, and an action handles them: newest
    first."""
    return sorted(payments, key=lambda p: (p.created_at, p.pk), reverse=True)
