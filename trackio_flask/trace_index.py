"""The app's trace indexes (one per project, `traces.TraceIndexStore`), caught up to the tick."""

from __future__ import annotations

from flask import current_app

from .live import ProjectState
from .traces import TraceIndex, TraceIndexStore


def trace_index(project: str, state: ProjectState) -> TraceIndex:
    """The project's trace index at this tick's version (one per process, caught up by rowid)."""
    store = current_app.extensions.setdefault("trackio_traces", TraceIndexStore())
    return store.get(project, state.path, state.version)
