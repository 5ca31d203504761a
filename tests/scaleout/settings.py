"""Settings of the child processes (gunicorn instances, pi_reconcile runs) of the scale-out tests.

The parent test passes the sandbox, the database and Redis through the environment.
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.scaleout.apps.ScaleoutProbeConfig"]

PI_PAYMENTS = {
    "API_KEY": os.environ.get("PI_SANDBOX_API_KEY", ""),
    "API_BASE_URL": os.environ.get("PI_SANDBOX_URL", "http://127.0.0.1:1"),
    "HORIZON_URL": os.environ.get("PI_SANDBOX_URL", "http://127.0.0.1:1") + "/horizon",
    "NETWORK": "Pi Testnet",
    "WALLET_PRIVATE_SEED": os.environ.get("PI_WALLET_SEED") or None,
}

REST_FRAMEWORK = {
    "DEFAULT_THROTTLE_RATES": {
        "pi_payments_auth": "10000/min",
        "pi_payments_callbacks": "10000/min",
    }
}

if os.environ.get("REDIS_URL"):
    # One cache shared by every instance, as in production (the suite's default prefix is per
    # process, to keep parallel test runs apart).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": os.environ.get("PI_SCALEOUT_CACHE_PREFIX", "pi-scaleout"),
        }
    }
