"""Hold a payment's lock in another connection, as a concurrent transaction would; or take the
database away altogether."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, connections, transaction
from django.db.models import F, QuerySet

from django_pi_payments.models import Payment


@contextmanager
def lock_held_elsewhere(identifier: str) -> Iterator[None]:
    """Another connection holds the payment's row lock (SQLite: the database's write lock) until
    the block ends, and this thread's connection waits for a lock 0.2 s at most (then as before).

    Needs committed data (``transactional_db``): the other connection does not see the test's
    transaction.
    """
    with rows_locked_elsewhere(Payment.objects.filter(identifier=identifier), "memo"):
        yield


@contextmanager
def rows_locked_elsewhere(rows: QuerySet[Any], field: str) -> Iterator[None]:
    """:func:`lock_held_elsewhere` for any rows: another connection writes ``field`` of
    ``rows`` unchanged, and holds their locks until the block ends."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                rows.update(**{field: F(field)})
                taken.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    setting = "PRAGMA busy_timeout" if connection.vendor == "sqlite" else "SET lock_timeout"
    with connection.cursor() as cursor:
        cursor.execute(
            "PRAGMA busy_timeout" if connection.vendor == "sqlite" else "SHOW lock_timeout"
        )
        (before,) = cursor.fetchone()
        cursor.execute(f"{setting} = 200")
    try:
        yield
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":  # no parameters in a PRAGMA
                cursor.execute(f"{setting} = {int(before)}")
            else:
                cursor.execute(f"{setting} = %s", [before])


@contextmanager
def database_down() -> Iterator[None]:
    """The default database refuses every new connection until the block ends."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/pi/shop.sqlite3"
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)
