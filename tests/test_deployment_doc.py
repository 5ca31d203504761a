"""Every name docs/deployment.md tells users to set is real."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import global_settings
from django.core.management import load_command_class
from django.utils.module_loading import import_string
from gunicorn.config import KNOWN_SETTINGS

from django_pi_payments.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "deployment.md").read_text()


def test_pi_payments_settings_exist():
    named = set(re.findall(r'PI_PAYMENTS\["([A-Z_]+)"\]', PAGE))
    assert {"API_KEY", "NETWORK", "API_BASE_URL", "ME_CACHE_SECONDS"} <= named
    assert named <= set(DEFAULTS)


def test_django_settings_exist():
    named = set(re.findall(r"^([A-Z][A-Z_]+) = ", PAGE, flags=re.M))
    named -= {"PI_PAYMENTS", "CELERY_BEAT_SCHEDULE", "REST_FRAMEWORK"}
    assert {"CACHES", "DATABASES", "AUTHENTICATION_BACKENDS"} <= named
    assert all(hasattr(global_settings, name) for name in named), named


def test_check_ids_exist():
    source = (ROOT / "django_pi_payments" / "checks.py").read_text()
    named = set(re.findall(r"pi_payments\.[EW]\d{3}", PAGE))
    assert {"pi_payments.E001", "pi_payments.W002"} <= named
    assert {identifier for identifier in named if f'"{identifier}"' in source} == named


def test_reconcile_options_exist():
    command = load_command_class("django_pi_payments", "pi_reconcile")
    parser = command.create_parser("manage.py", "pi_reconcile")
    known = {option for action in parser._actions for option in action.option_strings}
    named = set(re.findall(r"pi_reconcile ([^\n|`]*)", PAGE))
    options = {o for line in named for o in re.findall(r"(--[a-z-]+)", line)}
    assert {"--cancel-unpaid", "--workers"} <= options
    assert options <= known


def test_gunicorn_options_exist():
    known = {flag for setting in KNOWN_SETTINGS for flag in setting.cli or []}
    block = PAGE.split("gunicorn mysite.wsgi:application", 1)[1].split("```", 1)[0]
    options = set(re.findall(r"(--[a-z-]+)", block))
    assert {"--worker-class", "--threads", "--timeout"} <= options
    assert options <= known


def test_python_paths_exist():
    assert callable(import_string("django_pi_payments.reconcile.reconcile"))
    for path in re.findall(r'"(django_pi_payments\.[a-z_.]+\.[A-Za-z]+)"', PAGE):
        import_string(path)
