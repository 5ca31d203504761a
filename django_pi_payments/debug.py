"""An exception reporter filter that hides the secrets of django-pi-payments in error reports.

Django's :class:`~django.views.debug.SafeExceptionReporterFilter` hides settings and request
headers whose names contain ``API``, ``AUTH``, ``TOKEN``, ``KEY``, ``SECRET``, ``PASS``,
``SIGNATURE`` or ``HTTP_COOKIE``. ``PI_PAYMENTS["WALLET_PRIVATE_SEED"]`` matches none of them, so
the DEBUG error page and every ``mail_admins`` error email would show the app wallet's seed in
clear. Set::

    DEFAULT_EXCEPTION_REPORTER_FILTER = "django_pi_payments.debug.PiExceptionReporterFilter"

``manage.py check`` warns (``pi_payments.W003``) while the active filter would show the seed.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class PiExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding every setting or request header whose name contains ``SEED``
    or ``AUTHORIZATION`` (the ``HTTP_AUTHORIZATION`` header carries Bearer access tokens).

    Like Django's, it hides the variables marked with ``sensitive_variables`` (the access tokens,
    the API key and the seed in this app's functions) only while ``DEBUG`` is off; settings and
    headers are hidden in any case.
    """

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern + "|SEED|AUTHORIZATION", re.IGNORECASE
    )
