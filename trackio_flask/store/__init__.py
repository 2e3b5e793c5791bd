"""A columnar copy of each project's series (Arrow IPC files, memory-mapped), derived from
Trackio's SQLite: built once for all workers, extended by new rows, rebuilt when rows change."""

from .series_store import Restored, SeriesStore, open_store

__all__ = ["Restored", "SeriesStore", "open_store"]
