"""``/sandbox/pi-sdk.js`` in a real browser: the Pi SDK's flows, callbacks, retries and timeouts.

A test page on its own origin loads the script from the sandbox (so every control call is a CORS
call, as from a shop) and records each callback in ``window.events``. The test plays the app's
server: it approves and completes through the Platform API with the server key.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect

from django_pi_payments.sandbox import SandboxServer
from django_pi_payments.testing import SandboxHandle

pytestmark = pytest.mark.browser

# Callbacks that record their arguments (a PaymentDTO as its identifier, an Error as its message).
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Pi SDK test page</title>
<script src="{sandbox}/sandbox/pi-sdk.js"></script>
<script>
window.events = [];
const shown = (a) => (a && a.identifier ? a.identifier : a instanceof Error ? a.message : a);
window.record = (name) => (...args) => {{ events.push([name, ...args.map(shown)]); }};
window.callbacks = () => ({{
  onReadyForServerApproval: record("approve"),
  onReadyForServerCompletion: record("complete"),
  onCancel: record("cancel"),
  onError: record("error"),
}});
window.signIn = (scopes = ["payments", "username"]) => Pi.authenticate(scopes, record("incomplete"))
  .then((auth) => (window.auth = auth), (error) => (window.authError = error.message));
</script></head><body><h1>Pi SDK test page</h1></body></html>
"""
FAST = "{version: '2.0', sandbox: true, sandboxRetryMs: 400, sandboxPollMs: 100}"


@pytest.fixture(scope="module")
def page_url(pi_sandbox_server: SandboxServer) -> Iterator[str]:
    """The URL of the test page, served from its own origin."""
    body = PAGE.format(sandbox=pi_sandbox_server.url).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


