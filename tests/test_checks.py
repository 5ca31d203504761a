"""System checks name the exact setting to fix."""

from __future__ import annotations

import re
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.views.debug import SafeExceptionReporterFilter
from stellar_sdk import Keypair

from django_pi_payments import checks as checks_module
from django_pi_payments.conf import DEFAULTS

from .reporting import DJANGO_FILTER, PI_FILTER, reporter_filter

GOOD = {"API_KEY": "k" * 64, "API_BASE_URL": "https://api.minepi.com", "NETWORK": "Pi Testnet"}


def every_check(*, deploy: bool = False) -> list[checks.CheckMessage]:
    """Every registered check but the database ones: since Django 6.1 ``run_checks`` runs the
    model checks against every database unless told which (none here, these tests use none)."""
    return checks.run_checks(include_deployment_checks=deploy, databases=[])


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


def test_an_empty_wallet_seed_is_no_seed(settings):
    """``os.environ.get("PI_WALLET_SEED", "")`` on a site without payouts: unset, as at run time."""
    assert ids(settings, WALLET_PRIVATE_SEED="") == {}


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
    messages = every_check(deploy=True)
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
    assert not [m for m in every_check() if m.id == "pi_payments.W002"]


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
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("def check_order(payment):\n    return None\nundefined_name\n", "NameError"),
        ("def check_order(payment:\n", "SyntaxError"),
    ],
    ids=["name-error", "syntax-error"],
)
def test_a_hook_whose_module_fails_to_import_fails_the_check(
    settings, tmp_path, monkeypatch, name, body, problem
):
    module = f"broken_hook_{name.lower()}_{problem.lower()}"
    (tmp_path / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = ids(settings, **{name: f"{module}.check_order"})
    assert set(found) == {"pi_payments.E006"}
    assert found["pi_payments.E006"].startswith(
        f'PI_PAYMENTS["{name}"] cannot be imported ({problem}: '
    )


@pytest.mark.parametrize("name", ["APPROVAL_CHECK", "USER_MAPPER"])
def test_a_hook_that_imports_passes(settings, name):
    assert ids(settings, **{name: "django_pi_payments.checks.check_settings"}) == {}
    assert ids(settings, **{name: lambda *args: None}) == {}


def test_use_tz_off_fails_the_check(settings):
    settings.USE_TZ = False
    (error,) = [m for m in every_check() if m.id == "pi_payments.E007"]
    assert error.level == checks.ERROR
    assert "settings.USE_TZ = True" in error.hint
    settings.USE_TZ = True
    assert not [m for m in every_check() if m.id == "pi_payments.E007"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIMEOUT", "10"),
        ("TIMEOUT", 0),
        ("TIMEOUT", -1),
        ("TIMEOUT", None),
        ("TIMEOUT", float("inf")),
        ("TIMEOUT", True),
        ("MAX_RETRIES", "2"),
        ("MAX_RETRIES", -1),
        ("MAX_RETRIES", 1.5),
        ("ME_CACHE_SECONDS", "60"),
        ("ME_CACHE_SECONDS", -5),
        ("A2U_RESUME_TIMEOUT", "600"),
        ("A2U_RESUME_TIMEOUT", 30),
        ("CREATE_USERS", "false"),
        ("CREATE_USERS", 0),
        ("VERIFY_TRANSACTIONS", "False"),
        ("VERIFY_TRANSACTIONS", None),
    ],
)
def test_a_number_or_flag_of_the_wrong_type_or_range_fails_the_check(settings, name, value):
    """An environment string ("10", "false") or an impossible number would fail every Pi call
    with a 500 (TIMEOUT, MAX_RETRIES), or silently do the opposite (CREATE_USERS="false")."""
    found = ids(settings, **{name: value})
    assert set(found) == {"pi_payments.E008"}
    assert found["pi_payments.E008"].startswith(f'PI_PAYMENTS["{name}"] is {value!r}: it must be')


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIMEOUT", 0.5),
        ("TIMEOUT", 30),
        ("MAX_RETRIES", 0),
        ("ME_CACHE_SECONDS", 0),
        ("ME_CACHE_SECONDS", 300.0),
        ("A2U_RESUME_TIMEOUT", 120),
        ("CREATE_USERS", False),
        ("VERIFY_TRANSACTIONS", False),
    ],
)
def test_numbers_and_flags_in_range_pass(settings, name, value):
    assert ids(settings, **{name: value}) == {}


