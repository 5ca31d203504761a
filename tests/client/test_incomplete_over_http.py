"""A Pioneer locked out by an incomplete payment, end to end over HTTP.

The Pi SDK refuses a new payment while the user has one with a transaction that the app has not
completed, and hands it to ``onIncompletePaymentFound``; the frontend posts it to ``incomplete``.
Here a real HTTP server (Django's live server) answers the bodies pi-sdk-js and the plain Pi SDK
post, against the sandbox over loopback, for a previous payment stuck at every point. Each test
checks the answer the frontend gets, whether the Pioneer can then pay again, and that Pi's
complete and ``payment_completed`` happen once, as ``docs/frontend.md`` promises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from django_pi_payments.client import get_client
from django_pi_payments.models import Payment
from django_pi_payments.sandbox import SandboxServer, wire
from django_pi_payments.testing import SandboxControlError, SandboxHandle

from ..payments.conftest import SignalLog, signal_log

__all__ = ["signal_log"]  # the payment tests' fixture, shared

FRONTEND_DOC = Path(__file__).resolve().parents[2] / "docs" / "frontend.md"
# The fields of a payment in every answer, as docs/frontend.md lists them.
PAYMENT_FIELDS = {
    "identifier",
    "user_uid",
    "direction",
    "amount",
    "memo",
    "metadata",
    "from_address",
    "to_address",
    "network",
    "txid",
    "status",
    "pi_created_at",
    "approved_at",
    "completed_at",
    "cancelled_at",
    "refund_of",
    "created_at",
    "updated_at",
}
OTHER_TXID = "ab" * 32


class Answer:
    """One HTTP answer of the app: its status and JSON body."""

    def __init__(self, response: requests.Response) -> None:
        self.status = response.status_code
        self.body: dict[str, Any] = response.json()
        self.headers = response.headers

    @property
    def payment(self) -> dict[str, Any]:
        payment: dict[str, Any] = self.body["payment"]
        return payment

    @property
    def error(self) -> str:
        return str(self.body["error"])


def as_sent(dto: dict[str, Any]) -> Any:
    """A PaymentDTO of the sandbox as a browser posts it (amounts as JSON numbers)."""
    return json.loads(wire.dumps(dto))


class Pioneer:
    """A Pi user with a browser: the sandbox plays their wallet, HTTP reaches the app."""

    def __init__(self, sandbox: SandboxHandle, base_url: str, username: str) -> None:
        self.sandbox = sandbox
        self.base_url = base_url
        user, self.token = sandbox.login(username=username)
        self.uid: str = user["uid"]
        self.browser = requests.Session()

    def post(self, route: str, body: Any, **kwargs: Any) -> Answer:
        response = self.browser.post(
            f"{self.base_url}/pi_payment/{route}",
            json=body,
            headers={"Accept": "application/json"},
            **kwargs,
        )
        return Answer(response)

    def restart_browser(self) -> None:
        """The page is reloaded after the app's server restarted: no cookie, no session."""
        self.browser.close()
        self.browser = requests.Session()

    def create(self, amount: str = "3.5") -> str:
        """``Pi.createPayment``: Pi creates the payment (or refuses: ``ongoing_payment_found``)."""
        return str(self.sandbox.create_payment(self.uid, amount, memo="a book")["identifier"])

    def approve(self, identifier: str) -> Answer:
        return self.post("approve", {"paymentId": identifier, "accessToken": self.token})

    def approved(self) -> str:
        identifier = self.create()
        answer = self.approve(identifier)
        assert answer.status == 200, answer.body
        return identifier

    def sign(self, identifier: str, **overrides: Any) -> str:
        """The Pioneer confirms in the wallet: the transaction goes on the chain."""
        return str(self.sandbox.submit_transaction(identifier, **overrides)["txid"])

    def report_incomplete(self, identifier: str) -> Answer:
        """What pi-sdk-js posts for the payment Pi reports to ``onIncompletePaymentFound``."""
        dto = self.sandbox.payment(identifier)
        txid = (dto.get("transaction") or {}).get("txid")
        return self.post("incomplete", {"paymentId": identifier, "transactionId": txid})

    def pays_again(self) -> str:
        """A whole new payment, approved, paid and completed over HTTP."""
        identifier = self.approved()
        txid = self.sign(identifier)
        answer = self.post("complete", {"paymentId": identifier, "transactionId": txid})
        assert (answer.status, answer.payment["status"]) == (200, "completed"), answer.body
        return identifier


