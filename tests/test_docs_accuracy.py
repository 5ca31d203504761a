"""Claims of the docs about logging and error reports match the code they describe."""

from __future__ import annotations

import re
from pathlib import Path

from django.views.debug import SafeExceptionReporterFilter

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_pi_payments"
GET_LOGGER = re.compile(r'getLogger\("(django_pi_payments\.[a-z_.]+)"\)')


def read(name: str) -> str:
    return (ROOT / name).read_text()


def package_loggers() -> set[str]:
    """The loggers the app (not the sandbox, a development tool) writes to."""
    names = set()
    for module in PACKAGE.rglob("*.py"):
        if "sandbox" not in module.relative_to(PACKAGE).parts:
            names.update(GET_LOGGER.findall(module.read_text()))
    return names


def test_deployment_names_every_logger_to_monitor() -> None:
    page = " ".join(read("docs/deployment.md").split())
    (listed,) = re.findall(r"The `django_pi_payments` loggers \(([^)]*)\)", page)
    short = re.findall(r"`(?:django_pi_payments)?(\.[a-z_]+)`", listed)
    assert package_loggers()
    assert {f"django_pi_payments{name}" for name in short} == package_loggers()


def test_security_lists_the_names_django_hides_in_error_reports() -> None:
    page = " ".join(read("docs/security.md").split())
    (listed,) = re.findall(r"hiding only the names that contain ([^.]*)\.", page)
    documented = set(re.findall(r"`([A-Z_]+)`", listed))
    assert documented == set(SafeExceptionReporterFilter.hidden_settings.pattern.split("|"))
