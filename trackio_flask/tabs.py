"""Which of a project's tabs have something to show (trackio greys the others out and hides
them on narrow screens), decided once per project version from what the live store already
knows plus one-row probes."""

from __future__ import annotations

from flask import current_app

from . import gallery, groups, histograms, media, reports, storage
from .live import ProjectState
from .rendering import tick_state
from .rich import refs_of

# Tabs that may be empty, by endpoint; the others (metrics, runs, compare, settings) always show.
OPTIONAL = ("sweep.page", "traces.page", "gallery.media", "histograms.page", "reports.page", "files.page",
            "artifacts.page")


def _has_row(state: ProjectState, table: str) -> bool:
    conn = storage.open_readonly(state.path)
    try:
        if table not in storage.table_names(conn):
            return False
        return bool(storage.read(conn, f"SELECT 1 FROM {table} LIMIT 1"))
    finally:
        conn.close()


def _availability(state: ProjectState) -> dict[str, bool]:
    data_dir = current_app.config["DATA_DIR"]
    return {
        "traces.page": _has_row(state, "traces"),
        "gallery.media": bool(refs_of(state, {*gallery.MEDIA_KINDS, gallery.TABLE_KIND})),
        "histograms.page": bool(refs_of(state, {histograms.KIND})),
        "reports.page": bool(state.alerts) or bool(refs_of(state, {reports.KIND})),
        "files.page": media.has_project_files(data_dir, state.project),
        "artifacts.page": _has_row(state, "artifact_versions"),
        # A sweep needs runs that differ: two runs and a config key whose value varies.
        "sweep.page": len(state.runs) > 1 and bool(groups.config_keys(state.configs.values())),
    }


def availability(project: str) -> dict[str, bool]:
    """Endpoint → whether that tab has data; tabs not listed in OPTIONAL are always True.
    A project that cannot be read right now shows every tab."""
    try:
        state = tick_state(project)
    except (storage.ProjectNotFound, storage.StorageBusy, storage.UnreadableDatabase,
            storage.InvalidProjectName):
        return {}
    return state.derived("tab-availability", _availability)
