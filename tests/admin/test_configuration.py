"""The Pi configuration page, and no admin page ever showing the API key or the wallet seed."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from .conftest import PaymentMaker

pytestmark = pytest.mark.django_db(transaction=True)

CONFIGURATION = "admin:pi_payments_payment_configuration"
API_KEY = "pk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SEED = "SBQWY3DNPFWGSZTFNV4WQZLBOJ2GQYLTMJSWK3TTMVZXI5DJN5XHIZLT"


def with_secrets(settings: Any) -> None:
    """Configure a recognisable API key and wallet seed (after the sandbox work is done)."""
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "API_KEY": API_KEY, "WALLET_PRIVATE_SEED": SEED}


def assert_no_secret(content: bytes) -> None:
    text = content.decode()
    assert API_KEY not in text
    assert SEED not in text
    assert API_KEY[4:-4] not in text
    assert SEED[4:-4] not in text


def test_configuration_page_shows_settings_redacted(admin_client: Client, settings: Any) -> None:
    with_secrets(settings)

    response = admin_client.get(reverse(CONFIGURATION))

    assert response.status_code == 200
    assert_no_secret(response.content)
    rows = {name: value for name, value, _secret in response.context["settings_rows"]}
    assert rows["API_KEY"] == "pk-l…b1a0"
    assert rows["WALLET_PRIVATE_SEED"] == "SBQW…IZLT"
    assert rows["NETWORK"] == settings.PI_PAYMENTS["NETWORK"]
    content = response.content.decode()
    assert "pk-l…b1a0" in content
    assert "SBQW…IZLT" in content


def test_configuration_page_needs_the_view_permission(staff_client: Any, settings: Any) -> None:
    with_secrets(settings)

    refused = staff_client().get(reverse(CONFIGURATION))
    allowed = staff_client("view_payment").get(reverse(CONFIGURATION))

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert_no_secret(allowed.content)


def test_changelist_links_to_the_configuration(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:pi_payments_payment_changelist"))

    assert reverse(CONFIGURATION) in response.content.decode()


def test_no_admin_page_shows_a_secret(
    admin_client: Client, make: PaymentMaker, settings: Any
) -> None:
    completed = make.completed()
    approved = make.approved()
    assert completed.pi_user is not None
    with_secrets(settings)  # the pages below never call Pi
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["pi_payments"]),
        reverse("admin:pi_payments_payment_changelist"),
        reverse("admin:pi_payments_payment_change", args=[completed.pk]),
        reverse("admin:pi_payments_piuser_changelist"),
        reverse("admin:pi_payments_piuser_change", args=[completed.pi_user.pk]),
        reverse(CONFIGURATION),
    ]

    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content)
    confirmation = admin_client.post(
        reverse("admin:pi_payments_payment_changelist"),
        {"action": "cancel_on_pi", "index": "0", "_selected_action": [approved.pk, completed.pk]},
    )
    assert confirmation.status_code == 200
    assert "plans" in confirmation.context
    assert_no_secret(confirmation.content)
