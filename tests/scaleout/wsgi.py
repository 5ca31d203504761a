"""WSGI entry point of the scale-out tests' gunicorn instances."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.scaleout.settings")

application = get_wsgi_application()
