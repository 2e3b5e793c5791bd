"""Version-keyed flask-caching entries with one computation per key and a byte bound per entry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app
from markupsafe import Markup

from .dashboard import fingerprint
from .extensions import cache
from .locks import KeyedLocks

T = TypeVar("T")
_flights = KeyedLocks()
computations = {"count": 0}


def cached(parts: tuple, compute: Callable[[], T], size: Callable[[T], int],
           stale: tuple | None = None) -> T:
    """Return the cached value for `parts`, computing it once however many requests ask at once.

    Keys carry the project's version, so entries never need invalidating; values larger than
    CACHE_ENTRY_MAX_KB are served but not stored, so entries are bounded in bytes, not only count.
    With `stale` (the key of a family of values, e.g. every snapshot of one page), requests
    that arrive while another computes take the family's latest value instead of waiting.
    """
    key = "tf:" + fingerprint(*parts)
    value = cache.get(key)
    if value is not None:
        return value
    latest_key = None if stale is None else "tf:latest:" + fingerprint(*stale)
    lock = _flights(key)
    if not lock.acquire(blocking=latest_key is None):
        value = cache.get(latest_key)
        if value is not None:
            return value
        lock.acquire()
    try:
        value = cache.get(key)
        if value is None:
            value = compute()
            computations["count"] += 1
            if size(value) <= int(current_app.config["CACHE_ENTRY_MAX_KB"]) * 1024:
                cache.set(key, value)
                if latest_key is not None:
                    cache.set(latest_key, value)
    finally:
        lock.release()
    _flights.forget(key)
    return value


_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"})


def script_json(text: str) -> Markup:
    """Mark JSON text safe inside <script type="application/json"> (no tag can close it early)."""
    return Markup(text.translate(_ESCAPES))
