"""System checks name the exact setting to fix."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import checks
from django.views.debug import SafeExceptionReporterFilter
from stellar_sdk import Keypair

from .reporting import DJANGO_FILTER, PI_FILTER, reporter_filter

GOOD = {"API_KEY": "k" * 64, "API_BASE_URL": "https://api.minepi.com", "NETWORK": "Pi Testnet"}


def ids(settings, *, debug: bool = False, **overrides) -> dict[str, str]:
    settings.DEBUG = debug
    settings.PI_PAYMENTS = {**GOOD, **overrides}
    messages = checks.run_checks(tags=[checks.Tags.security])
    return {m.id: f"{m.msg} {m.hint}" for m in messages if m.id.startswith("pi_payments.E")}


def _with_bad_checksum(seed: str) -> str:
    """``seed`` with its last character (part of the CRC) changed."""
    return seed[:-1] + ("B" if seed[-1] == "A" else "A")


def test_good_settings_pass(settings):
    assert ids(settings) == {}


def test_missing_api_key(settings):
    found = ids(settings, API_KEY="")
    assert set(found) == {"pi_payments.E001"}
    assert 'PI_PAYMENTS["API_KEY"]' in found["pi_payments.E001"]


def test_unknown_network(settings):
    found = ids(settings, NETWORK="Stellar")
    assert set(found) == {"pi_payments.E002"}
    assert 'PI_PAYMENTS["NETWORK"]' in found["pi_payments.E002"]


@pytest.mark.parametrize(
    "url", ["http://api.minepi.com", "https://127.0.0.1:8765", "http://localhost:8765"]
)
def test_plain_http_or_loopback_base_url_without_debug(settings, url):
    found = ids(settings, API_BASE_URL=url)
    assert set(found) == {"pi_payments.E003"}
    assert 'PI_PAYMENTS["API_BASE_URL"]' in found["pi_payments.E003"]


def test_sandbox_url_is_fine_with_debug(settings):
    assert ids(settings, debug=True, API_BASE_URL="http://127.0.0.1:8765") == {}


@pytest.mark.parametrize(
    ("api_key", "flaw"),
    [
        ("k3yReadFromAFile0123456789\n", "ends with whitespace"),
        (" k3yWithALeadingSpace0123456789", "starts or ends with whitespace"),
        ("k3y with 0123456789", "a space or a control character"),
        ("k3y\tTab0123456789", "a space or a control character"),
        ("k3y\u2013dash0123456789", "non-ASCII"),
        ("k3y\u00e9latin0123456789", "non-ASCII"),
    ],
)
def test_api_key_that_cannot_be_sent(settings, api_key, flaw):
    found = ids(settings, API_KEY=api_key)
    assert set(found) == {"pi_payments.E005"}
    assert 'PI_PAYMENTS["API_KEY"]' in found["pi_payments.E005"]
    assert flaw in found["pi_payments.E005"]
    assert api_key.strip() not in found["pi_payments.E005"]


def test_api_key_that_is_not_a_string(settings):
    found = ids(settings, API_KEY=b"k" * 64)
    assert set(found) == {"pi_payments.E005"}
    assert "bytes" in found["pi_payments.E005"]


@pytest.mark.parametrize(
    "seed",
    [
        "not-a-seed",
        Keypair.random().public_key,
        "S" + "A" * 55,
        _with_bad_checksum(Keypair.random().secret),
    ],
)
def test_malformed_wallet_seed(settings, seed):
    found = ids(settings, WALLET_PRIVATE_SEED=seed)
    assert set(found) == {"pi_payments.E004"}
    assert 'PI_PAYMENTS["WALLET_PRIVATE_SEED"]' in found["pi_payments.E004"]
    assert seed not in found["pi_payments.E004"]


def test_valid_wallet_seed(settings):
    assert ids(settings, WALLET_PRIVATE_SEED=Keypair.random().secret) == {}


def test_missing_auth_backend_warns(settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    warnings = [
        m for m in checks.run_checks(tags=[checks.Tags.security]) if m.id == "pi_payments.W001"
    ]
    assert len(warnings) == 1
    assert "AUTHENTICATION_BACKENDS" in warnings[0].hint
    settings.AUTHENTICATION_BACKENDS = ["django_pi_payments.backends.PiAccessTokenBackend"]
    assert not [
        m for m in checks.run_checks(tags=[checks.Tags.security]) if m.id == "pi_payments.W001"
    ]


def deploy_warnings(settings, backend: str) -> list[str]:
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "redis://127.0.0.1:1/0"}}
    messages = checks.run_checks(include_deployment_checks=True)
    return [m.id for m in messages if m.id == "pi_payments.W002"]


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    ],
)
def test_process_local_cache_warns_on_deploy(settings, backend):
    assert deploy_warnings(settings, backend) == ["pi_payments.W002"]


def test_redis_cache_does_not_warn(settings):
    assert deploy_warnings(settings, "django.core.cache.backends.redis.RedisCache") == []


def test_cache_warning_only_with_deploy(settings):
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert not [m for m in checks.run_checks() if m.id == "pi_payments.W002"]


def reporter_warnings() -> list[str]:
    messages = checks.run_checks(tags=[checks.Tags.security])
    return [f"{m.msg} {m.hint}" for m in messages if m.id == "pi_payments.W003"]


def test_seed_shown_by_django_s_filter_warns(settings):
    seed = Keypair.random().secret
    settings.PI_PAYMENTS = {**GOOD, "WALLET_PRIVATE_SEED": seed}
    with reporter_filter(DJANGO_FILTER):
        found = reporter_warnings()
    assert len(found) == 1
    assert "WALLET_PRIVATE_SEED" in found[0]
    assert PI_FILTER in found[0]
    assert seed not in found[0]


def test_seed_hidden_by_the_app_s_filter_does_not_warn(settings):
    settings.PI_PAYMENTS = {**GOOD, "WALLET_PRIVATE_SEED": Keypair.random().secret}
    with reporter_filter(PI_FILTER):
        assert reporter_warnings() == []


def test_no_seed_no_warning_with_django_s_filter(settings):
    settings.PI_PAYMENTS = GOOD
    with reporter_filter(DJANGO_FILTER):
        assert reporter_warnings() == []


class ShowsAuthorization(SafeExceptionReporterFilter):
    """A site's filter that hides fewer names than Django's."""

    hidden_settings = re.compile("SECRET")


class Recording(SafeExceptionReporterFilter):
    """Django's filter, keeping every value it is asked to cleanse."""

    seen: list[Any] = []

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        Recording.seen.append(value)
        return super().cleanse_setting(key, value)


