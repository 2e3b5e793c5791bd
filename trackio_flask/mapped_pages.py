"""Let go of a store-mapped run's pages once a read has copied out what it needs.

A run's series store file is mapped shared, and reading it maps its pages into this worker: they
count in its RSS although they are page cache that every worker shares. The kernel maps whole
folios (2 MB here) whatever was read of them, so a chart that reads a few values per pixel
column, a zoom, a poll's tail or a smoothed line would otherwise leave the whole store counted
against the worker. MADV_DONTNEED on a shared file mapping drops only this process's page-table
entries: the data stays in the page cache and the file (dirty pages included), and the next read
maps it back with a minor fault. Private copies (a run decoded in memory, a copy-on-write
mapping) are never touched.

Mapping a folio back is not free (~20 µs), and a page reads every run's ids and steps once per
panel: dropping them after each read tripled a poll's cost and doubled a page's. So within a
request's scope (`open_scope` / `close_scope`, the app's request hooks) a finished read drops
its metric's column at once (no other panel reads it) and the run's shared columns (ids, steps,
times) when the request ends; outside a scope, and for reads of thousands of runs
(`release`), everything goes at once.
"""

from __future__ import annotations

import mmap
import weakref
from collections.abc import Iterable
from contextvars import ContextVar, Token
from typing import Any

import numpy as np

from .series import Columns

_pending: ContextVar[dict[int, Columns] | None] = ContextVar("mapped_pages_pending", default=None)


def _memmap_of(array: Any) -> np.memmap | None:
    """The numpy.memmap over a shared file mapping that an array is a view of, else None."""
    base = array
    while base is not None:
        if isinstance(base, np.memmap) and type(base.base) is mmap.mmap:
            # A private copy-on-write mapping: dropping its pages would lose writes.
            return None if base.mode == "c" else base
        base = getattr(base, "base", None)
    return None


def release(columns: Columns | None) -> None:
    """Drop a store-mapped run's pages, and its pyramid's, from this process now (a no-op
    for private columns)."""
    if columns is None or not columns.shared:
        return
    _drop_all(_memmap_of(columns.ids))
    held = columns.pyramid
    if held is not None and held.series:
        # Every metric's pyramid is a view of the one sidecar file mapping.
        _drop_all(_memmap_of(next(iter(next(iter(held.series.values())).values()))))


def done_with(columns: Columns | None, metrics: Iterable[str] = (), pyramid: bool = False
              ) -> None:
    """A read of a run's `metrics` is over: inside a scope, drop those columns (and with
    `pyramid` their pyramids) now and the rest of the run at the scope's end; outside one,
    drop it all now. A read of a few rows (a poll's tail) passes no metrics: its folios wait
    for the scope's end."""
    if columns is None or not columns.shared:
        return
    pending = _pending.get()
    if pending is None:
        release(columns)
        return
    held = columns.pyramid
    for name in metrics:
        column = columns.metrics.get(name)
        if column is not None:
            _drop_range(column)
        if pyramid and held is not None and name in held.series:
            for stat in held.series[name].values():
                _drop_range(stat)
    pending[id(columns)] = columns


def open_scope() -> Token:
    """Start collecting runs to let go of at `close_scope` (one per request)."""
    return _pending.set({})


def close_scope(token: Token) -> None:
    """Let go of every run read since `open_scope`."""
    pending = _pending.get() or {}
    try:
        _pending.reset(token)
    except ValueError:  # closed from another context than it was opened in
        _pending.set(None)
    for columns in pending.values():
        release(columns)


def _drop_all(memmap: np.memmap | None) -> None:
    if memmap is not None:
        _advise(memmap.base, 0, len(memmap.base))


def _drop_range(array: np.ndarray) -> None:
    """Drop the whole pages under one column of a mapping (its neighbours' shared pages too:
    they are mapped back when read)."""
    key = id(array)
    found = _spans.get(key)
    if found is None or found[0]() is not array:
        forget = lambda _ref: _spans.pop(key, None)  # noqa: E731 - the column was unmapped
        found = _spans[key] = (weakref.ref(array, forget), *_span(array))
    _ref, mapping, first, length = found
    if mapping is not None:
        _advise(mapping, first, length)


# Where each column lies in its mapping, found once per column: working it out took longer
# than the madvise call (a page reads hundreds of columns).
_spans: dict[int, tuple[weakref.ref, mmap.mmap | None, int, int]] = {}


def _span(array: np.ndarray) -> tuple[mmap.mmap | None, int, int]:
    """(mapping, first byte, length) of the whole pages under a column; no mapping: private."""
    memmap = _memmap_of(array)
    if memmap is None or not array.nbytes:
        return None, 0, 0
    # numpy maps from the allocation granule below the memmap's offset.
    start = array.__array_interface__["data"][0] - memmap.__array_interface__["data"][0] \
        + memmap.offset % mmap.ALLOCATIONGRANULARITY
    first = start // mmap.PAGESIZE * mmap.PAGESIZE
    stop = min(len(memmap.base), -(-(start + array.nbytes) // mmap.PAGESIZE) * mmap.PAGESIZE)
    return (memmap.base, first, stop - first) if 0 <= first < stop else (None, 0, 0)


def _advise(mapping: mmap.mmap, start: int, length: int) -> None:
    try:
        mapping.madvise(mmap.MADV_DONTNEED, start, length)
    except (OSError, ValueError):  # a mapping closed under us has nothing left to drop
        pass
