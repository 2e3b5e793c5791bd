"""What the page and fragment views share: the page model, its poll URL and its chart payload.

Poll URL wire format (`GET /projects/<p>/refresh`), besides the view's own parameters:
    v   the project version the page shows; the server remembers, per version it rendered,
        the row cursors that version had, so a poll's delta starts where its page ended
    e   the page's downsampling epoch        sh  its sidebar fingerprint
    ph  its panel-set fingerprint            iv  its current polling interval (s)
A version, epoch or fingerprint the server did not issue is never trusted or cached on its
own: it only makes the answer the shared full redraw for the current version.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask import current_app, g, request, url_for
from markupsafe import Markup

from . import charts, dashboard
from .caching import cached, script_json
from .extensions import cache, store
from .live import ProjectState
from .params import parse_view, parse_view_or_default, view_args

VERSION_MEMORY_S = 3600


def max_points() -> int:
    return int(current_app.config["MAX_POINTS"])


PAGE_SNAPSHOT_S = 30


def tick_state(project: str) -> ProjectState:
    """The project as of this tick: caught up at most once per TICK_S for all viewers."""
    return store().get(project, max_age=float(current_app.config["TICK_S"]))


def snapshot_bucket() -> int:
    """Cached pages are rebuilt this often while data flows, so a new viewer's first poll
    (snapshot → now) stays small; between rebuilds every viewer gets the same bytes."""
    return int(time.time() // PAGE_SNAPSHOT_S)


def page_view(metric_names: set[str] | None = None) -> dashboard.View:
    """The request's view for a full page: bad settings fall back to their defaults, and the
    page says so (`g.notices`, shown by base.html and part of every cached body's key)."""
    view, notices = parse_view_or_default(request.args, metric_names)
    for text in notices:
        add_notice(text)
    return view


def add_notice(text: str) -> None:
    """Tell the page's reader what it fell back from (a fixed text: it becomes part of keys)."""
    g.notices = (*g.get("notices", ()), text)


def notices_besides(text: str) -> tuple[str, ...]:
    """The page's notices but `text`, for a page that shows that one in its own element
    (it stays in `g.notices`, so it still keys the cached body)."""
    return tuple(notice for notice in g.get("notices", ()) if notice != text)


def load_page(project: str, view: dashboard.View | None = None, lenient: bool = False
              ) -> tuple[ProjectState, dashboard.Page]:
    """The project's state at this tick and the page model for the request's view (`lenient`:
    a full page's, see page_view; else a bad setting is a 400)."""
    state = tick_state(project)
    if state.building and lenient:
        add_notice(state.building)
    if view is None:
        view = page_view(state.metric_names) if lenient else parse_view(request.args,
                                                                         state.metric_names)
    page = dashboard.build_page(project, state, view, max_points(),
                                tuple(current_app.config["PLOT_ORDER"]))
    if lenient and page.selection_note:
        add_notice(page.selection_note)
    return state, page


def last_activity(state: ProjectState) -> float:
    """When any run last logged (the idle back-off counts from here); once per version."""
    if state.building:
        # The page fills in as the build commits parts, and its notice follows: poll as for
        # a project being logged to, not at an idle project's pace, until the build is done.
        return time.time()
    return state.derived(("last-activity",), _last_activity)


def _last_activity(state: ProjectState) -> float:
    times = [run.last_time for run in state.runs.values() if run.last_time == run.last_time]
    return max(times, default=state.changed_at)


def _version_key(project: str, version: str) -> str:
    return f"tfv:{project}:{version}"


def remember_version(project: str, state: ProjectState) -> str:
    """Record the cursors of the version a page is about to show; return that version.

    Cursors are read before the version: a concurrent catch-up can then only make a later
    delta resend rows the page has (deltas replace rows, so that is harmless), never skip any.
    """
    cursors = (state.metric_cursor, state.system_cursor, state.alert_cursor)
    version = state.version
    cache.set(_version_key(project, version), cursors, timeout=VERSION_MEMORY_S)
    return version


def cursors_at(project: str, version: str) -> tuple[int, int, int] | None:
    """The (metric, system, alert) cursors of a version this server issued, None for one it
    never did."""
    if not version or len(version) > 64:
        return None
    found = cache.get(_version_key(project, version))
    # A shorter tuple was remembered by an older server sharing the cache: not ours to trust.
    return tuple(found) if found is not None and len(found) == 3 else None  # type: ignore


def poll_url(page: dashboard.Page, state: ProjectState, interval: float) -> str:
    """The poller's URL: the view plus what the page already shows."""
    version = remember_version(page.project, state)
    return url_for("refresh.fragment", project=page.project, **view_args(page.view), v=version,
                   e=page.epoch, sh=page.sidebar_fp, ph=page.panels_fp, iv=interval)


def panel_payload(state: ProjectState, page: dashboard.Page) -> dict[str, Any]:
    """Full data for every panel (as JSON islands), plus the specs of the shapes they use."""
    return cached(("panels", page.project, state.version, sorted(view_args(page.view).items())),
                  lambda: _panel_payload(state, page),
                  lambda payload: sum(len(text) for text in payload["data"].values()))


def _panel_payload(state: ProjectState, page: dashboard.Page) -> dict[str, Any]:
    limit = max_points()
    data = {p.id: dashboard.full_data(state, page, p, limit) for p in page.panels}
    data.update({p.id: dashboard.full_data(state, page, p, limit, system=True)
                 for p in page.system_panels})
    themes = charts.themes_for(page.view.theme)
    specs = {shape.key: {theme: charts.spec_for(shape, theme) for theme in themes}
             for shape in page.shapes}
    return {"data": {key: script_json(orjson.dumps(value).decode()) for key, value in data.items()},
            "specs": script_json(orjson.dumps(specs).decode()),
            "alerts": alerts_json(state, page)}


def alerts_json(state: ProjectState, page: dashboard.Page) -> Markup:
    """The page's alert markers as a JSON island (they ride on the panel payload and refresh)."""
    return script_json(orjson.dumps(dashboard.alert_marks(state, page)).decode())
