"""The example shop in a real browser: buy and pay, cancel in the wallet, cancel in the admin.

The shop runs as a subprocess against the session's sandbox; the page loads the sandbox's
``/sandbox/pi-sdk.js``, so the clicks below are the ones a person makes in the Pi Browser.
Screenshots of every step go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from django_pi_payments.client import PiClient
from django_pi_payments.sandbox import SandboxServer
from django_pi_payments.testing import SandboxHandle

from ..example.shop_process import ShopProcess
from .conftest import TIMEOUT_MS, Screenshots

pytestmark = pytest.mark.browser

PIE = "Pi Pie"


def sign_in(page: Page, shop: ShopProcess, username: str, shots: Screenshots) -> None:
    """Open the shop and sign in with Pi as the sandbox Pioneer ``username``."""
    page.goto(shop.url + "/")
    expect(page.get_by_test_id("product").first).to_be_visible()
    shots.take(page, "products")
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("pi-signin-username").fill(username)
    shots.take(page, "pi-sign-in-dialog")
    page.get_by_test_id("pi-signin-submit").click()
    expect(page.get_by_test_id("pioneer")).to_have_text(f"@{username}")
    shots.take(page, "signed-in")


def buy(page: Page, product: str) -> None:
    """Click the product's Buy button and wait for the Pi Wallet to ask for confirmation."""
    page.get_by_test_id("product").filter(has_text=product).get_by_role("button").click()
    expect(page.get_by_test_id("pi-wallet-dialog")).to_be_visible()
    expect(page.get_by_test_id("pi-wallet-confirm")).to_be_enabled()  # the shop approved it


def test_buy_confirm_and_see_the_order_paid(
    page: Page, shop: ShopProcess, pi_sandbox: SandboxHandle
) -> None:
    shots = Screenshots("purchase")
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    sign_in(page, shop, "ada", shots)

    buy(page, PIE)
    expect(page.get_by_test_id("pi-wallet-amount")).to_have_text("3.1415926 π")
    expect(page.get_by_test_id("pi-wallet-memo")).to_have_text(re.compile(r"Order #\d+: Pi Pie"))
    shots.take(page, "pi-wallet-approved")
    page.get_by_test_id("pi-wallet-confirm").click()

    expect(page.get_by_test_id("order-status")).to_have_text("Paid")
    shots.take(page, "order-paid")
    (payment,) = pi_sandbox.payments()
    assert payment["status"]["developer_completed"] is True
    expect(page.get_by_test_id("order-payment")).to_have_text(payment["identifier"])

    page.get_by_role("link", name="Your orders").first.click()
    row = page.get_by_test_id("payment-row")
    expect(row).to_have_attribute("data-identifier", payment["identifier"])
    expect(row).to_have_attribute("data-status", "completed")
    shots.take(page, "orders-and-payments")
    assert errors == []  # nothing failed to load, no script error


def test_cancel_in_the_wallet_cancels_the_order(
    page: Page, shop: ShopProcess, pi_sandbox: SandboxHandle
) -> None:
    shots = Screenshots("wallet-cancel")
    sign_in(page, shop, "grace", shots)

    buy(page, "Coffee")
    shots.take(page, "pi-wallet-approved")
    page.get_by_test_id("pi-wallet-cancel").click()

    expect(page.get_by_test_id("order-status")).to_have_text("Cancelled")
    shots.take(page, "order-cancelled")
    (payment,) = pi_sandbox.payments()
    assert payment["status"]["user_cancelled"] is True