class App:
    """The app's server side, done by the test through the Platform API."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.url = sandbox.url
        self.headers = {"Authorization": f"Key {sandbox.api_key}"}

    def approve(self, identifier: str) -> None:
        response = requests.post(
            f"{self.url}/v2/payments/{identifier}/approve", headers=self.headers, timeout=5
        )
        assert response.status_code == 200, response.text

    def complete(self, identifier: str, txid: str) -> None:
        response = requests.post(
            f"{self.url}/v2/payments/{identifier}/complete",
            headers=self.headers,
            json={"txid": txid},
            timeout=5,
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def app(pi_sandbox: SandboxHandle) -> App:
    return App(pi_sandbox)


def open_page(context: BrowserContext, page_url: str, init: str = FAST) -> Page:
    page = context.new_page()
    page.goto(page_url)
    page.evaluate(f"() => Pi.init({init})")
    return page


def sign_in_as(page: Page, username: str) -> dict[str, Any]:
    """Authenticate through the sign-in dialog as a new or existing ``username``."""
    page.evaluate("() => { signIn(); }")
    page.get_by_test_id("pi-signin-username").fill(username)
    page.get_by_test_id("pi-signin-submit").click()
    return wait_for_auth(page)


def wait_for_auth(page: Page) -> dict[str, Any]:
    page.wait_for_function("() => window.auth || window.authError")
    auth: dict[str, Any] = page.evaluate("() => window.auth || {error: window.authError}")
    return auth


def events(page: Page, count: int, name: str | None = None) -> list[list[Any]]:
    """Wait until ``count`` events (of ``name``, if given) were recorded; return them."""
    page.wait_for_function(
        "([count, name]) => events.filter((e) => !name || e[0] === name).length >= count",
        arg=[count, name],
    )
    recorded: list[list[Any]] = page.evaluate("() => events")
    return [event for event in recorded if name is None or event[0] == name]


def create_payment(page: Page, amount: str = "3.1415926") -> str:
    """Start a payment; return its identifier (from the first approval callback)."""
    page.evaluate(
        f"() => Pi.createPayment({{amount: {amount}, memo: 'Pie', metadata: {{order_id: 7}}}},"
        " callbacks())"
    )
    identifier: str = events(page, 1, "approve")[0][1]
    return identifier


def paid_payment(pi_sandbox: SandboxHandle, app: App, uid: str) -> str:
    """A payment of ``uid`` approved and paid but never completed by the app."""
    identifier: str = pi_sandbox.create_payment(uid, "2")["identifier"]
    app.approve(identifier)
    pi_sandbox.submit_transaction(identifier)
    return identifier


def test_authenticate_signs_in_a_pioneer_and_remembers_them(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle
) -> None:
    page = open_page(context, page_url)
    expect(page.get_by_test_id("pi-signin-dialog")).to_be_hidden()
    auth = sign_in_as(page, "ada")

    assert auth["user"]["username"] == "ada"
    me = requests.get(
        f"{pi_sandbox.url}/v2/me",
        headers={"Authorization": f"Bearer {auth['accessToken']}"},
        timeout=5,
    ).json()
    assert me["uid"] == auth["user"]["uid"]
    assert sorted(me["credentials"]["scopes"]) == ["payments", "username"]

    again = open_page(context, page_url)  # same browser profile: no dialog
    again.evaluate("() => { signIn(); }")
    assert wait_for_auth(again)["user"] == auth["user"]
    expect(again.get_by_test_id("pi-signin-dialog")).to_have_count(0)


def test_the_sign_in_dialog_offers_existing_pioneers(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle
) -> None:
    grace = pi_sandbox.create_user(username="grace")
    page = open_page(context, page_url)
    page.evaluate("() => { signIn(['username']); }")
    page.get_by_test_id("pi-signin-pioneer").filter(has_text="@grace").click()
    assert wait_for_auth(page)["user"] == {"uid": grace["uid"], "username": "grace"}


def test_declining_to_sign_in_rejects(context: BrowserContext, page_url: str) -> None:
    page = open_page(context, page_url)
    page.evaluate("() => { signIn(); }")
    page.get_by_test_id("pi-signin-cancel").click()
    assert wait_for_auth(page) == {"error": "The Pioneer declined to sign in."}


def test_authenticate_reports_the_incomplete_payment(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle, app: App
) -> None:
    page = open_page(context, page_url)
    uid = sign_in_as(page, "ada")["user"]["uid"]
    identifier = paid_payment(pi_sandbox, app, uid)

    page.evaluate("() => { window.auth = null; signIn(); }")
    assert events(page, 1, "incomplete") == [["incomplete", identifier]]


def test_confirmed_payment_calls_approval_then_completion(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle, app: App
) -> None:
    page = open_page(context, page_url)
    sign_in_as(page, "ada")
    identifier = create_payment(page)
    wallet = page.get_by_test_id("pi-wallet-dialog")
    expect(wallet).to_be_visible()
    expect(page.get_by_test_id("pi-wallet-confirm")).to_be_disabled()  # not approved yet

    app.approve(identifier)
    expect(page.get_by_test_id("pi-wallet-amount")).to_have_text("3.1415926 π")
    expect(page.get_by_test_id("pi-wallet-memo")).to_have_text("Pie")
    page.get_by_test_id("pi-wallet-confirm").click()
    (complete,) = events(page, 1, "complete")
    txid = complete[2]
    assert complete[1] == identifier
    assert pi_sandbox.payment(identifier)["transaction"]["txid"] == txid

    app.complete(identifier, txid)
    expect(wallet).to_have_count(0)
    assert pi_sandbox.payment(identifier)["status"]["developer_completed"] is True
    assert [event[0] for event in events(page, 0)] == ["approve", "complete"]


def test_callbacks_are_retried_until_the_server_acts(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle, app: App
) -> None:
    page = open_page(context, page_url)
    sign_in_as(page, "ada")
    page.evaluate(
        """() => Pi.createPayment({amount: 1, memo: 'Pie', metadata: {}}, {
             ...callbacks(),
             onReadyForServerApproval: (id) => { record('approve')(id); throw new Error('down'); },
             onReadyForServerCompletion: (id, txid) => {
               record('complete')(id, txid); return Promise.reject(new Error('down'));
             },
           })"""
    )
    identifier = events(page, 3, "approve")[0][1]  # called again and again while not approved
    app.approve(identifier)
    page.get_by_test_id("pi-wallet-confirm").click()
    txid = events(page, 3, "complete")[0][2]
    app.complete(identifier, txid)
    expect(page.get_by_test_id("pi-wallet-dialog")).to_have_count(0)
    assert {tuple(event[1:]) for event in events(page, 3, "complete")} == {(identifier, txid)}


def test_approval_timeout_cancels_the_payment(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle
) -> None:
    pi_sandbox.set_config(approval_timeout_seconds=1)
    page = open_page(context, page_url)
    sign_in_as(page, "ada")
    identifier = create_payment(page)

    assert events(page, 1, "cancel") == [["cancel", identifier]]
    expect(page.get_by_test_id("pi-wallet-dialog")).to_have_count(0)
    status = pi_sandbox.payment(identifier)["status"]
    assert (status["cancelled"], status["user_cancelled"]) == (True, False)


def test_cancel_in_the_wallet(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle, app: App
) -> None:
    page = open_page(context, page_url)
    sign_in_as(page, "ada")
    identifier = create_payment(page)
    app.approve(identifier)
    expect(page.get_by_test_id("pi-wallet-confirm")).to_be_enabled()
    page.get_by_test_id("pi-wallet-cancel").click()

    assert events(page, 1, "cancel") == [["cancel", identifier]]
    assert pi_sandbox.payment(identifier)["status"]["user_cancelled"] is True


def test_completion_timeout_reports_an_error_with_the_payment(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle, app: App
) -> None:
    init = (
        "{version: '2.0', sandboxRetryMs: 400, sandboxPollMs: 100, sandboxCompletionTimeoutMs: 800}"
    )
    page = open_page(context, page_url, init)
    sign_in_as(page, "ada")
    identifier = create_payment(page)
    app.approve(identifier)
    page.get_by_test_id("pi-wallet-confirm").click()

    assert events(page, 1, "error") == [
        ["error", "The app did not complete the payment in time.", identifier]
    ]
    expect(page.get_by_test_id("pi-wallet-dialog")).to_have_count(0)


def test_a_paid_incomplete_payment_blocks_a_new_one(
    context: BrowserContext, page_url: str, pi_sandbox: SandboxHandle, app: App
) -> None:
    page = open_page(context, page_url)
    uid = sign_in_as(page, "ada")["user"]["uid"]
    identifier = paid_payment(pi_sandbox, app, uid)
    page.evaluate("() => Pi.createPayment({amount: 1, memo: 'Pie', metadata: {}}, callbacks())")

    assert events(page, 1, "error")[0][1].startswith("You need to complete the ongoing payment")
    assert events(page, 1, "incomplete") == [["incomplete", identifier]]
    expect(page.get_by_test_id("pi-wallet-dialog")).to_have_count(0)


def test_create_payment_needs_authenticate_and_the_payments_scope(
    context: BrowserContext, page_url: str
) -> None:
    page = open_page(context, page_url)
    page.evaluate("() => Pi.createPayment({amount: 1, memo: 'Pie', metadata: {}}, callbacks())")
    assert events(page, 1, "error") == [
        ["error", "Call Pi.authenticate() before Pi.createPayment()."]
    ]

    sign_in_as(page, "ada")
    page.evaluate("() => { window.auth = null; signIn(['username']); }")
    wait_for_auth(page)
    page.evaluate("() => Pi.createPayment({amount: 1, memo: 'Pie', metadata: {}}, callbacks())")
    assert events(page, 2, "error")[1] == [
        "error",
        'Cannot create a payment without "payments" scope.',
    ]


def test_pi_must_be_initialised_first(context: BrowserContext, page_url: str) -> None:
    page = context.new_page()
    page.goto(page_url)
    page.evaluate("() => { signIn(); }")
    assert wait_for_auth(page) == {"error": "Call Pi.init() before Pi.authenticate()."}
