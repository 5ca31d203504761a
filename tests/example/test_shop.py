"""The example shop over HTTP, against the sandbox: orders, the approval check, the receivers.

A buyer here is a ``requests`` session doing what the shop's frontend does (sign in with a Pi
access token, create an order with the CSRF token, post the pi-sdk-js callbacks); the sandbox's
control API plays the Pioneer's wallet.
"""

from __future__ import annotations

import html
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
import requests

from django_pi_payments.testing import SandboxHandle

from .shop_process import ShopProcess

PIE_PRICE = Decimal("3.1415926")


class Buyer:
    """A Pioneer signed in to the shop (a session with its cookies)."""

    def __init__(self, shop: ShopProcess, sandbox: SandboxHandle, username: str) -> None:
        self.shop = shop
        self.sandbox = sandbox
        self.user, self.token = sandbox.login(username=username)
        self.session = requests.Session()
        self.session.trust_env = False
        self.get("/")  # the csrftoken cookie
        assert self.post("/pi_payment/auth", {"accessToken": self.token}).status_code == 200

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.shop.url + path, timeout=10)

    def post(self, path: str, body: Any, *, csrf: bool = False) -> requests.Response:
        headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", "")} if csrf else {}
        return self.session.post(self.shop.url + path, json=body, headers=headers, timeout=10)

    def order(self, product: str = "Pi Pie") -> dict[str, Any]:
        """Create an order as the shop's frontend does."""
        response = self.post("/orders/new", {"product_id": product_id(self, product)}, csrf=True)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def pay(self, order: dict[str, Any], amount: Decimal | None = None) -> str:
        """The Pioneer starts the order's payment in the wallet; return its identifier."""
        payment = self.sandbox.create_payment(
            self.user["uid"],
            amount or Decimal(order["amount"]),
            memo=order["memo"],
            metadata={"order_id": order["order_id"]},
        )
        return str(payment["identifier"])

    def approve(self, identifier: str) -> requests.Response:
        return self.post(
            "/pi_payment/approve", {"paymentId": identifier, "accessToken": self.token}
        )

    def order_status(self, order: dict[str, Any]) -> str:
        page = self.get(order["url"])
        assert page.status_code == 200
        match = re.search(r'data-testid="order-status" data-status="(\w+)"', page.text)
        assert match, page.text
        return match.group(1)


def product_id(buyer: Buyer, name: str) -> int:
    page = buyer.get("/").text
    match = re.search(
        rf"<h2>{re.escape(name)}</h2>.*?data-product-id=\"(\d+)\"", page, flags=re.DOTALL
    )
    assert match, f"no product {name!r}"
    return int(match.group(1))


def shop_config(page: str) -> dict[str, Any]:
    match = re.search(r'<script id="shop-config" type="application/json">(.*?)</script>', page)
    assert match
    config: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    return config


@pytest.fixture
def ada(shop: ShopProcess, pi_sandbox: SandboxHandle) -> Buyer:
    return Buyer(shop, pi_sandbox, "ada")


def test_pages_load_the_sandbox_pi_sdk(shop: ShopProcess, pi_sandbox: SandboxHandle) -> None:
    page = requests.get(shop.url + "/", timeout=10).text

    assert f'<script src="{pi_sandbox.url}/sandbox/pi-sdk.js"></script>' in page
    assert shop_config(page) == {"sandbox": True, "piUid": None, "orderUrl": "/orders/new"}
    for name in ("Pi Pie", "Coffee", "Sticker pack"):
        assert f"<h2>{name}</h2>" in page
    assert "3.1415926 π" in page
    assert 'data-testid="sign-in"' in page


def test_a_signed_in_page_tells_the_frontend_who_it_is(ada: Buyer) -> None:
    page = ada.get("/").text
    assert shop_config(page)["piUid"] == ada.user["uid"]
    assert '<span class="pioneer" data-testid="pioneer">@ada</span>' in page


def test_ordering_needs_a_pi_sign_in_and_the_csrf_token(shop: ShopProcess, ada: Buyer) -> None:
    anonymous = requests.Session()
    anonymous.get(shop.url + "/", timeout=10)
    token = {"X-CSRFToken": anonymous.cookies["csrftoken"]}
    answer = anonymous.post(shop.url + "/orders/new", json={"product_id": 1}, headers=token)
    assert (answer.status_code, answer.json()["error"]) == (401, "not_signed_in")

    refused = ada.post("/orders/new", {"product_id": 1})  # no CSRF token
    assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
    assert "reload the page" in refused.json()["detail"]
    form = ada.session.post(shop.url + "/admin/login/", data={"username": "x"}, timeout=10)
    assert form.status_code == 403
    assert "CSRF verification failed" in form.text  # Django's page for forms


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"product_id": "1"}, 400, "invalid_request"),
        ({"product_id": True}, 400, "invalid_request"),
        ([], 400, "invalid_request"),
        ({"product_id": 999999}, 404, "unknown_product"),
    ],
)
def test_bad_orders_are_refused(ada: Buyer, body: Any, status: int, code: str) -> None:
    answer = ada.post("/orders/new", body, csrf=True)
    assert (answer.status_code, answer.json()["error"]) == (status, code)