@pytest.mark.parametrize(
    ("name", "value", "flaw"),
    [
        ("API_BASE_URL", "https://api.minepi.com/v2", "ends with /v2"),
        ("API_BASE_URL", "https://api.minepi.com/v2/", "ends with /v2"),
        ("API_BASE_URL", "", "is not an http:// or https:// URL"),
        ("API_BASE_URL", None, "is not an http:// or https:// URL"),
        ("API_BASE_URL", "api.minepi.com", "is not an http:// or https:// URL"),
        ("API_BASE_URL", "https://", "is not an http:// or https:// URL"),
        ("API_BASE_URL", "https://api.minepi.com:99999", "is not a valid URL"),
        ("API_BASE_URL", "https://[api.minepi.com", "is not a valid URL"),
        ("HORIZON_URL", "api.testnet.minepi.com", "is not an http:// or https:// URL"),
        ("HORIZON_URL", 42, "is not an http:// or https:// URL"),
    ],
)
@pytest.mark.parametrize("debug", [True, False])
def test_a_malformed_url_fails_the_check(settings, name, value, flaw, debug):
    """Each would fail every Pi (or Horizon) call: with a 500, or 404s read as unknown payments."""
    found = ids(settings, debug=debug, **{name: value})
    assert set(found) == {"pi_payments.E009"}
    assert found["pi_payments.E009"].startswith(f'PI_PAYMENTS["{name}"] {flaw}')


@pytest.mark.parametrize(
    "url",
    ["https://api.testnet.minepi.com", "https://horizon.example/", "http://127.0.0.1:8765/horizon"],
)
def test_a_horizon_url_passes(settings, url):
    assert ids(settings, debug=True, HORIZON_URL=url) == {}
    assert ids(settings, debug=True, HORIZON_URL="") == {}


def test_a_base_url_with_a_trailing_slash_passes(settings):
    assert ids(settings, API_BASE_URL="https://api.minepi.com/") == {}


