"""A model-based test of the user-to-app lifecycle: every entry point, in any order, with faults.

A hypothesis state machine drives a few payments (of one Pioneer each, or of the same one, and
their refunds) through everything a user, Pi or an operator can do to them: the frontend's
callbacks over HTTP (approve, complete with the right or a wrong txid, cancel, error, incomplete,
repeated at will, on any identifier), the Pioneer signing or cancelling and Pi expiring a payment
(the sandbox's control API), failing Pi or Horizon calls (an error status, a dropped connection,
a timeout, an answer lost after Pi did the work), ``reconcile()`` runs, and the admin's cancel,
sync and refund (:mod:`django_pi_payments.services`).

After every step:

* a payment completed here is completed at Pi, with the same transaction;
* each payment's status changes form one chain of audit rows from ``created`` to its status
  (one :class:`PaymentEvent` per change, none twice);
* each signal was sent once per transition that sends it, so at most once per payment;
* no answer was a 5xx but a 502 or 503 from a step where an injected fault fired, and no
  service call or reconcile run found Pi unreachable without one, or logged an error;
* the refunds of a payment paid on the chain never add up to more than it, each at most once.

At the end, with the faults cleared and ``reconcile()`` run until it changes nothing, every
stored payment has Pi's status (a payment whose transaction does not pay it is never completed).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db.models import QuerySet
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from django_pi_payments import services
from django_pi_payments.dto import USER_TO_APP, PaymentDTO
from django_pi_payments.exceptions import PaymentError, PiError, PiUnavailable, PiUnreachable
from django_pi_payments.models import EventSource, Payment, PaymentEvent, PaymentStatus
from django_pi_payments.reconcile import reconcile
from django_pi_payments.sandbox.faults import API_ROUTE_IDS
from django_pi_payments.services.core import SIGNALS, status_from_dto
from django_pi_payments.testing import SandboxControlError, SandboxHandle

from ..a2u.conftest import wallet  # noqa: F401 (the app wallet, for refunds)
from .conftest import SignalLog

S = PaymentStatus
POOL = 4
AMOUNTS = ["1", "3.5", "0.3"]
STAGES = ["created", "approved", "signed", "completed"]
# The Pi and Horizon routes a fault can hit (those the lifecycle calls), and what the fault does.
UNCALLED = {"horizon_account_transactions", "horizon_fee_stats", "horizon_root", "horizon_ledgers"}
FAULT_ROUTES = [route for route in API_ROUTE_IDS if route not in UNCALLED]
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"status": 500},
    "503": {"status": 503},
    "drop": {"drop": True},
    "timeout": {"hang": True, "hang_seconds": 0.6},
    "lost_answer": {"after": "respond"},
    "done_but_500": {"after": "respond", "status": 500},
}
TIMEOUT = 0.4
# Which signal each status sends on arrival, by the name the signal log uses.
SIGNAL_KIND = {status: name.removeprefix("payment_") for status, name in SIGNALS.items()}
MACHINE_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class ErrorLog(logging.Handler):
    """The error records of the app's loggers: a reconcile run logs a payment's unexpected
    error (a bug) there, and carries on."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Lifecycle(RuleBasedStateMachine):
    """A few payments, driven through every entry point."""

    sandbox: SandboxHandle
    signal_log: SignalLog
    errors: ErrorLog

    def __init__(self) -> None:
        super().__init__()
        self.sandbox.reset(config=False)
        Payment.objects.exclude(refund_of=None).delete()
        Payment.objects.all().delete()
        self.signal_log.received.clear()
        self.errors.records.clear()
        cache.clear()
        self.tokens: dict[str, str] = {}
        self.uids: list[str] = []
        self.ids: list[str] = []
        self.txids: dict[str, str] = {}
        # Payments whose transaction does not pay them: never to be completed.
        self.bad_tx: set[str] = set()
        self.faults_before: set[str] = set()
        self.stranger = self.sandbox.login(username="stranger")[1]

    # -- helpers -------------------------------------------------------------------------------

    def pick(self, index: int) -> str:
        """One of the payments: the Pioneers' or a refund (anyone can post any identifier)."""
        refunds = Payment.objects.exclude(refund_of=None).order_by("pk")
        pool = self.ids + list(refunds.values_list("identifier", flat=True))
        return pool[index % len(pool)]

    def faults(self) -> set[str]:
        return {fault["id"] for fault in self.sandbox.request("GET", "/sandbox/faults")}

    def fault_fired(self) -> bool:
        return bool(self.faults_before - self.faults())

    def post(self, route: str, body: dict[str, Any]) -> Any:
        cache.clear()  # no throttling: the machine posts far more than a Pioneer would
        self.faults_before = self.faults()
        response = APIClient().post(f"/pi_payment/{route}", body, format="json")
        self.check_answer(route, response)
        return response

    def check_answer(self, route: str, response: Any) -> None:
        status = response.status_code
        body = response.json()
        if status >= 500:
            assert status in (502, 503), (route, status, body)
            assert self.fault_fired(), f"{route} answered {status} without a Pi fault: {body}"
        elif status >= 400:
            assert body["error"], (route, status, body)

    def service(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a service as the admin does: a refusal is an answer (Pi's too), Pi being
        unreachable needs a fault that fired."""
        self.faults_before = self.faults()
        try:
            return call(*args, **kwargs)
        except (PiUnreachable, PiUnavailable) as exc:
            assert self.fault_fired(), f"{call.__name__}: {type(exc).__name__}: {exc}"
        except (PaymentError, PiError):
            pass
        return None

    def paid(self) -> QuerySet[Payment]:
        return Payment.objects.filter(direction=USER_TO_APP, status=S.COMPLETED).order_by("pk")

    def pi(self) -> dict[str, PaymentDTO]:
        return {
            payment["identifier"]: PaymentDTO.from_json(payment)
            for payment in self.sandbox.payments()
        }

    # -- the Pioneers and their payments ------------------------------------------------------

    @initialize(
        stages=st.lists(st.sampled_from(STAGES), min_size=1, max_size=3),
        approve_twice=st.sampled_from([None, "payment_already_approved"]),
    )
    def first_payments(self, stages: list[str], approve_twice: str | None) -> None:
        """Payments of new Pioneers, each taken by the happy path as far as ``stage``;
        ``approve_twice``: Pi's error for a second approve (or none)."""
        self.sandbox.set_config(duplicate_approve_error=approve_twice)
        for stage in stages:
            self.create(again=False, amount=AMOUNTS[len(self.ids) % len(AMOUNTS)])
            identifier = self.ids[-1]
            if stage == "created":
                continue
            token = self.tokens[self.uids[-1]]
            self.post("approve", {"paymentId": identifier, "accessToken": token})
            if stage == "approved":
                continue
            self.txids[identifier] = self.sandbox.submit_transaction(identifier)["txid"]
            if stage == "completed":
                body = {"paymentId": identifier, "transactionId": self.txids[identifier]}
                assert self.post("complete", body).status_code == 200

    @precondition(lambda self: len(self.ids) < POOL)
    @rule(again=st.sampled_from([False, False, True]), amount=st.sampled_from(AMOUNTS))
    def create(self, again: bool, amount: str) -> None:
        """A Pioneer starts a payment; ``again``: the first one, whose open payment without a
        transaction Pi then cancels."""
        if again and self.uids:
            uid = self.uids[0]
        else:
            user, token = self.sandbox.login(username=f"pioneer{len(self.uids)}")
            uid = user["uid"]
            self.uids.append(uid)
            self.tokens[uid] = token
        try:
            created = self.sandbox.create_payment(uid, amount)
        except SandboxControlError as exc:
            assert exc.body["error"] == "ongoing_payment_found", exc.body
            return
        self.ids.append(created["identifier"])

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 2 * POOL - 1), as_payer=st.sampled_from([True, True, False]))
    def approve(self, index: int, as_payer: bool) -> None:
        """onReadyForServerApproval, with the payer's access token or another Pioneer's."""
        identifier = self.pick(index)
        payer = self.sandbox.payment(identifier)["user_uid"]
        token = self.tokens[payer] if as_payer else self.stranger
        response = self.post("approve", {"paymentId": identifier, "accessToken": token})
        if not as_payer:
            assert response.status_code in (403, 502, 503), response.json()

    @precondition(lambda self: self.ids)
    @rule(
        index=st.integers(0, 2 * POOL - 1),
        kind=st.sampled_from(["good", "good", "unverified", "short"]),
    )
    def sign(self, index: int, kind: str) -> None:
        """The Pioneer signs and submits the transaction; Pi verifies it (or not)."""
        open_approved = [
            payment["identifier"]
            for payment in self.sandbox.payments()
            if payment["status"]["developer_approved"]
            and not payment["status"]["cancelled"]
            and payment["direction"] == USER_TO_APP
        ]
        if not open_approved:
            return
        identifier = open_approved[index % len(open_approved)]  # what the wallet shows
        overrides: dict[str, Any] = {
            "good": {},
            "unverified": {"verified": False},
            "short": {"amount": "0.1", "verified": True},  # Pi's flag is wrong; Horizon shows it
        }[kind]
        try:
            result = self.sandbox.submit_transaction(identifier, **overrides)
        except SandboxControlError:
            return  # not approved, cancelled, or signed already
        self.txids[identifier] = result["txid"]
        if kind == "short":
            self.bad_tx.add(identifier)

    @precondition(lambda self: self.ids)
    @rule(
        index=st.integers(0, 2 * POOL - 1),
        which=st.sampled_from(["own", "own", "other", "random"]),
        field=st.sampled_from(["transactionId", "txid"]),
    )
    def complete(self, index: int, which: str, field: str) -> None:
        signed = list(self.txids)  # the frontend hears of a txid once the Pioneer signed
        identifier = signed[index % len(signed)] if which == "own" and signed else self.pick(index)
        others = [txid for other, txid in self.txids.items() if other != identifier]
        txid = {
            "own": self.txids.get(identifier),
            "other": others[0] if others else None,
            "random": None,
        }[which] or secrets.token_hex(32)
        response = self.post("complete", {"paymentId": identifier, field: txid})
        if response.status_code == 200 and txid != self.txids.get(identifier):
            raise AssertionError(f"completed with a txid that is not the payment's: {txid}")

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 2 * POOL - 1), route=st.sampled_from(["cancel", "error"]))
    def frontend_gives_up(self, index: int, route: str) -> None:
        """onCancel or onError."""
        self.post(route, {"paymentId": self.pick(index), "error": "the wallet closed"})

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 2 * POOL - 1), form=st.sampled_from(["txid", "payment", "bare"]))
    def incomplete_callback(self, index: int, form: str) -> None:
        """The Pi SDK's onIncompletePaymentFound, as pi-sdk-js or the Pi demo posts it."""
        identifier = self.pick(index)
        body: dict[str, Any]
        if form == "payment":
            body = {"payment": self.sandbox.payment(identifier)}
        elif form == "txid" and identifier in self.txids:
            body = {"paymentId": identifier, "transactionId": self.txids[identifier]}
        else:
            body = {"paymentId": identifier}
        self.post("incomplete", body)

    # -- Pi ------------------------------------------------------------------------------------

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 2 * POOL - 1), by_pioneer=st.booleans())
    def pi_cancels(self, index: int, by_pioneer: bool) -> None:
        """The Pioneer cancels, or Pi's approval timer expires."""
        cancel = self.sandbox.user_cancel if by_pioneer else self.sandbox.expire_payment
        with contextlib.suppress(SandboxControlError):  # it has a transaction, is approved
            cancel(self.pick(index))  # (the timer), or is final already

    @rule(
        route=st.sampled_from(FAULT_ROUTES),
        fault=st.sampled_from(sorted(FAULTS)),
        alone=st.booleans(),
    )
    def pi_fails_next_call(self, route: str, fault: str, alone: bool) -> None:
        """The next call of ``route`` fails; ``alone``: the faults armed before are cleared."""
        if alone:
            self.sandbox.clear_faults()
        self.sandbox.add_fault(route, **FAULTS[fault])

    # -- the operator --------------------------------------------------------------------------

    @rule(cancel_unpaid=st.booleans())
    def reconcile_runs(self, cancel_unpaid: bool) -> None:
        report = self.service(
            reconcile, older_than=timedelta(0), cancel_unpaid=cancel_unpaid, workers=2
        )
        for outcome in report.outcomes if report else []:
            if outcome.unreachable:
                assert self.fault_fired(), outcome

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 2 * POOL - 1), action=st.sampled_from(["cancel", "sync"]))
    def admin_acts(self, index: int, action: str) -> None:
        """A staff user's action on a stored payment."""
        identifier = self.pick(index)
        if Payment.objects.filter(identifier=identifier).exists():
            with services.acting_as("staff"):
                call = services.cancel if action == "cancel" else services.sync
                self.service(call, identifier, source=EventSource.ADMIN)

    @precondition(lambda self: self.paid().exists())
    @rule(index=st.integers(0, 2 * POOL - 1), share=st.sampled_from(["rest", "part", "whole"]))
    def staff_refunds(self, index: int, share: str) -> None:
        """A staff user refunds a completed payment (an app-to-user payment to the payer)."""
        paid = list(self.paid())
        payment = paid[index % len(paid)]
        amount = {"rest": None, "part": Decimal("0.2"), "whole": payment.amount}[share]
        with services.acting_as("staff"):
            self.service(services.refund, payment, amount)

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def refunds_never_exceed_the_payment(self) -> None:
        ledger: Counter[str] = Counter()
        for tx in self.sandbox.ledger():
            ledger[tx["memo"]] += tx["amount"] if tx["successful"] else 0
        for payment in Payment.objects.filter(direction=USER_TO_APP):
            refunds = Payment.objects.filter(refund_of=payment)
            on_chain = sum((ledger[refund.identifier] for refund in refunds), Decimal(0))
            assert on_chain <= payment.amount, (payment.identifier, on_chain, payment.amount)
            for refund in refunds:
                assert ledger[refund.identifier] in (0, refund.amount), refund.identifier

    @invariant()
    def no_unexpected_error(self) -> None:
        assert not self.errors.records, [record.getMessage() for record in self.errors.records]

    @invariant()
    def completed_here_is_completed_at_pi(self) -> None:
        pi = self.pi()
        for payment in Payment.objects.filter(status=S.COMPLETED):
            dto = pi[payment.identifier]
            assert dto.status.developer_completed, payment.identifier
            assert payment.txid and payment.txid == dto.txid, (payment.txid, dto.txid)
            assert payment.identifier not in self.bad_tx, "a payment its tx does not pay"

    @invariant()
    def one_event_per_status_change(self) -> None:
        for payment in Payment.objects.all():
            moves = [
                (event.from_status, event.to_status)
                for event in PaymentEvent.objects.filter(payment=payment).order_by(
                    "created_at", "pk"
                )
                if event.from_status != event.to_status
            ]
            born = S.CREATED if payment.direction == USER_TO_APP else ""  # a payout: approved
            chain = [born] + [to for _from, to in moves]
            froms = [from_ for from_, _to in moves]
            assert froms == chain[:-1] and chain[-1] == payment.status, (
                payment.identifier,
                moves,
                payment.status,
            )

    @invariant()
    def one_signal_per_transition(self) -> None:
        sent = Counter(self.signal_log.received)
        expected: Counter[tuple[str, str]] = Counter()
        for event in PaymentEvent.objects.select_related("payment"):
            kind = SIGNAL_KIND.get(event.to_status)
            if kind and event.from_status not in ("", event.to_status):
                expected[(kind, event.payment.identifier)] += 1
        assert sent == expected, (sent, expected)
        assert all(count == 1 for count in sent.values()), sent

    def teardown(self) -> None:
        self.sandbox.clear_faults()
        for _run in range(4):
            report = reconcile(older_than=timedelta(0), workers=2)
            if all(outcome.before == outcome.after for outcome in report.outcomes):
                break
        pi = self.pi()
        for payment in Payment.objects.all():
            expected = status_from_dto(pi[payment.identifier])
            if payment.identifier in self.bad_tx:
                assert payment.status != S.COMPLETED, payment.identifier
                assert not pi[payment.identifier].status.developer_completed
            else:
                assert payment.status == expected, (payment.identifier, payment.status, expected)
        self.one_event_per_status_change()
        self.one_signal_per_transition()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("wallet")
def test_u2a_lifecycle(pi_settings_for_sandbox, settings, signal_log):
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "TIMEOUT": TIMEOUT, "MAX_RETRIES": 0}
    Lifecycle.sandbox = pi_settings_for_sandbox
    Lifecycle.signal_log = signal_log
    Lifecycle.errors = ErrorLog()
    logger = logging.getLogger("django_pi_payments")
    logger.addHandler(Lifecycle.errors)
    try:
        run_state_machine_as_test(Lifecycle, settings=MACHINE_SETTINGS)
    finally:
        logger.removeHandler(Lifecycle.errors)
