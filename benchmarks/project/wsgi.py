"""WSGI entry point for gunicorn: ``benchmarks.project.wsgi:application``.

Django's application is wrapped to report, in ``X-App-Time``, the milliseconds from receiving the
request to starting the response: what a request costs inside the application, so that a
benchmark can tell it from what gunicorn, the loopback and the client add around it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.project.settings")

APP_TIME_HEADER = "X-App-Time"

StartResponse = Callable[..., Any]
WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def timed(inner: WSGIApplication) -> WSGIApplication:
    """``inner``, answering with its own time in :data:`APP_TIME_HEADER` (milliseconds)."""

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()

        def start_timed(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            elapsed_ms = (time.perf_counter() - started) * 1000
            headers.append((APP_TIME_HEADER, f"{elapsed_ms:.3f}"))
            return start_response(status, headers, *exc_info)

        return inner(environ, start_timed)

    return application


application = timed(get_wsgi_application())
