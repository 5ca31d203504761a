"""The test settings with ``AUTH_USER_MODEL`` set to :class:`tests.auth.custom_user.models.Pioneer`.

``tests/auth/test_custom_user_model.py`` runs the authentication tests again with these.
"""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.auth.custom_user"]  # noqa: F405
AUTH_USER_MODEL = "custom_user.Pioneer"
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # The outer run holds the default test database open: use another one.
    DATABASES["default"]["TEST"] = {"NAME": "test_pi_payments_custom_user"}  # noqa: F405
