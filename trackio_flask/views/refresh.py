"""The one batched refresh per page: 204 when nothing changed, else one fragment of OOB pieces."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, render_template, request
from werkzeug.exceptions import BadRequest

from .. import dashboard, storage
from ..app import store
from ..caching import cached
from ..extensions import limiter, refresh_limit
from . import polling
from .pages import dashboard_context, last_activity, panel_payload, poll_url
from .params import parse_view, view_args

bp = Blueprint("refresh", __name__)
log = logging.getLogger(__name__)


def _int_arg(name: str) -> int:
    try:
        value = int(request.args.get(name, ""))
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if value < 0:
        raise BadRequest(f"{name} must not be negative")
    return value


def _float_arg(name: str) -> float:
    try:
        value = float(request.args.get(name, ""))
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None
    if not 0 < value < 3600:
        raise BadRequest(f"{name} is out of range")
    return value


def _no_content() -> Response:
    response = Response(status=204)
    # No body, so no type; this also keeps the compressor from labelling an empty body "br".
    del response.headers["Content-Type"]
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/projects/<project>/refresh")
@limiter.limit(refresh_limit)
def fragment(project: str) -> Response:
    """Answer a poll: 204 at the same version, else what the page lacks since its cursors."""
    storage.validate_project_name(project)
    page_version = request.args.get("v", "")
    page_interval = _float_arg("iv")
    current = store().current_version(project)
    if current == page_version:
        # Nothing committed since the page's version: no rows are read, unless the idle
        # back-off wants a wider interval, which needs only a new poller.
        state = store().peek(project)
        interval = polling.interval_for(last_activity(state)) if state else page_interval
        if interval == page_interval or state is None:
            return _no_content()
        return _poller_only(project, state, interval)
    cursors = (_int_arg("c"), _int_arg("sc"), _int_arg("e"))
    state = store().get(project)
    view = parse_view(request.args, state.metric_names)
    interval = polling.interval_for(last_activity(state))
    key = ("frag", project, page_version, state.version, cursors, request.args.get("sh"),
           request.args.get("ph"), sorted(view_args(view).items()), interval, request.script_root)
    body = cached(key, lambda: _render(project, state, view, cursors, interval), len)
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _poller_only(project: str, state, interval: float) -> Response:
    view = parse_view(request.args, state.metric_names)
    ctx = dashboard_context(project, state, view)
    body = render_template("_partials/_poller_only.html",
                           poll=poll_url(project, view, state, ctx, interval), interval=interval)
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _render(project: str, state, view: dashboard.View, cursors: tuple[int, int, int],
            interval: float) -> str:
    metric_cursor, system_cursor, page_epoch = cursors
    ctx = dashboard_context(project, state, view)
    redraw = ctx["panels_fp"] != request.args.get("ph") or ctx["epoch"] != page_epoch
    payload: dict[str, Any] = {}
    delta: dict[str, Any] = {}
    if redraw:
        payload = panel_payload(state, view, ctx)
    else:
        for panel in ctx["panels"]:
            series = dashboard.delta_data(state, view, panel, metric_cursor)
            if series:
                delta[panel.id] = series
        for panel in ctx["system_panels"]:
            series = dashboard.delta_data(state, view, panel, system_cursor, system=True)
            if series:
                delta[panel.id] = series
    return render_template(
        "fragment.html", **ctx, **payload, redraw=redraw, delta=delta,
        sidebar_changed=ctx["sidebar_fp"] != request.args.get("sh"),
        poll=poll_url(project, view, state, ctx, interval), interval=interval)
