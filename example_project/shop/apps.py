"""The shop app: connects its payment signal receivers when Django starts."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """Products, orders, and the receivers that settle orders from payment signals."""

    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect :mod:`shop.receivers`."""
        from . import receivers  # noqa: F401
