"""The shop's admin: products are edited here; orders are read-only (payments move them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from .models import Order, Product

if TYPE_CHECKING:
    ProductAdminBase = admin.ModelAdmin[Product]
    OrderAdminBase = admin.ModelAdmin[Order]
else:  # Django's admin classes are not subscriptable at run time.
    ProductAdminBase = OrderAdminBase = admin.ModelAdmin


@admin.register(Product)
class ProductAdmin(ProductAdminBase):
    """Products and their prices."""

    list_display = ("name", "price")
    search_fields = ("name",)


@admin.register(Order)
class OrderAdmin(OrderAdminBase):
    """Orders, read-only: only the payment signals change an order's status."""

    list_display = ("id", "user", "product", "amount", "status", "payment_identifier", "created_at")
    list_filter = ("status",)
    list_select_related = ("user", "product")
    search_fields = ("payment_identifier", "user__username")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Orders are made by buyers, not in the admin."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        """Read-only."""
        return False
