"""Give freed heap back to the system after a large request (glibc's malloc_trim)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
# Bodies at least this large leave tens of MB of freed objects behind (a 13 MB bulk_log
# parses into ~50 MB of objects); smaller ones are not worth a trim.
TRIM_AFTER_BYTES = 1 << 20


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


_TRIM = _malloc_trim()


def release() -> None:
    """Return free heap pages to the system. glibc keeps what a request freed in its arenas
    (one per thread that allocated), so a worker's RSS stays at its largest request's peak."""
    if _TRIM is not None:
        _TRIM(0)