def test_staff_cancels_an_approved_unpaid_payment_in_the_admin(
    browser: Browser, context: BrowserContext, shop: ShopProcess, pi_sandbox: SandboxHandle
) -> None:
    shots = Screenshots("admin-cancel")
    buyer = context.new_page()
    sign_in(buyer, shop, "linus", shots)
    buy(buyer, "Sticker pack")
    shots.take(buyer, "pi-wallet-approved")
    (payment,) = pi_sandbox.payments()
    identifier = payment["identifier"]
    buyer.close()  # the buyer walks away: approved, never paid

    staff_context = browser.new_context(viewport={"width": 1440, "height": 800})
    staff_context.set_default_timeout(TIMEOUT_MS)
    staff = staff_context.new_page()
    staff.goto(shop.url + "/admin/")
    staff.get_by_label("Username").fill("admin")
    staff.get_by_label("Password").fill("admin")
    shots.take(staff, "admin-login")
    staff.get_by_role("button", name="Log in").click()

    staff.goto(shop.url + "/admin/pi_payments/payment/")
    row = staff.locator("#result_list tbody tr").filter(has_text=identifier)
    expect(row).to_contain_text("Approved")
    row.locator("input.action-select").check()
    staff.locator("select[name=action]").select_option(label="Cancel on Pi Network")
    shots.take(staff, "admin-payments")
    # The admin's submit button: "Go" before Django 6.0, "Run" since.
    staff.locator(".actions button[type=submit]").click()

    expect(staff.locator("#pi-cancel-plan")).to_contain_text(identifier)
    shots.take(staff, "admin-cancel-confirmation")
    staff.get_by_role("button", name="Yes, cancel on Pi Network").click()

    # The admin's message template capitalises the first letter: "yW…" reads "YW…".
    cancelled = re.compile(re.escape(f"Payment {identifier}: cancelled."))
    expect(staff.locator(".messagelist")).to_contain_text(cancelled)
    expect(staff.locator("#result_list tbody tr").filter(has_text=identifier)).to_contain_text(
        "Cancelled"
    )
    shots.take(staff, "admin-cancelled")
    staff_context.close()
    assert pi_sandbox.payment(identifier)["status"]["cancelled"] is True

    buyer = context.new_page()  # the buyer comes back: the order followed the payment
    buyer.goto(shop.url + "/orders/")
    expect(buyer.get_by_test_id("order-row")).to_have_attribute("data-status", "cancelled")
    shots.take(buyer, "order-cancelled")


def test_a_failed_completion_is_shown_and_the_next_try_pays(
    page: Page, shop: ShopProcess, pi_sandbox: SandboxHandle
) -> None:
    shots = Screenshots("completion-error")
    sign_in(page, shop, "katherine", shots)
    pi_sandbox.add_fault("complete", status=503, count=None)  # Pi is down when the shop completes

    buy(page, "Coffee")
    page.get_by_test_id("pi-wallet-confirm").click()

    expect(page.get_by_test_id("message")).to_contain_text("Pi Network is unreachable")
    shots.take(page, "completion-error-shown")
    pi_sandbox.clear_faults()  # Pi is back: the Pi SDK calls the shop again (every 10 s)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=3 * TIMEOUT_MS)
    shots.take(page, "order-paid")


def test_a_payment_left_incomplete_is_settled_before_the_next_one(
    browser: Browser, page: Page, shop: ShopProcess, pi_sandbox: SandboxHandle
) -> None:
    shots = Screenshots("incomplete")
    sign_in(page, shop, "margaret", shots)
    pi_sandbox.add_fault("complete", status=503, count=None)
    buy(page, "Coffee")
    page.get_by_test_id("pi-wallet-confirm").click()
    expect(page.get_by_test_id("pi-wallet-status")).to_contain_text("Paid.")
    page.close()  # paid, but the page closed before the shop could complete it
    (unfinished,) = pi_sandbox.payments()
    pi_sandbox.clear_faults()
    pi_sandbox.add_fault("get_payment", delay_ms=1500)  # settling it takes a while

    other_device = browser.new_context(viewport={"width": 1100, "height": 760})
    other_device.set_default_timeout(TIMEOUT_MS)
    buyer = other_device.new_page()
    buyer.goto(shop.url + "/")
    buyer.get_by_test_id("product").filter(has_text=PIE).get_by_role("button").click()
    buyer.get_by_test_id("pi-signin-pioneer").filter(has_text="@margaret").click()
    expect(buyer.get_by_test_id("pi-wallet-confirm")).to_be_enabled()  # not blocked by the first
    shots.take(buyer, "next-payment-approved")
    assert pi_sandbox.payment(unfinished["identifier"])["status"]["developer_completed"] is True
    buyer.get_by_test_id("pi-wallet-confirm").click()
    expect(buyer.get_by_test_id("order-status")).to_have_text("Paid")

    buyer.get_by_role("link", name="Your orders").first.click()
    rows = buyer.get_by_test_id("order-row")
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row).to_have_attribute("data-status", "paid")
    shots.take(buyer, "both-orders-paid")
    other_device.close()