def test_authorization_header_shown_warns(settings):
    settings.PI_PAYMENTS = GOOD
    with reporter_filter(f"{__name__}.ShowsAuthorization"):
        found = reporter_warnings()
    assert len(found) == 1
    assert "Authorization" in found[0]
    assert "WALLET_PRIVATE_SEED" not in found[0]


def test_the_check_never_hands_the_real_seed_to_the_filter(settings):
    seed = Keypair.random().secret
    settings.PI_PAYMENTS = {**GOOD, "WALLET_PRIVATE_SEED": seed}
    Recording.seen.clear()
    with reporter_filter(f"{__name__}.Recording"):
        assert len(reporter_warnings()) == 1
    assert Recording.seen
    assert seed not in repr(Recording.seen)


@pytest.mark.parametrize("name", ["APPROVAL_CHECK", "USER_MAPPER"])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("shop.payments.check_order", "cannot be imported"),
        ("django_pi_payments.checks.no_such_function", "cannot be imported"),
        ("django_pi_payments.checks.SETTINGS_NAME", "is not callable"),
        (42, "is not callable"),
    ],
)
def test_a_hook_that_is_not_a_function_fails_the_check(settings, name, value, problem):
    found = ids(settings, **{name: value})
    assert set(found) == {"pi_payments.E006"}
    assert found["pi_payments.E006"].startswith(f'PI_PAYMENTS["{name}"] {problem}')


@pytest.mark.parametrize("name", ["APPROVAL_CHECK", "USER_MAPPER"])
def test_a_hook_that_imports_passes(settings, name):
    assert ids(settings, **{name: "django_pi_payments.checks.check_settings"}) == {}
    assert ids(settings, **{name: lambda *args: None}) == {}


def test_use_tz_off_fails_the_check(settings):
    settings.USE_TZ = False
    (error,) = [m for m in checks.run_checks() if m.id == "pi_payments.E007"]
    assert error.level == checks.ERROR
    assert "settings.USE_TZ = True" in error.hint
    settings.USE_TZ = True
    assert not [m for m in checks.run_checks() if m.id == "pi_payments.E007"]
