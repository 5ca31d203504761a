"""Django's Redis cache with one redis-py client per connection pool, reused.

Django's :class:`~django.core.cache.backends.redis.RedisCache` builds a new ``redis.Redis`` client
for every cache operation, and redis-py fills a table of about 170 response callbacks each time:
with two or three cache operations per callback (the ``/me`` answer, the throttle's read and
write) that was about a tenth of the app's CPU per callback here, profiled in process.
A client is thread-safe and only borrows connections from its pool, so one per pool serves every
thread.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusedClientRedisCacheClient(RedisCacheClient):
    """:class:`RedisCacheClient` that keeps the client of each connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        """The pool's client, made on first use."""
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class ReusedClientRedisCache(RedisCache):
    """``BACKEND`` for the benchmark project: :class:`RedisCache` with reused clients."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
