"""The one batched refresh per page: 204 when nothing changed, else one fragment of OOB pieces."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, render_template, request

from .. import dashboard, group_delta, live, polling, storage
from ..encoded import cached_response
from ..extensions import limiter, refresh_limit
from ..live import ProjectState
from ..params import view_args
from ..rendering import (
    alerts_json,
    cursors_at,
    last_activity,
    load_page,
    max_points,
    panel_payload,
    poll_url,
    tick_state,
)

bp = Blueprint("refresh", __name__)
log = logging.getLogger(__name__)


@bp.get("/projects/<project>/refresh")
@limiter.limit(refresh_limit)
def fragment(project: str) -> Response:
    """Answer a poll: 204 at the same version, else what the page lacks since its version."""
    storage.validate_project_name(project)
    page_version = request.args.get("v", "")
    page_interval = polling.interval_arg()
    state = tick_state(project)
    if state.version == page_version:
        # Nothing new this tick: no rows are read, unless the idle back-off wants a wider
        # interval, which needs only a new poller.
        interval = polling.interval_for(last_activity(state))
        if interval == page_interval:
            return polling.no_content()
        _, page = load_page(project)
        return polling.next_poller(poll_url(page, state, interval), interval)
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
    # The build notice goes with every redraw (its body is shared by pages of any version),
    # with every answer while the store builds, and with the first answer after it: it empties.
    notice = redraw or bool(state.building) or live.shown_while_building(page_version)
    return cached_response(parts, lambda: _render(state, page, cursors, redraw, sidebar_changed,
                                                  interval, notice))


def _render(state: ProjectState, page: dashboard.Page, cursors: tuple[int, int, int] | None,
            redraw: bool, sidebar_changed: bool, interval: float, notice: bool) -> str:
    payload: dict[str, Any] = {}
    delta: dict[str, Any] = {}
    alerts = None
    if redraw or cursors is None:
        payload = panel_payload(state, page)
    else:
        metric_cursor, system_cursor, alert_cursor = cursors
        if state.alert_cursor != alert_cursor:
            # New alerts: the whole (short) marker list replaces the page's.
            alerts = alerts_json(state, page)
        for panel in page.panels:
            series = group_delta.panel_delta(state, page, panel, metric_cursor, max_points()) \
                if page.view.group else dashboard.delta_data(state, page, panel, metric_cursor)
            if series:
                delta[panel.id] = series
        for panel in page.system_panels:
            series = dashboard.delta_data(state, page, panel, system_cursor, system=True)
            if series:
                delta[panel.id] = series
    return render_template("fragment.html", page=page, **payload, redraw=redraw, delta=delta,
                           new_alerts=alerts, sidebar_changed=sidebar_changed,
                           poll=poll_url(page, state, interval), interval=interval,
                           notice=notice, building=state.building)
