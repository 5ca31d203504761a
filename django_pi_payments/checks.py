"""System checks: misconfiguration shows in ``manage.py check``, not at the first payment."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from difflib import get_close_matches
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.views.debug import get_default_exception_reporter_filter
from django.views.decorators.debug import sensitive_variables
from requests.utils import select_proxy

from .client import is_sendable_credential
from .conf import (
    DEFAULTS,
    IMPORT_STRINGS,
    NETWORKS,
    SETTINGS_NAME,
    import_setting,
    is_loopback_host,
    pi_settings,
)
from .http import Transport, without_credentials
from .services.a2u_resume import SHORTEST_RESUME_TIMEOUT
from .strkey import is_valid_seed


def _api_key_flaw(api_key: object) -> str | None:
    """What keeps ``api_key`` out of an HTTP header, in words that do not repeat it."""
    if not isinstance(api_key, str):
        return f"is a {type(api_key).__name__}, not a string"
    if is_sendable_credential(api_key):
        return None
    if api_key != api_key.strip():
        return "starts or ends with whitespace"
    if not api_key.isascii():
        return "holds a non-ASCII character"
    return "holds a space or a control character"


@register(Tags.security, deploy=False)
@sensitive_variables("user", "api_key", "seed")
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Check ``PI_PAYMENTS``: key present and sendable, network known, numbers and flags of the
    right type, URLs well formed and usable through the environment's proxy, base URL safe,
    hooks importable, wallet seed well formed, no unknown key. No message repeats the key or the
    seed."""
    messages: list[CheckMessage] = []
    user = pi_settings.user_settings
    api_key = user.get("API_KEY")
    flaw = _api_key_flaw(api_key) if api_key else None
    if not api_key:
        messages.append(
            Error(
                f'{SETTINGS_NAME}["API_KEY"] is not set.',
                hint=f'Add your app\'s Server API Key to settings.{SETTINGS_NAME}["API_KEY"] '
                "(from the Pi Developer Portal; read it from the environment).",
                id="pi_payments.E001",
            )
        )
    elif flaw:
        messages.append(
            Error(
                f'{SETTINGS_NAME}["API_KEY"] {flaw}: it cannot be sent in an HTTP header.',
                hint="Copy the Server API Key again from the Pi Developer Portal: it is visible "
                "ASCII characters only. A key read from a file or an environment file often "
                "keeps the line break that ends it: strip it.",
                id="pi_payments.E005",
            )
        )
    network = user.get("NETWORK", pi_settings.NETWORK)
    if network not in NETWORKS:
        messages.append(
            Error(
                f'{SETTINGS_NAME}["NETWORK"] is {network!r}, which is not a Pi network.',
                hint=f'Set {SETTINGS_NAME}["NETWORK"] to one of: {", ".join(sorted(NETWORKS))}.',
                id="pi_payments.E002",
            )
        )
    messages.extend(_value_errors(user))
    url_errors = _url_errors(user)
    messages.extend(url_errors)
    base_url = user.get("API_BASE_URL", pi_settings.API_BASE_URL)
    parts = urlsplit(base_url) if _url_flaw(base_url) is None else None
    if (
        parts is not None
        and not settings.DEBUG
        and (parts.scheme != "https" or is_loopback_host(parts.hostname or ""))
    ):
        messages.append(
            Error(
                f'{SETTINGS_NAME}["API_BASE_URL"] is {without_credentials(base_url)!r} while '
                "DEBUG is off.",
                hint=f'In production set {SETTINGS_NAME}["API_BASE_URL"] to '
                '"https://api.minepi.com"; plain http and loopback (sandbox) URLs are for '
                "development and tests only.",
                id="pi_payments.E003",
            )
        )
    if (
        parts is not None
        and not url_errors
        and is_loopback_host(parts.hostname or "")
        and not user.get("HORIZON_URL")
        and pi_settings.reads_horizon
    ):
        messages.append(_sandbox_horizon_warning(base_url))
    messages.extend(_hook_errors(user))
    messages.extend(_unknown_key_warnings(user))
    seed = user.get("WALLET_PRIVATE_SEED")
    if seed and not is_valid_seed(str(seed)):  # "" is no seed, as when payouts are sent
        messages.append(
            Error(
                f'{SETTINGS_NAME}["WALLET_PRIVATE_SEED"] is not a valid Stellar secret seed.',
                hint=f'Set {SETTINGS_NAME}["WALLET_PRIVATE_SEED"] to your app wallet\'s '
                '56-character seed starting with "S", or to None when you make no app-to-user '
                "payments.",
                id="pi_payments.E004",
            )
        )
    if not url_errors:
        messages.extend(_route_errors())
    return messages


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# What each number or flag setting must be, and the test of it. A value read from the environment
# is a string: "10" would fail every Pi call with a 500, and "false" is true.
VALUE_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "TIMEOUT": ("a number of seconds above 0", lambda v: _is_number(v) and v > 0),
    "MAX_RETRIES": ("a whole number, 0 or more", _is_count),
    "ME_CACHE_SECONDS": ("a number of seconds, 0 or more", lambda v: _is_number(v) and v >= 0),
    "A2U_RESUME_TIMEOUT": (
        f"a number of seconds, at least {SHORTEST_RESUME_TIMEOUT:.0f}",
        lambda v: _is_number(v) and v >= SHORTEST_RESUME_TIMEOUT,
    ),
    "VERIFY_TRANSACTIONS": ("True or False", lambda v: isinstance(v, bool)),
    "CREATE_USERS": ("True or False", lambda v: isinstance(v, bool)),
}


