"""Helpers for the tests of Django's error reports (the DEBUG page, ``mail_admins`` emails)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from django.test import override_settings
from django.views.debug import ExceptionReporter, get_default_exception_reporter_filter

PI_FILTER = "django_pi_payments.debug.PiExceptionReporterFilter"
DJANGO_FILTER = "django.views.debug.SafeExceptionReporterFilter"
_TESTS = Path(__file__).resolve().parent


@contextmanager
def reporter_filter(dotted_path: str) -> Iterator[None]:
    """``DEFAULT_EXCEPTION_REPORTER_FILTER`` is ``dotted_path`` inside the block.

    Django caches the filter it first builds and no ``setting_changed`` receiver clears it: the
    cache is cleared on entry and on exit.
    """
    get_default_exception_reporter_filter.cache_clear()
    try:
        with override_settings(DEFAULT_EXCEPTION_REPORTER_FILTER=dotted_path):
            yield
    finally:
        get_default_exception_reporter_filter.cache_clear()


def _below_the_tests(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without its leading frames of test modules, whose variables hold the secrets that
    the tests pass in."""
    while tb is not None and Path(tb.tb_frame.f_code.co_filename).is_relative_to(_TESTS):
        tb = tb.tb_next
    return tb


def reporter(exc: BaseException, request: Any = None) -> ExceptionReporter:
    """Django's reporter for ``exc``, from the first frame below the test's own.

    ``exc`` keeps the shortened traceback: for a chained exception Django reads it there.
    """
    exc.with_traceback(_below_the_tests(exc.__traceback__))
    return ExceptionReporter(request, type(exc), exc, exc.__traceback__)


def report(exc: BaseException, request: Any = None) -> str:
    """The text and the HTML (with the frames' variables) of the report of ``exc``."""
    found = reporter(exc, request)
    return found.get_traceback_text() + found.get_traceback_html()
