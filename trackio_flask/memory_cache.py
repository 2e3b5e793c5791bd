"""A flask-caching backend for one process, bounded in bytes and least-recently-used first.

flask-caching's SimpleCache bounds entries by count and pickles every value on every get; our
entries are immutable rendered text (a redraw can be megabytes), so this one stores them as
they are and evicts the least recently used until the total fits `CACHE_MEMORY_MB`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from flask_caching.backends.base import BaseCache


def size_of(value: Any) -> int:
    """Approximate bytes held by a cached value (text, bytes, and containers of them)."""
    if isinstance(value, str | bytes | bytearray):
        return len(value) + 64
    if isinstance(value, dict):
        return 64 + sum(size_of(k) + size_of(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 64 + sum(size_of(item) for item in value)
    return 64


class BoundedMemoryCache(BaseCache):
    """In-process cache whose entries add up to at most `max_bytes`."""

    def __init__(self, max_bytes: int, default_timeout: int = 300) -> None:
        super().__init__(default_timeout=default_timeout)
        self.max_bytes = max_bytes
        self.total = 0
        self._entries: OrderedDict[str, tuple[float, int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def factory(cls, app, config, args, kwargs) -> BoundedMemoryCache:
        return cls(int(config.get("CACHE_MEMORY_MB", 64)) * 2**20,
                   int(config.get("CACHE_DEFAULT_TIMEOUT", 300)))

    def _expiry(self, timeout: int | None) -> float:
        timeout = self.default_timeout if timeout is None else timeout
        return 0.0 if timeout == 0 else time.monotonic() + timeout

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, size, value = entry
            if expires and expires < time.monotonic():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        size = size_of(value)
        if size > self.max_bytes:
            return False
        with self._lock:
            self._drop(key)
            self._entries[key] = (self._expiry(timeout), size, value)
            self.total += size
            while self.total > self.max_bytes:
                self._drop(next(iter(self._entries)))
        return True

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        if self.has(key):
            return False
        return self.set(key, value, timeout)

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._drop(key)

    def clear(self) -> bool:
        with self._lock:
            self._entries.clear()
            self.total = 0
        return True

    def _drop(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self.total -= entry[1]
        return True
