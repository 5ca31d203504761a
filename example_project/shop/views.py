"""The shop's pages and the endpoint that creates an order before its Pi payment."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from django_pi_payments.models import Payment

from .context_processors import signed_in_pi_user
from .models import Order, Product


@require_GET
@ensure_csrf_cookie
def product_list(request: HttpRequest) -> HttpResponse:
    """The products, each with a Buy button (shop.js pays for it with Pi)."""
    return render(request, "shop/product_list.html", {"products": Product.objects.all()})


@require_GET
@ensure_csrf_cookie
def order_list(request: HttpRequest) -> HttpResponse:
    """The signed-in Pi user's orders and Pi payments."""
    pi_user = signed_in_pi_user(request)
    orders = Order.objects.none()
    payments = Payment.objects.none()
    if pi_user is not None:
        orders = Order.objects.filter(user=pi_user.user).select_related("product")
        payments = Payment.objects.filter(pi_user=pi_user)
    return render(request, "shop/order_list.html", {"orders": orders, "payments": payments})


@require_GET
@ensure_csrf_cookie
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One of the signed-in user's orders (404 for anyone else's) and its payment."""
    order = get_object_or_404(
        Order.objects.select_related("product"), pk=pk, user_id=request.user.pk
    )
    payment = Payment.objects.filter(identifier=order.payment_identifier).first()
    return render(request, "shop/order_detail.html", {"order": order, "payment": payment})


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: to a JSON request (shop.js), a 403 whose ``detail`` the buyer can act
    on; to anything else (the admin's forms), Django's own page."""
    if request.content_type == "application/json":
        return _error(403, "csrf_failed", "Your session changed: reload the page and try again.")
    return django_csrf_failure(request, reason)


@require_POST
def create_order(request: HttpRequest) -> JsonResponse:
    """``POST {"product_id"}`` (CSRF-checked): a pending order of the signed-in Pi user.

    201 ``{"order_id", "amount", "memo", "url"}``: the frontend passes ``amount`` (a decimal
    string), ``memo`` and ``{"order_id"}`` as metadata to ``Pi.createPayment``. 401 when no Pi
    user is signed in, 400 for a bad body, 404 for an unknown product.
    """
    pi_user = signed_in_pi_user(request)
    if pi_user is None:
        return _error(401, "not_signed_in", "Sign in with Pi first.")
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
        return _error(400, "invalid_request", "The body must be JSON.")
    product_id = body.get("product_id") if isinstance(body, dict) else None
    if not isinstance(product_id, int) or isinstance(product_id, bool):
        return _error(400, "invalid_request", "product_id must be an integer.")
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        return _error(404, "unknown_product", "No such product.")
    order = Order.objects.create(user=pi_user.user, product=product, amount=product.price)
    return JsonResponse(
        {
            "order_id": order.pk,
            "amount": str(order.amount),
            "memo": order.memo,
            "url": order.get_absolute_url(),
        },
        status=201,
    )
