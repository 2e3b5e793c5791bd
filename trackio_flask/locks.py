"""One lock per key (a project, a cache entry), created on first use. No Flask here."""

from __future__ import annotations

import threading


class KeyedLocks:
    """Hand out the same lock for the same key, so work on one key runs one at a time."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, key: str) -> None:
        """Drop a key's lock once nobody needs it (single-flight keys are short-lived)."""
        with self._guard:
            self._locks.pop(key, None)