def test_a_payment_pi_has_not_verified_yet_holds_the_next_one_until_it_has(
    page: Page, shop: ShopProcess, pi_sandbox: SandboxHandle, pi_sandbox_server: SandboxServer
) -> None:
    shots = Screenshots("incomplete-unverified")
    grace = pi_sandbox.create_user(username="grace")
    unfinished = pi_sandbox.create_payment(grace["uid"], "1", memo="Order elsewhere")["identifier"]
    # Approved by another server of the app, then paid; Pi has not verified the transaction yet.
    PiClient(pi_sandbox.api_key, base_url=pi_sandbox.url).approve_payment(unfinished)
    pi_sandbox.submit_transaction(unfinished, verified=False)

    page.goto(shop.url + "/")
    buy_pie = page.get_by_test_id("product").filter(has_text=PIE).get_by_role("button")
    buy_pie.click()
    page.get_by_test_id("pi-signin-pioneer").filter(has_text="@grace").click()

    expect(page.get_by_test_id("message")).to_have_text(
        "Your last payment is still being confirmed by Pi Network. Try again in a minute."
    )
    shots.take(page, "still-confirming")
    expect(buy_pie).to_be_enabled()
    assert [payment["identifier"] for payment in pi_sandbox.payments()] == [unfinished]

    state = pi_sandbox_server.state
    with state.lock:  # Pi verifies it: the next click settles it, then pays
        state.payments[unfinished].tx_verified = True
        state.save()
    buy_pie.click()
    expect(page.get_by_test_id("pi-wallet-confirm")).to_be_enabled()
    assert pi_sandbox.payment(unfinished)["status"]["developer_completed"] is True
    page.get_by_test_id("pi-wallet-confirm").click()
    expect(page.get_by_test_id("order-status")).to_have_text("Paid")
    shots.take(page, "next-order-paid")


def test_a_double_click_on_buy_makes_one_order_and_one_payment(
    page: Page, shop: ShopProcess, pi_sandbox: SandboxHandle
) -> None:
    shots = Screenshots("double-click")
    sign_in(page, shop, "hedy", shots)

    buy_pie = page.get_by_test_id("product").filter(has_text=PIE).get_by_role("button")
    buy_pie.dblclick()
    expect(buy_pie).to_be_disabled()
    expect(page.get_by_test_id("pi-wallet-confirm")).to_be_enabled()  # one Pi Wallet dialog
    page.get_by_test_id("pi-wallet-confirm").click()

    expect(page.get_by_test_id("order-status")).to_have_text("Paid")
    assert len(pi_sandbox.payments()) == 1
    page.get_by_role("link", name="Your orders").first.click()
    expect(page.get_by_test_id("order-row")).to_have_count(1)
    shots.take(page, "one-order-paid")
    page.go_back()
    page.go_back()  # the products again, as the browser kept them
    expect(buy_pie).to_be_enabled()


def test_buy_works_again_after_the_pioneer_declines_to_sign_in(
    page: Page, shop: ShopProcess
) -> None:
    page.goto(shop.url + "/")
    buy_pie = page.get_by_test_id("product").filter(has_text=PIE).get_by_role("button")
    buy_pie.click()
    page.get_by_test_id("pi-signin-cancel").click()

    expect(page.get_by_test_id("message")).to_have_text("The Pioneer declined to sign in.")
    expect(buy_pie).to_be_enabled()
    buy_pie.click()
    expect(page.get_by_test_id("pi-signin-dialog")).to_be_visible()
