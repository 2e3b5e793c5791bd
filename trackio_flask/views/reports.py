"""Alerts & Reports: trackio.alert rows and trackio.Markdown reports."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from .. import polling, reports, storage
from ..encoded import cached_response
from ..extensions import limiter, page_limit, refresh_limit
from ..live import ProjectState
from ..rendering import add_notice, last_activity, page_view, tick_state

bp = Blueprint("reports", __name__)
limiter.limit(page_limit)(bp)


def _levels(state: ProjectState, lenient: bool = False) -> tuple[str, ...]:
    """The level filter; on the page a bad one shows every level and says so."""
    try:
        return reports.parse_levels(request.args.getlist("level"), reports.level_choices(state))
    except ValueError as exc:
        if not lenient:
            raise BadRequest(str(exc)) from None
        add_notice("level names no level alerts have: showing every level instead.")
        return ()


def _poll_url(project: str, state: ProjectState, levels: tuple[str, ...], interval: float,
              shown: str) -> str:
    return url_for("reports.refresh", project=project, level=",".join(levels) or None,
                   v=state.version, f=shown, iv=interval)


@bp.get("/projects/<project>/reports")
def page(project: str) -> Response:
    """Alerts (newest first, filtered by level) and Markdown reports grouped by run."""
    storage.validate_project_name(project)
    view = page_view()
    state = tick_state(project)
    levels = _levels(state, lenient=True)
    interval = polling.interval_for(last_activity(state))
    shown = reports.content_fingerprint(state)
    # Keyed by what the page shows, not the version: scalar logging leaves the cached page
    # valid, and its first poll moves the poller on to the current version.
    parts = ("reports", project, shown, levels, view.theme, view.navbar, interval,
             request.script_root)
    return cached_response(parts, lambda: render_template(
        "reports.html", project=project, view=view, levels=levels,
        choices=reports.level_choices(state), **_content(state, levels),
        poll=_poll_url(project, state, levels, interval, shown), interval=interval))


def _content(state: ProjectState, levels: tuple[str, ...]) -> dict:
    alerts, alert_total = reports.filtered_alerts(state, levels)
    groups, report_total = reports.run_reports(state)
    return {"alerts": alerts, "alert_total": alert_total, "groups": groups,
            "report_total": report_total}


@bp.get("/projects/<project>/reports/refresh")
@limiter.limit(refresh_limit)
def refresh(project: str) -> Response:
    """204 at the page's version; the next poller when nothing shown changed; else the alerts
    and reports regions (out of band) with the next poller."""
    storage.validate_project_name(project)
    state = tick_state(project)
    levels = _levels(state)
    interval = polling.interval_for(last_activity(state))
    if polling.page_is_current(state.version, interval):
        return polling.no_content()
    shown = reports.content_fingerprint(state)
    poll = _poll_url(project, state, levels, interval, shown)
    if request.args.get("f") == shown:
        return polling.next_poller(poll, interval)
    parts = ("reports-refresh", project, state.version, levels, interval, request.script_root)
    return cached_response(parts, lambda: render_template(
        "_partials/_reports_refresh.html", project=project, **_content(state, levels),
        poll=poll, interval=interval))
