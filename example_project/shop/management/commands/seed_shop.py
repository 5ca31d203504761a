"""``manage.py seed_shop``: the demo's admin user ``admin``/``admin`` and a few products."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from shop.models import Product

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # noqa: S105 - the demo's documented password, refused without DEBUG

PRODUCTS: tuple[tuple[str, Decimal, str], ...] = (
    ("Pi Pie", Decimal("3.1415926"), "A slice of the famous pie, to the seventh decimal."),
    ("Coffee", Decimal("1"), "A cup of coffee, paid in Pi."),
    ("Sticker pack", Decimal("0.5"), "Five stickers for your laptop."),
)


class Command(BaseCommand):
    """Create what the demo needs; running it again changes nothing that already exists."""

    help = (
        "Create the demo's superuser admin/admin (only if missing) and its products "
        "(by name; prices are reset). Refused when DEBUG is off."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        """Seed the shop."""
        if not settings.DEBUG:
            raise CommandError("seed_shop creates the password admin/admin: it runs with DEBUG on.")
        user_model = get_user_model()
        if user_model.objects.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write(f"Admin user {ADMIN_USERNAME!r} exists: left as it is.")
        else:
            user_model.objects.create_superuser(ADMIN_USERNAME, "", ADMIN_PASSWORD)
            self.stdout.write(
                self.style.SUCCESS(f"Created admin user {ADMIN_USERNAME}/{ADMIN_PASSWORD}.")
            )
        created = 0
        for name, price, description in PRODUCTS:
            _product, was_created = Product.objects.update_or_create(
                name=name, defaults={"price": price, "description": description}
            )
            created += was_created
        self.stdout.write(
            self.style.SUCCESS(f"Products: {created} created, {len(PRODUCTS) - created} updated.")
        )