def _value_errors(user: dict[str, Any]) -> list[CheckMessage]:
    """E008 for each number or flag setting of the wrong type or out of its range."""
    messages: list[CheckMessage] = []
    for name, (what, is_valid) in VALUE_RULES.items():
        if name not in user or is_valid(user[name]):
            continue
        messages.append(
            Error(
                f'{SETTINGS_NAME}["{name}"] is {user[name]!r}: it must be {what}.',
                hint="A value read from the environment is a string: convert it, e.g. with "
                'int(os.environ["PI_TIMEOUT"]) or django-environ\'s env.int() and env.bool().',
                id="pi_payments.E008",
            )
        )
    return messages


def _url_flaw(value: object) -> str | None:
    """What keeps ``value`` from being the base URL of an HTTP API, or ``None``."""
    if not isinstance(value, str):
        return "is not an http:// or https:// URL"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError when out of range)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "is not an http:// or https:// URL"
    return None


def _shown(value: object) -> object:
    """A setting's value as a message may show it: a URL without its user and password."""
    return without_credentials(value) if isinstance(value, str) else value


def _url_errors(user: dict[str, Any]) -> list[CheckMessage]:
    """E009 when ``API_BASE_URL`` or ``HORIZON_URL`` is no URL, or the base URL ends in /v2:
    every call to Pi (or to Horizon) would fail."""
    flaws: dict[str, str] = {}
    base_url = user.get("API_BASE_URL", pi_settings.API_BASE_URL)
    flaw = _url_flaw(base_url)
    if flaw:
        flaws["API_BASE_URL"] = flaw
    elif urlsplit(base_url).path.rstrip("/").endswith("/v2"):
        flaws["API_BASE_URL"] = "ends with /v2, which the app adds to every path itself"
    horizon_url = user.get("HORIZON_URL")
    flaw = _url_flaw(horizon_url) if horizon_url else None
    if flaw:
        flaws["HORIZON_URL"] = flaw
    return [
        Error(
            f'{SETTINGS_NAME}["{name}"] {flaw}: {_shown(user.get(name))!r}.',
            hint=f'Set {SETTINGS_NAME}["API_BASE_URL"] to "https://api.minepi.com" (without '
            f'/v2; the sandbox\'s is e.g. "http://127.0.0.1:8765") and {SETTINGS_NAME}'
            '["HORIZON_URL"] to None (the Horizon of NETWORK) or a Horizon server\'s URL.',
            id="pi_payments.E009",
        )
        for name, flaw in flaws.items()
    ]


