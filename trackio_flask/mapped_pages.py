"""Let go of a store-mapped run's pages once a read has copied out what it needs.

A run's series store file is mapped shared, and reading it maps its pages into this worker: they
count in its RSS although they are page cache that every worker shares. A view that reads
thousands of runs once (the grey band of a chart, group aggregates, the Sweep tab's summaries),
or a full view read through the pyramid, whose few values per pixel column still map whole 2 MB
folios, would otherwise leave the whole store counted against the worker. MADV_DONTNEED on a
shared file mapping drops only this process's page-table entries: the data stays in the page
cache and the file (dirty pages included), and the next read maps it back with a minor fault.
Private copies (a run decoded in memory, a copy-on-write mapping) are never touched.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np

from .series import Columns


def _shared_mapping(array: Any) -> mmap.mmap | None:
    """The shared file mapping an array is a view of (numpy.memmap's base), else None."""
    base = array.base
    while base is not None and type(base) is not mmap.mmap:
        if isinstance(base, np.memmap) and base.mode == "c":
            return None  # a private copy-on-write mapping: dropping its pages loses writes
        base = getattr(base, "base", None)
    return base


def release(columns: Columns | None) -> None:
    """Drop a store-mapped run's pages, and its pyramid's, from this process (a no-op for
    private columns)."""
    if columns is None or not columns.shared:
        return
    _drop(_shared_mapping(columns.ids))
    held = columns.pyramid
    if held is not None and held.series:
        # Every metric's pyramid is a view of the one sidecar file mapping.
        _drop(_shared_mapping(next(iter(next(iter(held.series.values())).values()))))


def _drop(mapping: mmap.mmap | None) -> None:
    if mapping is None:
        return
    try:
        mapping.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # a mapping closed under us has nothing left to drop
        pass
