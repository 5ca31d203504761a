"""Products sold for Pi and the orders that pay for them."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

# The smallest amount of Pi (1 stroop, 7 decimal places).
ONE_STROOP = Decimal("0.0000001")


class Product(models.Model):
    """Something to buy, priced in Pi."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    price = models.DecimalField(
        _("price (π)"), max_digits=20, decimal_places=7, validators=[MinValueValidator(ONE_STROOP)]
    )

    class Meta:
        ordering = ("name",)
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self) -> str:
        return self.name


class OrderStatus(models.TextChoices):
    """Where an order stands; only the payment signals move it (see :mod:`shop.receivers`)."""

    PENDING = "pending", _("Awaiting payment")
    PAID = "paid", _("Paid")
    CANCELLED = "cancelled", _("Cancelled")


class Order(models.Model):
    """One purchase of one product by one user, paid by one Pi payment.

    ``amount`` is the product's price when the order was made; ``payment_identifier`` is set when
    the shop's ``APPROVAL_CHECK`` accepts a payment for the order.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="orders",
        verbose_name=_("user"),
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="orders", verbose_name=_("product")
    )
    amount = models.DecimalField(_("amount (π)"), max_digits=20, decimal_places=7)
    payment_identifier = models.CharField(
        _("Pi payment"), max_length=64, unique=True, null=True, blank=True
    )
    status = models.CharField(
        _("status"), max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        return f"#{self.pk} {self.product}"

    def get_absolute_url(self) -> str:
        """The order's page."""
        return reverse("shop:order", args=[self.pk])

    @property
    def memo(self) -> str:
        """The memo of the order's Pi payment, shown to the payer in the Pi Wallet."""
        return f"Order #{self.pk}: {self.product.name}"
