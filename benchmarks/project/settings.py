"""Settings of the benchmark project, configured from the environment by :mod:`benchmarks.run`.

* ``DATABASE_URL`` (required): PostgreSQL, as exported by ``scripts/with-postgres.sh``;
* ``REDIS_URL``: the cache shared by the gunicorn workers (``/me`` answers, throttle counts),
  Django's Redis backend with its clients reused (:mod:`benchmarks.project.cache`); without it a
  file-based cache in the temp dir plays that role;
* ``BENCH_SANDBOX_URL``: the sandbox standing in for Pi and Horizon;
* ``BENCH_VERIFY_TRANSACTIONS``: ``0`` to switch Horizon verification off.

Persistent database connections (``CONN_MAX_AGE``) matter here: a callback that opened a new
PostgreSQL connection would pay a few milliseconds that have nothing to do with the app. Server-side
parameter binding (``OPTIONS["server_side_binding"]``) lets psycopg prepare the statements a
callback repeats, so PostgreSQL parses and plans them once per connection, and the app no longer
quotes parameters into the SQL text: both spend less CPU per callback.
"""

from __future__ import annotations

import os
import tempfile

import environ

env = environ.Env()

SECRET_KEY = "django-pi-payments-benchmarks-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "django_pi_payments",
]

MIDDLEWARE = [
    "benchmarks.project.middleware.count_queries",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "benchmarks.project.urls"
WSGI_APPLICATION = "benchmarks.project.wsgi.application"

DATABASES = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"].update(CONN_MAX_AGE=600, OPTIONS={"server_side_binding": True})

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "benchmarks.project.cache.ReusedClientRedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.path.join(tempfile.gettempdir(), "django-pi-payments-bench-cache"),
        }
    }

AUTHENTICATION_BACKENDS = [
    "django_pi_payments.backends.PiAccessTokenBackend",
    "django.contrib.auth.backends.ModelBackend",
]

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Every benchmark client comes from 127.0.0.1: raise the app's default rates far enough that
    # the throttles are still consulted on every request but never refuse one.
    "DEFAULT_THROTTLE_RATES": {
        "pi_payments_callbacks": "1000000/s",
        "pi_payments_auth": "1000000/s",
    },
}

_sandbox = os.environ.get("BENCH_SANDBOX_URL", "http://127.0.0.1:8765").rstrip("/")
PI_PAYMENTS = {
    "API_KEY": os.environ.get("BENCH_API_KEY", "sandbox-api-key"),
    "API_BASE_URL": _sandbox,
    "HORIZON_URL": f"{_sandbox}/horizon",
    "NETWORK": "Pi Testnet",
    "VERIFY_TRANSACTIONS": os.environ.get("BENCH_VERIFY_TRANSACTIONS", "1") != "0",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # The start-up probe's 401s are expected; server errors still show.
    "loggers": {"django.request": {"level": "ERROR"}},
}