@pytest.fixture
def environment(monkeypatch):
    """The proxy and CA bundle variables of the environment, all unset first."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return monkeypatch


def route_errors(settings, **overrides) -> list[str]:
    settings.PI_PAYMENTS = {**GOOD, **overrides}
    messages = checks.run_checks(tags=[checks.Tags.security])
    assert {m.id for m in messages if m.id.startswith("pi_payments.E")} <= {"pi_payments.E010"}
    return [f"{m.msg} {m.hint}" for m in messages if m.id == "pi_payments.E010"]


@pytest.mark.parametrize(
    ("variable", "proxy", "reason"),
    [
        ("HTTPS_PROXY", "http://ops:s3cr3t-pw@proxy.example:99999", "LocationParseError"),
        ("https_proxy", "ftp://proxy.example:21", "unsupported scheme ftp"),
        ("ALL_PROXY", "http://ops:s3cr3t-pw@:3128", "malformed"),
    ],
)
def test_a_proxy_the_transport_cannot_use_fails_the_check(
    settings, environment, variable, proxy, reason
):
    """Without the check, the first Pi call of every process fails with a 500."""
    environment.setenv(variable, proxy)
    found = route_errors(settings, HORIZON_URL="https://horizon.example")
    assert len(found) == 2
    assert found[0].startswith(
        'PI_PAYMENTS["API_BASE_URL"]: calls to https://api.minepi.com cannot be sent'
    )
    assert found[1].startswith(
        'PI_PAYMENTS["HORIZON_URL"]: calls to https://horizon.example cannot be sent'
    )
    for text in found:
        assert reason in text
        assert "s3cr3t-pw" not in text


@pytest.mark.skipif(find_spec("socks") is not None, reason="PySocks is installed")
def test_a_socks_proxy_without_pysocks_fails_the_check(settings, environment):
    environment.setenv("HTTPS_PROXY", "socks5h://proxy.example:1080")
    found = route_errors(settings)
    assert len(found) == 2
    assert all('pip install "requests[socks]"' in text for text in found)


def test_a_proxy_the_hosts_bypass_or_a_usable_one_passes(settings, environment):
    environment.setenv("HTTPS_PROXY", "ftp://proxy.example:21")
    environment.setenv("NO_PROXY", "api.minepi.com")
    assert len(route_errors(settings)) == 1  # the Horizon of Pi Testnet still goes through it
    environment.setenv("NO_PROXY", "api.minepi.com,api.testnet.minepi.com")
    assert route_errors(settings) == []
    environment.setenv("HTTPS_PROXY", "http://ops:pw@proxy.example:3128")
    environment.delenv("NO_PROXY")
    assert route_errors(settings) == []


def test_a_missing_ca_bundle_fails_the_check(settings, environment):
    """Without the check, every call to Pi fails as if Pi were unreachable."""
    environment.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca-bundle.pem")
    found = route_errors(settings)
    assert len(found) == 2
    assert all("/nonexistent/ca-bundle.pem" in text for text in found)
    settings.DEBUG = True
    (horizon_only,) = route_errors(settings, API_BASE_URL="http://127.0.0.1:8765")
    assert horizon_only.startswith('PI_PAYMENTS["HORIZON_URL"]')


def test_a_malformed_horizon_url_does_not_hide_a_sandbox_base_url(settings):
    found = ids(settings, API_BASE_URL="http://127.0.0.1:8765", HORIZON_URL="horizon")
    assert set(found) == {"pi_payments.E003", "pi_payments.E009"}


def test_a_user_and_password_in_a_url_are_not_shown(settings):
    settings.DEBUG = False
    settings.PI_PAYMENTS = {**GOOD, "API_BASE_URL": "http://opuser:S3CRET@127.0.0.1:8765"}
    shown = [f"{m.msg} {m.hint}" for m in every_check() if m.id == "pi_payments.E003"]
    settings.PI_PAYMENTS = {**GOOD, "API_BASE_URL": "https://opuser:S3CRET@api.minepi.com/v2"}
    shown += [f"{m.msg} {m.hint}" for m in every_check() if m.id == "pi_payments.E009"]
    assert len(shown) == 2
    assert all("127.0.0.1:8765" in text or "api.minepi.com/v2" in text for text in shown)
    assert not [text for text in shown if "S3CRET" in text or "opuser" in text]


def sandbox_horizon_warnings(settings, **overrides) -> list[str]:
    settings.DEBUG = True
    settings.PI_PAYMENTS = {**GOOD, **overrides}
    messages = checks.run_checks(tags=[checks.Tags.security])
    return [f"{m.msg} {m.hint}" for m in messages if m.id == "pi_payments.W004"]


@pytest.mark.parametrize(
    ("base_url", "network", "real_horizon"),
    [
        ("http://127.0.0.1:8765", "Pi Testnet", "https://api.testnet.minepi.com"),
        ("http://localhost:8765/", "Pi Network", "https://api.mainnet.minepi.com"),
    ],
)
def test_a_sandbox_without_its_horizon_is_reported(settings, base_url, network, real_horizon):
    """Every sandbox transaction would be looked up on Pi's real Horizon, which never saw it: each
    completion a 503 "could not confirm", for ever, with nothing in the settings to blame."""
    (shown,) = sandbox_horizon_warnings(settings, API_BASE_URL=base_url, NETWORK=network)
    assert 'PI_PAYMENTS["HORIZON_URL"] is not set' in shown
    assert real_horizon in shown
    assert f"'{base_url.rstrip('/')}/horizon'" in shown


@pytest.mark.parametrize(
    "overrides",
    [
        {"API_BASE_URL": "http://127.0.0.1:8765", "HORIZON_URL": "http://127.0.0.1:8765/horizon"},
        {"API_BASE_URL": "https://api.minepi.com"},
        {"API_BASE_URL": "http://sandbox:8765"},  # not loopback: a sandbox or not, we cannot tell
        {"API_BASE_URL": "http://127.0.0.1:8765/v2"},  # E009 says what to fix first
        {"API_BASE_URL": "http://127.0.0.1:8765", "VERIFY_TRANSACTIONS": False},  # no reads
    ],
)
def test_a_sandbox_with_its_horizon_or_pi_itself_is_not_reported(settings, overrides):
    assert sandbox_horizon_warnings(settings, **overrides) == []


def test_a_sandbox_without_its_horizon_is_reported_when_payouts_read_it(settings):
    (shown,) = sandbox_horizon_warnings(
        settings,
        API_BASE_URL="http://127.0.0.1:8765",
        VERIFY_TRANSACTIONS=False,
        WALLET_PRIVATE_SEED=Keypair.random().secret,
    )
    assert "payouts sent" in shown


def test_the_sandbox_horizon_warning_shows_no_user_or_password(settings):
    (shown,) = sandbox_horizon_warnings(settings, API_BASE_URL="http://opuser:S3CRET@[::1]:8765")
    assert "'http://[::1]:8765/horizon'" in shown
    assert "S3CRET" not in shown
    assert "opuser" not in shown


def unknown_key_warnings(settings, **overrides) -> list[str]:
    settings.PI_PAYMENTS = {**GOOD, **overrides}
    messages = checks.run_checks(tags=[checks.Tags.security])
    return [f"{m.msg} {m.hint}" for m in messages if m.id == "pi_payments.W005"]


def test_a_misspelt_setting_is_reported_with_the_one_meant(settings):
    """A misspelt key is ignored: with APPROVAL_CHECK misspelt every payment is approved unchecked,
    and nothing said so (not even E006, although the path does not import)."""
    (shown,) = unknown_key_warnings(settings, APPROVAL_CHEK="shop.nowhere.check_order")
    assert 'PI_PAYMENTS["APPROVAL_CHEK"] is not a setting of django_pi_payments' in shown
    assert 'Did you mean PI_PAYMENTS["APPROVAL_CHECK"]?' in shown
    (shown,) = unknown_key_warnings(settings, verify_transactions=False)
    assert 'Did you mean PI_PAYMENTS["VERIFY_TRANSACTIONS"]?' in shown


def test_an_unknown_key_like_no_setting_lists_them_all(settings):
    (shown,) = unknown_key_warnings(settings, COLOUR="blue")
    assert 'PI_PAYMENTS["COLOUR"]' in shown
    assert "The settings are: API_KEY, API_BASE_URL, NETWORK," in shown


def test_every_setting_is_known(settings):
    assert unknown_key_warnings(settings, **{**DEFAULTS, **GOOD}) == []


def test_every_setting_the_app_reads_is_a_known_one() -> None:
    """W005 reports a key missing from DEFAULTS as ignored: each key the code reads must be
    there (pi_settings raises for any other name, but the checks read the raw dict too)."""
    package = Path(checks_module.__file__).parent
    source = "\n".join(path.read_text() for path in package.rglob("*.py"))
    read = set(re.findall(r"\bpi_settings\.([A-Z][A-Z0-9_]+)\b", source))
    read |= set(re.findall(r'user\.get\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert {"API_KEY", "VERIFY_TRANSACTIONS", "WALLET_PRIVATE_SEED"} <= read
    assert read <= set(DEFAULTS)