def _sandbox_horizon_warning(base_url: str) -> CheckMessage:
    """W004: the Platform API is a local sandbox, but transactions would be checked on the real
    Horizon, which has never seen the sandbox's transactions: no payment could complete."""
    sandbox_horizon = without_credentials(base_url.rstrip("/") + "/horizon")
    return Warning(
        f'{SETTINGS_NAME}["API_BASE_URL"] is {without_credentials(base_url)!r}, a local '
        f'sandbox, but {SETTINGS_NAME}["HORIZON_URL"] is not set: transactions are looked up (and '
        f"payouts sent) on {pi_settings.horizon_url}, which does not know the sandbox's "
        "transactions, so no payment could complete.",
        hint=f'Set {SETTINGS_NAME}["HORIZON_URL"] to {sandbox_horizon!r}, the sandbox\'s '
        "Horizon (or silence pi_payments.W004 if API_BASE_URL is a local proxy of Pi's API).",
        id="pi_payments.W004",
    )


def _unknown_key_warnings(user: dict[str, Any]) -> list[CheckMessage]:
    """W005 for each key that names no setting: a misspelt one is ignored, so a misspelt
    ``APPROVAL_CHECK`` would let every payment through unchecked, without a word."""
    messages: list[CheckMessage] = []
    for name in sorted(set(user) - set(DEFAULTS), key=str):
        key = f'"{name}"' if isinstance(name, str) else repr(name)
        close = get_close_matches(str(name).upper(), DEFAULTS, n=1)
        messages.append(
            Warning(
                f"{SETTINGS_NAME}[{key}] is not a setting of django_pi_payments: it is ignored.",
                hint=f'Did you mean {SETTINGS_NAME}["{close[0]}"]?'
                if close
                else f"The settings are: {', '.join(DEFAULTS)}.",
                id="pi_payments.W005",
            )
        )
    return messages


def _without_credentials(text: str, proxies: Mapping[str, str]) -> str:
    """``text`` with the user and password of each proxy URL replaced by ``…``."""
    for proxy in proxies.values():
        credentials = proxy.partition("://")[2].rpartition("@")[0]
        if credentials:
            text = text.replace(credentials, "…")
    return text


def _route_errors() -> list[CheckMessage]:
    """E010 when the proxy or the CA bundle the environment sets for Pi or Horizon cannot be
    used: the transports read them once, at their first call, which would fail with a 500."""
    messages: list[CheckMessage] = []
    urls = {"API_BASE_URL": pi_settings.api_url, "HORIZON_URL": pi_settings.horizon_url}
    for name, url in urls.items():
        transport = Transport(url, timeout=1, max_retries=0)
        session = transport.session
        shown = transport.shown_url.removesuffix("/v2")
        try:
            transport._pool()
        except Exception as exc:  # whatever requests or urllib3 make of the environment
            proxy = select_proxy(url, session.proxies) or ""
            reason = _without_credentials(f"{type(exc).__name__}: {exc}", session.proxies)
            socks = "SOCKS" in str(exc)
            messages.append(
                Error(
                    f'{SETTINGS_NAME}["{name}"]: calls to {shown} cannot be sent through the '
                    f"proxy {_without_credentials(proxy, session.proxies)!r} of the "
                    f"environment ({reason}).",
                    hint='Install PySocks (pip install "requests[socks]") for a SOCKS proxy.'
                    if socks
                    else "Fix or unset HTTPS_PROXY, HTTP_PROXY and ALL_PROXY (or lowercase) in "
                    "the environment of the site and of pi_reconcile, or name the host in "
                    "NO_PROXY.",
                    id="pi_payments.E010",
                )
            )
            continue
        finally:
            transport.close()
        bundle = session.verify
        if url.startswith("https:") and isinstance(bundle, str) and not os.path.exists(bundle):
            messages.append(
                Error(
                    f'{SETTINGS_NAME}["{name}"]: calls to {shown} cannot verify TLS: the CA '
                    f"bundle {bundle!r} of the environment does not exist.",
                    hint="Fix or unset REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE in the environment "
                    "of the site and of pi_reconcile.",
                    id="pi_payments.E010",
                )
            )
    return messages


