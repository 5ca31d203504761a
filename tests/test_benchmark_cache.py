"""The Redis cache backend of the benchmark project, which docs/deployment.md offers to copy."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks.project.cache import ReusedClientRedisCache

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="needs Redis: install redis-server (REDIS_URL, scripts/with-redis.sh)",
)


def test_one_client_per_pool_serves_every_thread() -> None:
    cache = ReusedClientRedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": "bench-cache-test"})
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client() is client

    def round_trip(number: int) -> object:
        cache.set(f"key{number}", {"n": number}, 30)
        return cache.get(f"key{number}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(round_trip, range(32))) == [{"n": n} for n in range(32)]
    assert cache.get("absent", "default") == "default"
    cache.delete_many([f"key{number}" for number in range(32)])
    assert cache.get("key0") is None