def test_json_nested_too_deeply_is_refused(ada: Buyer) -> None:
    headers = {
        "X-CSRFToken": ada.session.cookies.get("csrftoken", ""),
        "Content-Type": "application/json",
    }
    deep = "[" * 100_000 + "]" * 100_000
    answer = ada.session.post(ada.shop.url + "/orders/new", data=deep, headers=headers, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")


def test_the_order_is_paid_only_when_the_payment_completes(ada: Buyer) -> None:
    order = ada.order()
    assert Decimal(order["amount"]) == PIE_PRICE
    assert re.fullmatch(r"Order #\d+: Pi Pie", order["memo"])
    identifier = ada.pay(order)

    approved = ada.approve(identifier)
    assert approved.status_code == 200, approved.text
    assert approved.json()["payment"]["status"] == "approved"
    assert ada.order_status(order) == "pending"
    assert identifier in ada.get(order["url"]).text  # the order is claimed by the payment

    txid = ada.sandbox.submit_transaction(identifier)["txid"]
    assert ada.order_status(order) == "pending"  # paid on the chain, not completed yet

    completed = ada.post("/pi_payment/complete", {"paymentId": identifier, "transactionId": txid})
    assert completed.status_code == 200, completed.text
    assert ada.order_status(order) == "paid"


def test_an_incomplete_payment_reported_at_sign_in_pays_the_order(ada: Buyer) -> None:
    order = ada.order()
    identifier = ada.pay(order)
    assert ada.approve(identifier).status_code == 200
    txid = ada.sandbox.submit_transaction(identifier)["txid"]  # the page closed before complete

    body = {"paymentId": identifier, "transactionId": txid}
    assert ada.post("/pi_payment/incomplete", body).status_code == 200
    assert ada.order_status(order) == "paid"


def test_a_sign_in_waits_while_a_callback_settles_a_payment(
    ada: Buyer, shop: ShopProcess, pi_sandbox: SandboxHandle
) -> None:
    """On SQLite (the demo's database) the callback holds the write lock while it calls Pi; a
    sign-in that writes meanwhile waits for it instead of failing with "database is locked"."""
    order = ada.order()
    identifier = ada.pay(order)
    assert ada.approve(identifier).status_code == 200
    txid = pi_sandbox.submit_transaction(identifier)["txid"]
    pi_sandbox.add_fault("complete", delay_ms=3000)  # Pi takes its time to complete

    body = {"paymentId": identifier, "transactionId": txid}
    with ThreadPoolExecutor(max_workers=1) as pool:
        settling = pool.submit(ada.post, "/pi_payment/incomplete", body)
        time.sleep(1)  # the callback now waits on Pi, holding the payment's lock
        token = pi_sandbox.create_token(ada.user["uid"])  # a new token: the sign-in writes
        signed_in = requests.post(
            shop.url + "/pi_payment/auth", json={"accessToken": token}, timeout=10
        )
        assert signed_in.status_code == 200, signed_in.text
        assert settling.result().status_code == 200
    assert ada.order_status(order) == "paid"


def test_a_payment_of_another_amount_is_rejected(ada: Buyer) -> None:
    order = ada.order()
    identifier = ada.pay(order, amount=Decimal("0.0000001"))

    answer = ada.approve(identifier)
    assert (answer.status_code, answer.json()["error"]) == (400, "amount_mismatch")
    assert ada.sandbox.payment(identifier)["status"]["cancelled"] is True
    assert ada.order_status(order) == "cancelled"  # the buyer's own, unclaimed order


def test_nobody_pays_or_cancels_another_buyers_order(
    ada: Buyer, shop: ShopProcess, pi_sandbox: SandboxHandle
) -> None:
    order = ada.order()
    mallory = Buyer(shop, pi_sandbox, "mallory")
    identifier = mallory.pay(order)

    answer = mallory.approve(identifier)
    assert (answer.status_code, answer.json()["error"]) == (400, "not_your_order")
    assert ada.order_status(order) == "pending"
    assert mallory.get(order["url"]).status_code == 404
    assert order["url"] not in mallory.get("/orders/").text


def test_one_payment_per_order(ada: Buyer) -> None:
    order = ada.order()
    first = ada.pay(order)
    assert ada.approve(first).status_code == 200
    second = ada.pay(order)

    answer = ada.approve(second)
    assert (answer.status_code, answer.json()["error"]) == (400, "order_has_payment")
    assert ada.order_status(order) == "pending"


def test_a_payment_cancelled_in_the_wallet_cancels_the_order(ada: Buyer) -> None:
    order = ada.order()
    identifier = ada.pay(order)
    assert ada.approve(identifier).status_code == 200
    ada.sandbox.user_cancel(identifier)

    assert ada.post("/pi_payment/cancel", {"paymentId": identifier}).status_code == 200
    assert ada.order_status(order) == "cancelled"


def test_the_orders_page_lists_the_buyers_orders_and_payments(ada: Buyer) -> None:
    order = ada.order("Coffee")
    identifier = ada.pay(order)
    assert ada.approve(identifier).status_code == 200

    page = ada.get("/orders/").text
    assert f'href="{order["url"]}"' in page
    assert f'data-identifier="{identifier}" data-status="approved"' in page
    api = ada.get("/pi_payment/payments").json()["payments"]
    assert identifier in {payment["identifier"] for payment in api}


def test_the_orders_page_asks_an_anonymous_visitor_to_sign_in(shop: ShopProcess) -> None:
    page = requests.get(shop.url + "/orders/", timeout=10).text
    assert "Sign in with Pi to see your orders and payments." in page