def _hook_errors(user: dict[str, Any]) -> list[CheckMessage]:
    """E006 for each hook (``APPROVAL_CHECK``, ``USER_MAPPER``) that is not a callable or the
    dotted path of one: it would fail every approval or first sign-in with a 500."""
    messages: list[CheckMessage] = []
    for name in sorted(IMPORT_STRINGS):
        value = user.get(name)
        if value is None:
            continue
        problem = ""
        if isinstance(value, str):
            try:
                value = import_setting(name, value)
            except ImproperlyConfigured as exc:
                cause = exc.__cause__
                problem = f"cannot be imported ({type(cause).__name__}: {cause})"
        if not problem and not callable(value):
            problem = "is not callable"
        if problem:
            messages.append(
                Error(
                    f'{SETTINGS_NAME}["{name}"] {problem}.',
                    hint=f'Set {SETTINGS_NAME}["{name}"] to the dotted path of a function '
                    '(e.g. "shop.payments.check_order"), or to None.',
                    id="pi_payments.E006",
                )
            )
    return messages


# A stand-in for the secrets, cleansed by the exception reporter filter: never the real ones.
_PROBE = "pi-payments-reporter-filter-probe"
FILTER = "django_pi_payments.debug.PiExceptionReporterFilter"


@register(Tags.security)
def check_exception_reporter_filter(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn when error reports (the DEBUG page, ``mail_admins``) would show a secret in clear.

    Asks the active ``DEFAULT_EXCEPTION_REPORTER_FILTER`` to cleanse a probe value in the place of
    the wallet seed (when one is configured) and of the ``Authorization`` request header (which
    carries access tokens); Django's own filter shows the seed, whose name it does not know.
    """
    reporter_filter = get_default_exception_reporter_filter()
    shown = []
    if pi_settings.user_settings.get("WALLET_PRIVATE_SEED"):
        cleansed = reporter_filter.cleanse_setting(SETTINGS_NAME, {"WALLET_PRIVATE_SEED": _PROBE})
        if _PROBE in repr(cleansed):
            shown.append(f'settings.{SETTINGS_NAME}["WALLET_PRIVATE_SEED"]')
    if _PROBE in repr(reporter_filter.cleanse_setting("HTTP_AUTHORIZATION", _PROBE)):
        shown.append("the Authorization request header (access tokens)")
    if not shown:
        return []
    return [
        Warning(
            f"Error reports would show {' and '.join(shown)} in clear.",
            hint=f'Set settings.DEFAULT_EXCEPTION_REPORTER_FILTER = "{FILTER}" (or a filter '
            "that hides them).",
            id="pi_payments.W003",
        )
    ]


@register(Tags.compatibility)
def check_use_tz(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Refuse ``USE_TZ = False``: Pi's times (payment creation, token expiry) are aware, and the
    payments and sign-ins compare and store them as such."""
    if settings.USE_TZ:
        return []
    return [
        Error(
            "settings.USE_TZ is False.",
            hint="Set settings.USE_TZ = True (Django's default since 5.0): without it every "
            "sign-in and every payment would fail with a server error.",
            id="pi_payments.E007",
        )
    ]


BACKEND = "django_pi_payments.backends.PiAccessTokenBackend"


@register(Tags.security)
def check_auth_backend(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn when the ``auth`` route's session logins would not survive the next request."""
    if BACKEND in settings.AUTHENTICATION_BACKENDS:
        return []
    return [
        Warning(
            f"{BACKEND} is not in settings.AUTHENTICATION_BACKENDS.",
            hint=f'Add "{BACKEND}" to settings.AUTHENTICATION_BACKENDS: without it a user signed '
            "in through the pi_payment/auth route is anonymous again on the next request.",
            id="pi_payments.W001",
        )
    ]


PROCESS_LOCAL_CACHES = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)


@register(Tags.caches, deploy=True)
def check_shared_cache(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn (``check --deploy``) when the default cache lives inside each process."""
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    if settings.DEBUG or backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        Warning(
            f'settings.CACHES["default"] uses {backend.rsplit(".", 1)[-1]}, a per-process cache.',
            hint="The Pi /me verification cache and the throttles of django_pi_payments live in "
            'the default cache; with several processes set CACHES["default"] to a shared cache '
            'such as "django.core.cache.backends.redis.RedisCache".',
            id="pi_payments.W002",
        )
    ]
