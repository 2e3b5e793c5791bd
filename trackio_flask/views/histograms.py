"""Histograms: each run's latest distribution and the distribution over steps."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from .. import dashboard, histograms, polling, storage
from ..encoded import cached_response
from ..extensions import limiter, page_limit, refresh_limit
from ..live import ProjectState
from ..params import page_args, view_args
from ..rendering import add_notice, last_activity, load_page, tick_state

bp = Blueprint("histograms", __name__)
limiter.limit(page_limit)(bp)


def _display(lenient: bool = False) -> str:
    """ridge or bands; on the page a bad value shows ridges and says so."""
    display = request.args.get("display") or "ridge"
    if display not in histograms.DISPLAYS:
        message = f"display must be one of: {', '.join(histograms.DISPLAYS)}"
        if not lenient:
            raise BadRequest(message)
        add_notice(f"{message}: showing ridges instead.")
        return "ridge"
    return display


def _shown(state: ProjectState, page: dashboard.Page) -> str:
    return dashboard.fingerprint(page.sidebar_fp,
                                 histograms.content_fingerprint(state, page.selected))


def _poll_url(page: dashboard.Page, state: ProjectState, display: str, interval: float,
              shown: str) -> str:
    extra = {"display": display} if display != "ridge" else {}
    return url_for("histograms.refresh", project=page.project, **view_args(page.view), **extra,
                   v=state.version, f=shown, iv=interval)


def _render(template: str, state: ProjectState, page: dashboard.Page, display: str,
            interval: float, shown: str) -> str:
    charts = histograms.key_charts(state, page.selected, page.colours, display)
    return render_template(template, page=page, view=page.view, project=page.project,
                           charts=charts, display=display, frame=histograms.FRAME,
                           poll=_poll_url(page, state, display, interval, shown),
                           interval=interval)


@bp.get("/projects/<project>/histograms")
def page(project: str) -> Response:
    """Per histogram key: the selected runs' latest histograms overlaid, and per run its
    histograms over steps (ridges, or percentile bands with `display=bands`)."""
    storage.validate_project_name(project)
    display = _display(lenient=True)
    state, page = load_page(project, lenient=True)
    interval = polling.interval_for(last_activity(state))
    shown = _shown(state, page)
    # Keyed by what the page shows, not the version: scalar logging leaves the cached page
    # valid, and its first poll moves the poller on to the current version.
    parts = ("histograms", project, sorted(page_args(page.view).items()), display, shown,
             interval, request.script_root)
    return cached_response(parts, lambda: _render("histograms.html", state, page, display,
                                                  interval, shown))


@bp.get("/projects/<project>/histograms/refresh")
@limiter.limit(refresh_limit)
def refresh(project: str) -> Response:
    """204 at the page's version; the next poller when nothing shown changed; else the run
    list and the charts (out of band) with the next poller."""
    storage.validate_project_name(project)
    display = _display()
    state = tick_state(project)
    interval = polling.interval_for(last_activity(state))
    if polling.page_is_current(state.version, interval):
        return polling.no_content()
    state, page = load_page(project)
    shown = _shown(state, page)
    if request.args.get("f") == shown:
        return polling.next_poller(_poll_url(page, state, display, interval, shown), interval)
    parts = ("histograms-refresh", project, sorted(view_args(page.view).items()), display,
             state.version, interval, request.script_root)
    return cached_response(parts, lambda: _render("_partials/_hist_refresh.html", state, page,
                                                  display, interval, shown))
