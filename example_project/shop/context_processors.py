"""What every page's Pi frontend needs: which Pi SDK to load, and who is signed in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from django_pi_payments.models import PiUser


def signed_in_pi_user(request: HttpRequest) -> PiUser | None:
    """The Pi user of the session, or ``None`` (an admin signed in with a password has none)."""
    if not request.user.is_authenticated:
        return None
    return PiUser.objects.filter(user_id=request.user.pk).first()


def pi_frontend(request: HttpRequest) -> dict[str, Any]:
    """``pi_sdk_url``, ``pi_sandbox``, ``pi_user`` and ``shop_config`` (read by shop.js)."""
    pi_user = signed_in_pi_user(request)
    return {
        "pi_sdk_url": settings.PI_SDK_URL,
        "pi_sandbox": settings.PI_SANDBOX,
        "pi_user": pi_user,
        "shop_config": {
            # Pi.init({sandbox}) is for development, as pi-sdk-js sets it outside production.
            "sandbox": settings.DEBUG,
            "piUid": pi_user.uid if pi_user else None,
            "orderUrl": reverse("shop:create_order"),
        },
    }
