"""Locks: one per key (a project, a cache entry), and small budgets of slots. No Flask here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


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


class NoSlot(RuntimeError):
    """Every slot of a budget is taken (answered 503 with Retry-After, never queued)."""


class Slots:
    """A small concurrency budget: work past it is refused at once instead of waiting."""

    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def taken(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            raise NoSlot("the server is busy with other heavy reads")
        try:
            yield
        finally:
            self._slots.release()
