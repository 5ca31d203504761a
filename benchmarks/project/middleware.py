"""Counts the SQL statements of each request and reports them in ``X-DB-Queries``.

Every statement sent through the request thread's connection is counted, savepoints included,
so the figure is what the database really saw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse

QUERIES_HEADER = "X-DB-Queries"


def count_queries(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware factory: wrap the request in a counting ``execute_wrapper``."""

    def middleware(request: HttpRequest) -> HttpResponse:
        count = 0

        def counter(
            execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
        ) -> Any:
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counter):
            response = get_response(request)
        response[QUERIES_HEADER] = str(count)
        return response

    return middleware
