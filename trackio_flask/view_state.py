"""The JSON island every page carries for trackio's view handshake (static/embed.js answers an
embedding page's `getState` with it plus what the address bar and the drawn charts say)."""

from __future__ import annotations

import os
from typing import Any

import orjson
from flask import request
from markupsafe import Markup
from werkzeug.exceptions import BadRequest

from . import dashboard, storage
from .caching import script_json
from .params import parse_view
from .rendering import tick_state

# Endpoint → trackio's page name (ours where trackio has no such page).
PAGES = {"pages.index": "projects", "pages.project": "metrics", "pages.runs": "runs",
         "pages.run_detail": "run-detail", "gallery.media": "media", "reports.page": "reports",
         "traces.page": "traces", "traces.detail": "traces", "artifacts.page": "artifacts",
         "files.page": "files", "settings_page.page": "settings",
         "histograms.page": "histograms", "compare.page": "compare", "sweep.page": "sweep"}
MAX_RUNS = 500  # runs named in one snapshot


def _runs(project: str) -> list[dict[str, Any]]:
    try:
        state = tick_state(project)
        view = parse_view(request.args)
    except (storage.ProjectNotFound, storage.StorageBusy, storage.UnreadableDatabase,
            storage.InvalidProjectName, BadRequest):
        return []
    run = (request.view_args or {}).get("run")
    if request.endpoint == "pages.run_detail" and run is not None:
        chosen = [info for info in state.runs.values() if run in (info.key, info.name)][:1]
    else:
        chosen = dashboard.selected_runs(state, dashboard.visible_runs(state, view), view)
    return [{"name": info.name, "id": info.key} for info in chosen[:MAX_RUNS]]


def view_snapshot() -> Markup:
    """Page, project and selected runs ({name, id}) of this request, as script-safe JSON."""
    project = (request.view_args or {}).get("project") or request.args.get("project") or None
    valid = isinstance(project, str) and storage.PROJECT_NAME.fullmatch(project) is not None
    return script_json(orjson.dumps({
        "page": PAGES.get(request.endpoint or ""),
        "project": project if valid else None,
        "space_id": os.environ.get("SPACE_ID") or None,
        "runs": _runs(project) if valid else [],
    }).decode())