@pytest.fixture
def app(live_server: Any, pi_settings_for_sandbox: SandboxHandle) -> str:
    """The app on a real HTTP server, configured for the sandbox: its base URL."""
    return str(live_server.url)


@pytest.fixture
def pioneer(app: str, pi_sandbox: SandboxHandle) -> Iterator[Pioneer]:
    user = Pioneer(pi_sandbox, app, "pioneer")
    yield user
    user.browser.close()


def pi_completes(sandbox: SandboxHandle, identifier: str) -> int:
    """How many times the app called Pi's complete for ``identifier``."""
    return sum(1 for call in sandbox.calls("complete") if identifier in call["path"])


def completions(sandbox: SandboxHandle, log: SignalLog, identifier: str) -> tuple[int, int]:
    """Pi's completes called by the app, and ``payment_completed`` signals, for ``identifier``."""
    return pi_completes(sandbox, identifier), log.count("completed", identifier)


def assert_payment_answer(answer: Answer, status: str) -> dict[str, Any]:
    assert answer.status == 200, answer.body
    assert set(answer.body) == {"payment"}
    assert set(answer.payment) == PAYMENT_FIELDS
    assert answer.payment["status"] == status
    return answer.payment


def assert_error_answer(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert set(answer.body) >= {"error", "detail"}
    assert answer.error == code
    assert answer.body["detail"]


def test_a_paid_payment_is_completed_once_and_the_pioneer_pays_again(
    pioneer: Pioneer, pi_sandbox: SandboxHandle, signal_log: SignalLog
) -> None:
    identifier = pioneer.approved()
    pioneer.sign(identifier)  # ... and the app never heard of the completion
    with pytest.raises(SandboxControlError, match="ongoing_payment_found"):
        pioneer.create()

    pioneer.restart_browser()
    payment = assert_payment_answer(pioneer.report_incomplete(identifier), "completed")

    assert payment["txid"] == pi_sandbox.payment(identifier)["transaction"]["txid"]
    assert completions(pi_sandbox, signal_log, identifier) == (1, 1)
    assert pioneer.pays_again()


@pytest.mark.parametrize("with_txid", [True, False], ids=["pi-sdk-js", "txid-null"])
def test_the_demo_shape_and_a_null_txid_settle_the_same_payment(
    pioneer: Pioneer, pi_sandbox: SandboxHandle, signal_log: SignalLog, with_txid: bool
) -> None:
    identifier = pioneer.approved()
    pioneer.sign(identifier)
    dto = as_sent(pi_sandbox.payment(identifier))
    if not with_txid:
        dto["transaction"] = None

    assert_payment_answer(pioneer.post("incomplete", {"payment": dto}), "completed")
    assert signal_log.count("completed", identifier) == 1


@pytest.mark.parametrize("stuck_at", ["created", "approved"])
def test_a_payment_never_paid_is_reported_and_the_pioneer_pays_again(
    pioneer: Pioneer, pi_sandbox: SandboxHandle, signal_log: SignalLog, stuck_at: str
) -> None:
    identifier = pioneer.create() if stuck_at == "created" else pioneer.approved()

    payment = assert_payment_answer(pioneer.report_incomplete(identifier), stuck_at)

    assert payment["txid"] is None
    assert pioneer.pays_again()  # Pi cancels the unpaid payment for the new one
    assert pi_sandbox.payment(identifier)["status"]["cancelled"] is True
    assert pi_completes(pi_sandbox, identifier) == 0
    assert signal_log.count("completed", identifier) == 0


def test_a_transaction_pi_has_not_verified_yet_blocks_until_it_has(
    pioneer: Pioneer,
    pi_sandbox: SandboxHandle,
    pi_sandbox_server: SandboxServer,
    signal_log: SignalLog,
) -> None:
    identifier = pioneer.approved()
    txid = pioneer.sign(identifier, verified=False)

    waiting = assert_payment_answer(pioneer.report_incomplete(identifier), "approved")

    assert waiting["txid"] == txid  # approved with a txid: still blocking
    with pytest.raises(SandboxControlError, match="ongoing_payment_found"):
        pioneer.create()
    assert pi_completes(pi_sandbox, identifier) == 0
    state = pi_sandbox_server.state
    with state.lock:  # Pi verifies the transaction
        state.payments[identifier].tx_verified = True
        state.save()
    assert_payment_answer(pioneer.report_incomplete(identifier), "completed")
    assert completions(pi_sandbox, signal_log, identifier) == (1, 1)
    assert pioneer.pays_again()


@pytest.mark.parametrize("known_here", [True, False])
def test_a_payment_completed_at_pi_only_is_marked_with_one_signal(
    pioneer: Pioneer, pi_sandbox: SandboxHandle, signal_log: SignalLog, known_here: bool
) -> None:
    if known_here:
        identifier = pioneer.approved()
    else:  # approved by another server of the app, with another database
        identifier = pioneer.create()
        get_client().approve_payment(identifier)
    txid = pioneer.sign(identifier)
    get_client().complete_payment(identifier, txid)  # the answer was lost
    pi_sandbox.clear_calls()

    for _ in range(2):
        assert_payment_answer(pioneer.report_incomplete(identifier), "completed")

    assert signal_log.count("completed", identifier) == 1
    assert pi_completes(pi_sandbox, identifier) == 0
    assert pioneer.pays_again()


@pytest.mark.parametrize(
    ("ending", "status"), [("user_cancel", "user_cancelled"), ("expire_payment", "cancelled")]
)
def test_a_payment_cancelled_at_pi_is_marked_cancelled_once(
    pioneer: Pioneer, pi_sandbox: SandboxHandle, signal_log: SignalLog, ending: str, status: str
) -> None:
    identifier = pioneer.create()
    Payment.objects.create(  # stored here, open, as a callback left it
        identifier=identifier, user_uid=pioneer.uid, amount="3.5", status="created"
    )
    getattr(pi_sandbox, ending)(identifier)

    for _ in range(2):
        assert_payment_answer(pioneer.report_incomplete(identifier), status)

    assert signal_log.count("cancelled", identifier) == 1
    assert pioneer.pays_again()


def test_another_users_payment_is_settled_as_pi_says_and_shown_to_no_one_else(
    pioneer: Pioneer, app: str, pi_sandbox: SandboxHandle, signal_log: SignalLog
) -> None:
    other = Pioneer(pi_sandbox, app, "other")
    identifier = other.approved()
    other.sign(identifier)

    assert_payment_answer(pioneer.report_incomplete(identifier), "completed")

    assert signal_log.count("completed", identifier) == 1
    mine = pioneer.browser.get(
        f"{app}/pi_payment/payments/{identifier}",
        headers={"Authorization": f"Bearer {pioneer.token}"},
    )
    assert mine.status_code == 404
    assert Payment.objects.get(identifier=identifier).pi_user.uid == other.uid  # type: ignore[union-attr]
    other.browser.close()


def test_a_payout_handed_to_incomplete_is_only_synced(
    pioneer: Pioneer, pi_sandbox: SandboxHandle, signal_log: SignalLog
) -> None:
    payout = get_client().create_payment(pioneer.uid, Decimal("1.5"), "a payout").identifier
    pi_sandbox.clear_calls()

    body = {"paymentId": payout, "transactionId": OTHER_TXID}
    payment = assert_payment_answer(pioneer.post("incomplete", body), "approved")

    assert (payment["direction"], payment["txid"]) == ("app_to_user", None)
    assert {call["route"] for call in pi_sandbox.calls()} == {"get_payment"}
    assert signal_log.received == []


@pytest.mark.parametrize("against", ["pi", "chain"])
def test_a_txid_that_does_not_pay_it_changes_nothing(
    pioneer: Pioneer, pi_sandbox: SandboxHandle, signal_log: SignalLog, against: str
) -> None:
    identifier = pioneer.approved()
    if against == "pi":  # a transaction id Pi did not link to the payment
        pioneer.sign(identifier)
        answer = pioneer.post("incomplete", {"paymentId": identifier, "transactionId": OTHER_TXID})
        code = "txid_mismatch"
    else:  # Pi linked and verified a transaction that pays less
        pioneer.sign(identifier, amount="0.5", verified=True)
        answer = pioneer.report_incomplete(identifier)
        code = "tx_payment_mismatch"

    assert_error_answer(answer, 400, code)
    assert Payment.objects.get(identifier=identifier).status == "approved"
    assert pi_completes(pi_sandbox, identifier) == 0
    assert signal_log.count("completed", identifier) == 0


def test_concurrent_resubmissions_complete_once(
    pioneer: Pioneer, app: str, pi_sandbox: SandboxHandle, signal_log: SignalLog
) -> None:
    identifier = pioneer.approved()
    txid = pioneer.sign(identifier)
    bodies = [
        ("incomplete", {"paymentId": identifier, "transactionId": txid}),
        ("incomplete", {"paymentId": identifier, "transactionId": None}),
        ("complete", {"paymentId": identifier, "transactionId": txid}),
        ("incomplete", {"payment": as_sent(pi_sandbox.payment(identifier))}),
    ] * 2

    def send(route_body: tuple[str, Any]) -> Answer:
        route, body = route_body
        return Answer(requests.post(f"{app}/pi_payment/{route}", json=body))

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(send, bodies))

    # A busy database (SQLite's one writer) may refuse a few: nothing changed, sent again.
    for answer, body in zip(answers, bodies, strict=True):
        if answer.status == 503 and answer.error == "database_busy":
            answer = send(body)
        assert_payment_answer(answer, "completed")
    assert completions(pi_sandbox, signal_log, identifier) == (1, 1)


