"""A cache backend that fails on every call, like an unreachable Redis."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.base import BaseCache


class CacheDown(ConnectionError):
    """The cache server cannot be reached."""


class BrokenCache(BaseCache):
    """Every operation raises :class:`CacheDown`."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise CacheDown("cache server unreachable")

    add = get = set = touch = delete = has_key = incr = clear = _fail
    get_many = set_many = delete_many = _fail
