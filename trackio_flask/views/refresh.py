"""The one batched refresh per page: 204 when nothing changed, else one fragment of OOB pieces."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, render_template, request
from werkzeug.exceptions import BadRequest

from .. import dashboard, polling, storage
from ..encoded import cached_response
from ..extensions import limiter, refresh_limit
from ..live import ProjectState
from ..params import view_args
from ..rendering import cursors_at, last_activity, load_page, panel_payload, poll_url, tick_state

bp = Blueprint("refresh", __name__)
log = logging.getLogger(__name__)


def _interval_arg() -> float:
    try:
        value = float(request.args.get("iv", ""))
    except ValueError:
        raise BadRequest("iv must be a number") from None
    if not 0 < value < 3600:
        raise BadRequest("iv is out of range")
    return value


def _html(body: str) -> Response:
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _no_content() -> Response:
    response = Response(status=204)
    # No body, so no type; this also keeps the compressor from labelling an empty body "br".
    del response.headers["Content-Type"]
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/projects/<project>/refresh")
@limiter.limit(refresh_limit)
def fragment(project: str) -> Response:
    """Answer a poll: 204 at the same version, else what the page lacks since its version."""
    storage.validate_project_name(project)
    page_version = request.args.get("v", "")
    page_interval = _interval_arg()
    state = tick_state(project)
    if state.version == page_version:
        # Nothing new this tick: no rows are read, unless the idle back-off wants a wider
        # interval, which needs only a new poller.
        interval = polling.interval_for(last_activity(state))
        if interval == page_interval:
            return _no_content()
        _, page = load_page(project)
        return _html(render_template("_partials/_poller_only.html",
                                     poll=poll_url(page, state, interval), interval=interval))
    state, page = load_page(project)
    interval = polling.interval_for(last_activity(state))
    # Only what this server issued is trusted: an unknown version, epoch or fingerprint turns
    # the answer into the shared full redraw, so made-up values mint no cache entries.
    cursors = cursors_at(project, page_version)
    redraw = (cursors is None or request.args.get("ph") != page.panels_fp
              or request.args.get("e") != str(page.epoch))
    sidebar_changed = cursors is None or request.args.get("sh") != page.sidebar_fp
    parts = ("frag", project, None if redraw else page_version, state.version, redraw,
             sidebar_changed, sorted(view_args(page.view).items()), interval,
             request.script_root)
    return cached_response(parts, lambda: _render(state, page, cursors, redraw, sidebar_changed,
                                                  interval))


def _render(state: ProjectState, page: dashboard.Page, cursors: tuple[int, int] | None,
            redraw: bool, sidebar_changed: bool, interval: float) -> str:
    payload: dict[str, Any] = {}
    delta: dict[str, Any] = {}
    if redraw or cursors is None:
        payload = panel_payload(state, page)
    else:
        metric_cursor, system_cursor = cursors
        for panel in page.panels:
            series = dashboard.delta_data(state, page, panel, metric_cursor)
            if series:
                delta[panel.id] = series
        for panel in page.system_panels:
            series = dashboard.delta_data(state, page, panel, system_cursor, system=True)
            if series:
                delta[panel.id] = series
    return render_template("fragment.html", page=page, **payload, redraw=redraw, delta=delta,
                           sidebar_changed=sidebar_changed, poll=poll_url(page, state, interval),
                           interval=interval)