def test_an_outage_leaves_the_payment_for_the_next_report(
    pioneer: Pioneer, pi_sandbox: SandboxHandle, signal_log: SignalLog
) -> None:
    identifier = pioneer.approved()
    pioneer.sign(identifier)
    pi_sandbox.add_fault("complete", status=503, count=None)

    assert_error_answer(pioneer.report_incomplete(identifier), 503, "pi_unavailable")
    assert signal_log.count("completed", identifier) == 0

    pi_sandbox.clear_faults()
    assert_payment_answer(pioneer.report_incomplete(identifier), "completed")
    assert signal_log.count("completed", identifier) == 1


def test_an_expired_token_is_refused_until_the_pioneer_signs_in_again(
    pioneer: Pioneer, pi_sandbox: SandboxHandle
) -> None:
    identifier = pioneer.create()
    pi_sandbox.expire_token(pioneer.token)

    refused = pioneer.approve(identifier)

    assert_error_answer(refused, 401, "token_expired")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert not Payment.objects.filter(identifier=identifier).exists()
    # incomplete needs no token: an expired one does not keep a paid payment stuck
    assert_payment_answer(pioneer.report_incomplete(identifier), "created")
    pioneer.token = pi_sandbox.create_token(pioneer.uid)  # Pi.authenticate again
    assert_payment_answer(pioneer.approve(identifier), "approved")


def incomplete_section() -> str:
    text = FRONTEND_DOC.read_text(encoding="utf-8")
    match = re.search(r"^## Incomplete payments.*?(?=^## )", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "docs/frontend.md has no '## Incomplete payments' section"
    return match.group(0)


@pytest.mark.parametrize(
    "answer",
    [
        "200 `completed`",
        "200 `cancelled`",
        "200 `user_cancelled`",
        "200 `created`",
        "200 `approved`",
        "400 `txid_mismatch`",
        "400 `tx_payment_mismatch`",
        "404 `payment_not_found`",
        "503 `pi_unavailable`",
        "503 `database_busy`",
    ],
)
def test_the_frontend_doc_says_what_to_do_with_each_answer(answer: str) -> None:
    status, code = answer.split(" ", 1)
    rows = [line for line in incomplete_section().splitlines() if line.startswith("|")]
    assert any(status in row and code in row for row in rows), answer


def test_the_doc_names_every_field_of_a_payment() -> None:
    text = FRONTEND_DOC.read_text(encoding="utf-8")
    example = text.split('{"payment": {', 1)[1].split("}}", 1)[0]
    assert set(re.findall(r'"(\w+)":', example)) - {"order_id"} == PAYMENT_FIELDS
