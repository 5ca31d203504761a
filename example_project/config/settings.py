"""Settings of the example shop, read from the environment with django-environ.

Every variable is documented in ``example_project/.env.example``; copy it to
``example_project/.env`` to set them in a file (variables of the real environment win). An unset
or empty variable means its default, and the defaults need no configuration at all: DEBUG on, a
SQLite file in ``example_project/``, and the local Pi sandbox at ``http://127.0.0.1:8765`` with its
default API key (``make demo`` starts it).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

# Used when SECRET_KEY is not set; refused when DEBUG is off.
DEMO_SECRET_KEY = "django-insecure-example-shop-demo-key-never-use-in-production"  # noqa: S105
SANDBOX_URL = "http://127.0.0.1:8765"
SANDBOX_API_KEY = "sandbox-api-key"  # the sandbox's default server API key
REAL_PI_SDK_URL = "https://sdk.minepi.com/pi-sdk.js"


def env_str(name: str, default: str) -> str:
    """The variable as text; ``default`` when it is unset or empty."""
    value: str = env.str(name, default="").strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    """The variable as a boolean (``on``/``off``, ``true``/``false``, ``1``/``0``...)."""
    if not env_str(name, ""):
        return default
    value: bool = env.bool(name)
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """The variable as a comma-separated list."""
    if not env_str(name, ""):
        return default
    return [item.strip() for item in env.list(name) if item.strip()]


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (where the sandbox runs)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Django ----------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", DEMO_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEMO_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY in the environment: DEBUG is off.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATABASES = {
    "default": environ.Env.db_url_config(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Requests overlap: a payment callback holds its write lock while it calls Pi. Each SQLite
    # transaction then takes the write lock first and waits for it (up to 20 s), instead of
    # reading, then failing to write with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_pi_payments",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.pi_frontend",
            ],
        },
    },
]

# Pi sign-in next to the admin's username/password sign-in.
AUTHENTICATION_BACKENDS = [
    "django_pi_payments.backends.PiAccessTokenBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# A refused CSRF token answers shop.js in JSON, so the buyer reads why (shop/views.py).
CSRF_FAILURE_VIEW = "shop.views.csrf_failure"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Error pages and error emails hide the Pi secrets too (access tokens, the key, a wallet seed).
DEFAULT_EXCEPTION_REPORTER_FILTER = "django_pi_payments.debug.PiExceptionReporterFilter"

# Payment transitions on the console: watch the callbacks arrive.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_pi_payments": {"handlers": ["console"], "level": "INFO"}},
}

# --- Pi Network ------------------------------------------------------------------------------

_pi_api_base_url = env_str("PI_API_BASE_URL", SANDBOX_URL).rstrip("/")

# The sandbox: its server API key by default, its Horizon, and its window.Pi in the templates.
PI_SANDBOX = env_bool("PI_SANDBOX", is_loopback_url(_pi_api_base_url))

PI_PAYMENTS = {
    # Outside the sandbox there is no default: `manage.py check` reports pi_payments.E001.
    "API_KEY": env_str("PI_API_KEY", SANDBOX_API_KEY if PI_SANDBOX else "") or None,
    "API_BASE_URL": _pi_api_base_url,
    "NETWORK": env_str("PI_NETWORK", "Pi Testnet"),
    "HORIZON_URL": env_str("PI_HORIZON_URL", f"{_pi_api_base_url}/horizon" if PI_SANDBOX else "")
    or None,
    "APPROVAL_CHECK": "shop.payments.check_order",
}

# The Pi SDK the pages load: the real one, or the sandbox's stand-in for the Pi Browser.
PI_SDK_URL = f"{_pi_api_base_url}/sandbox/pi-sdk.js" if PI_SANDBOX else REAL_PI_SDK_URL
