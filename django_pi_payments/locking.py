"""Taking a row's lock on every database, SQLite included."""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.models import F, QuerySet


def write_first(queryset: QuerySet[Any], field: str) -> None:
    """Start the transaction with a write that changes nothing, on databases without
    ``SELECT … FOR UPDATE`` (SQLite); elsewhere do nothing: the caller's ``FOR UPDATE`` locks.

    SQLite has one write lock for the whole database. Two transactions that each read, then
    write, fail with "database is locked" when they overlap, however long its ``timeout``. A
    write first makes the transaction wait for the write lock instead, as long as ``timeout``;
    it must be the transaction's first statement. ``field`` is any column of the rows (an
    ``UPDATE`` of no row still takes the lock).
    """
    if not connections[queryset.db].features.has_select_for_update:
        queryset.update(**{field: F(field)})
