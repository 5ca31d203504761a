"""Hold a payment's lock in another connection, as a concurrent transaction would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, connections, transaction
from django.db.models import F

from django_pi_payments.models import Payment


@contextmanager
def lock_held_elsewhere(identifier: str) -> Iterator[None]:
    """Another connection holds the payment's row lock (SQLite: the database's write lock) until
    the block ends, and this thread's connection waits for a lock 0.2 s at most.

    Needs committed data (``transactional_db``): the other connection does not see the test's
    transaction.
    """
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Payment.objects.filter(identifier=identifier).update(memo=F("memo"))
                taken.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout = 200")
        else:
            cursor.execute("SET lock_timeout = '200ms'")
    try:
        yield
    finally:
        release.set()
        holder.join()
