"""Template filters of the shop."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def pi_amount(value: Decimal) -> str:
    """An amount of Pi without trailing zeros: ``3.1415926``, ``1``, ``0.5``."""
    return format(value.normalize(), "f")
