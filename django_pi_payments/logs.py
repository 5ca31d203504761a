"""Log lines that every request would repeat while something is down, let through occasionally."""

from __future__ import annotations

import logging
import threading
import time


class Occasionally:
    """Thins out a log line that every request would repeat (an API key Pi refuses, a cache
    server down): :meth:`due` lets it through when it starts, then at most once every
    ``seconds`` per key and process."""

    def __init__(self, seconds: float = 60.0) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def due(self, key: str) -> str | None:
        """``None`` when ``key`` was let through less than ``seconds`` ago; otherwise a text to
        end the line with: empty, or how many were held back since the last one."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.seconds:
                self._held_back[key] = self._held_back.get(key, 0) + 1
                return None
            self._last[key] = now
            held_back = self._held_back.pop(key, 0)
        return f" ({held_back} more since the last such line)" if held_back else ""

    def log(
        self, logger: logging.Logger, level: int, key: str, message: str, *args: object
    ) -> None:
        """Log ``message % args`` at ``level`` when :meth:`due` lets ``key`` through, ending
        with how many such lines were held back."""
        held_back = self.due(key)
        if held_back is not None:
            logger.log(level, message + "%s", *args, held_back)
