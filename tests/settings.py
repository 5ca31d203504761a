"""Django settings for the django-pi-payments test suite.

The database is chosen by the ``DATABASE_URL`` environment variable:

* unset (or empty): SQLite; the test database is a file of its own per test run, in the system
  temp dir (removed at the end), as is the default database file, which the tests never write;
* ``postgres://user:pass@host:port/name`` (or ``postgresql://``): PostgreSQL through psycopg 3,
  as exported by ``scripts/with-postgres.sh``.

The cache is LocMem unless ``REDIS_URL`` is set (``scripts/with-redis.sh`` exports it), in which
case Django's built-in ``RedisCache`` is used.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "django-pi-payments-tests-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_pi_payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

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
            ],
        },
    },
]


def database_from_url(url: str | None) -> dict[str, Any]:
    """Translate a ``DATABASE_URL`` into a ``DATABASES["default"]`` dict.

    Only what the test suite needs: SQLite when ``url`` is empty, ``sqlite:///path`` for a given
    file, and ``postgres://`` / ``postgresql://`` URLs. Query parameters become connection
    ``OPTIONS`` (e.g. ``?sslmode=disable``).
    """
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.gettempdir(), "django_pi_payments_tests.sqlite3"),
            # The test database is a file, as a site's is, not Django's shared in-memory default:
            # there SQLite refuses a lock at once instead of waiting for it (one per test run).
            "TEST": {
                "NAME": os.path.join(
                    tempfile.gettempdir(), f"django_pi_payments_test_{os.getpid()}.sqlite3"
                )
            },
        }
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"postgres", "postgresql", "pgsql"}:
        config: dict[str, Any] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": unquote(parts.hostname or ""),
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 0,
        }
        options = dict(parse_qsl(parts.query))
        if options:
            config["OPTIONS"] = options
        return config
    if scheme == "sqlite":
        # sqlite:///relative/or/absolute/path, sqlite:////abs/path, sqlite:// -> default file
        path = unquote(parts.path)[1:]
        return database_from_url(None) | ({"NAME": path} if path else {})
    raise ValueError(f"Unsupported DATABASE_URL scheme {parts.scheme!r} (use postgres:// or unset)")


DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL"))}

_redis_url = os.environ.get("REDIS_URL")
if _redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _redis_url,
            # One throwaway server may serve several runs: keep their keys apart.
            "KEY_PREFIX": f"pi-tests-{os.getpid()}",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "django-pi-payments-tests",
        }
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

PI_PAYMENTS = {
    "API_KEY": "test-api-key",
    # Nothing listens on port 1: a test that forgets the sandbox fails fast instead of
    # reaching the real Pi API.
    "API_BASE_URL": "http://127.0.0.1:1",
    "HORIZON_URL": "http://127.0.0.1:1/horizon",
    "NETWORK": "Pi Testnet",
}

# Let pytest's caplog (a handler on the root logger) see every django_pi_payments record.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {
        "django_pi_payments": {
            "level": "DEBUG",
            "handlers": [],
            "propagate": True,
        },
    },
}

# As the docs tell sites to configure it: Pi sign-in next to the usual username/password backend.
AUTHENTICATION_BACKENDS = [
    "django_pi_payments.backends.PiAccessTokenBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# The suite talks to the sandbox on loopback with DEBUG off, which E003 rightly reports.
SILENCED_SYSTEM_CHECKS = ["pi_payments.E003"]
