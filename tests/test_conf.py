"""Settings are read at use time and reloaded when PI_PAYMENTS changes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_pi_payments.client import get_client
from django_pi_payments.conf import DEFAULTS, pi_settings, redact


def test_defaults_apply(settings):
    settings.PI_PAYMENTS = {"API_KEY": "k"}
    assert DEFAULTS["TIMEOUT"] == pi_settings.TIMEOUT
    assert pi_settings.horizon_url == "https://api.testnet.minepi.com"


def test_changes_are_seen_and_the_client_rebuilt(settings):
    settings.PI_PAYMENTS = {"API_KEY": "first", "API_BASE_URL": "https://one.example"}
    first = get_client()
    assert first.transport.base_url == "https://one.example/v2"
    assert get_client() is first
    settings.PI_PAYMENTS = {"API_KEY": "second", "NETWORK": "Pi Network"}
    second = get_client()
    assert second is not first
    assert second.transport.base_url == "https://api.minepi.com/v2"
    assert pi_settings.horizon_url == "https://api.mainnet.minepi.com"


def test_unknown_setting_is_an_attribute_error():
    with pytest.raises(AttributeError):
        _ = pi_settings.NOT_A_SETTING


def test_dotted_paths_are_imported(settings):
    settings.PI_PAYMENTS = {"APPROVAL_CHECK": "django_pi_payments.conf.redact"}
    assert pi_settings.APPROVAL_CHECK is redact
    settings.PI_PAYMENTS = {"APPROVAL_CHECK": "no.such.module"}
    with pytest.raises(ImproperlyConfigured, match="APPROVAL_CHECK"):
        _ = pi_settings.APPROVAL_CHECK


def test_a_hook_module_that_raises_while_importing_is_improperly_configured(
    settings, tmp_path, monkeypatch
):
    (tmp_path / "raising_hook.py").write_text("raise RuntimeError('half-written module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.PI_PAYMENTS = {"USER_MAPPER": "raising_hook.map_user"}
    with pytest.raises(ImproperlyConfigured, match=r"USER_MAPPER.*RuntimeError: half-written"):
        _ = pi_settings.USER_MAPPER


def test_redaction(settings):
    assert redact("abcdefghijklmnopqrstuvwxyz") == "abcd…wxyz"
    assert redact("short") == "…"
    settings.PI_PAYMENTS = {"API_KEY": "abcdefghijklmnopqrstuvwxyz", "WALLET_PRIVATE_SEED": None}
    shown = pi_settings.redacted()
    assert shown["API_KEY"] == "abcd…wxyz"
    assert shown["WALLET_PRIVATE_SEED"] is None


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8765", True),
        ("http://127.9.9.9", True),
        ("http://localhost:8000/", True),
        ("http://LOCALHOST", True),
        ("http://[::1]:8765", True),
        ("http://user:secret@127.0.0.1", True),
        ("https://api.minepi.com", False),
        ("http://127.0.0.1@api.minepi.com", False),
        ("http://api.minepi.com\\@127.0.0.1", False),  # the transport connects to api.minepi.com
        ("http://10.0.0.5:8765", False),
        ("http://[::1", False),
        ("not a url", False),
    ],
)
def test_the_api_is_loopback_only_on_a_loopback_host(settings, url, loopback):
    settings.PI_PAYMENTS = {"API_BASE_URL": url}
    assert pi_settings.api_is_loopback is loopback
