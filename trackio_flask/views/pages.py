"""Full pages: projects, a project's dashboard, its runs table and a run's detail."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import charts, dashboard, storage
from ..app import store
from ..caching import cached, script_json
from ..live import ProjectState
from . import polling
from .params import parse_view, view_args

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str | Response:
    """List projects; Trackio's `?project=` links land on that project's page."""
    project = request.args.get("project") or request.args.get("selected_project")
    if project:
        storage.validate_project_name(project)
        rest = {k: v for k, v in request.args.items(multi=False)
                if k not in ("project", "selected_project")}
        return redirect(url_for("pages.project", project=project, **rest))
    rows = []
    for info in storage.list_projects(current_app.config["DATA_DIR"]):
        summary = None
        if info.error is None:
            try:
                summary = _summary(info.name)
            except (storage.StorageBusy, storage.UnreadableDatabase) as exc:
                summary = {"error": str(exc)}
        rows.append({"info": info, "summary": summary})
    return render_template("index.html", projects=rows)


def _summary(project: str) -> dict[str, Any]:
    state = store().get(project)
    last = max((r.last_time for r in state.runs.values() if r.last_time == r.last_time),
               default=math.nan)
    return {"runs": len(state.runs), "last_activity": last}


def load_view(project: str) -> tuple[ProjectState, dashboard.View]:
    """Validate the project and the URL's view settings; return the caught-up state and view."""
    state = store().get(project)
    view = parse_view(request.args, state.metric_names)
    return state, view


def last_activity(state: ProjectState) -> float:
    times = [t for r in state.runs.values() for t in (r.last_time,) if t == t]
    return max(times, default=state.changed_at)


def poll_url(project: str, view: dashboard.View, state: ProjectState, ctx: dict[str, Any],
             interval: float) -> str:
    """The poller's URL: view state plus what the page already shows."""
    return url_for("refresh.fragment", project=project, **view_args(view), v=state.version,
                   c=state.metric_cursor, sc=state.system_cursor, e=ctx["epoch"],
                   sh=ctx["sidebar_fp"], ph=ctx["panels_fp"], iv=interval)


def dashboard_context(project: str, state: ProjectState, view: dashboard.View) -> dict[str, Any]:
    """Everything the dashboard templates need, shared by the page and the refresh fragment."""
    max_points = int(current_app.config["MAX_POINTS"])
    panels = dashboard.metric_panels(state, view)
    system_panels = dashboard.metric_panels(state, view, system=True)
    visible = dashboard.visible_runs(state, view)
    selected = {run.key for run in dashboard.selected_runs(state, view)}
    ranks = state.colour_rank()
    args = view_args(view)
    others = {k: v for k, v in args.items() if k != "run_ids"}
    return {
        "select_all_url": url_for("pages.project", project=project, **others),
        "select_none_url": url_for("pages.project", project=project, **others, run_ids=""),
        "project": project,
        "state": state,
        "view": view,
        "args": args,
        "panels": panels,
        "sections": dashboard.sections(panels),
        "system_sections": dashboard.sections(system_panels),
        "system_panels": system_panels,
        "groups": dashboard.run_groups(state, visible, view.group_by),
        "group_keys": dashboard.group_keys(state),
        "selected": selected,
        "colours": {key: charts.colour(rank) for key, rank in ranks.items()},
        "run_count": len(state.runs),
        "epoch": dashboard.epoch(state, view, max_points),
        "sidebar_fp": dashboard.sidebar_fingerprint(state, view),
        "panels_fp": dashboard.panels_fingerprint(panels, system_panels),
        "x_choices": ["step", "time", "wall"] + [f"metric:{m}" for m in sorted(state.metric_names)],
    }


def panel_payload(state: ProjectState, view: dashboard.View, ctx: dict[str, Any]) -> dict[str, Any]:
    """Full data for every panel (as JSON islands), plus the specs of the shapes they use."""
    return cached(("panels", ctx["project"], state.version, sorted(view_args(view).items())),
                  lambda: _panel_payload(state, view, ctx),
                  lambda payload: sum(len(text) for text in payload["data"].values()))


def _panel_payload(state: ProjectState, view: dashboard.View, ctx: dict[str, Any]) -> dict[str, Any]:
    max_points = int(current_app.config["MAX_POINTS"])
    data = {p.id: dashboard.full_data(state, view, p, max_points) for p in ctx["panels"]}
    data.update({p.id: dashboard.full_data(state, view, p, max_points, system=True)
                 for p in ctx["system_panels"]})
    specs: dict[str, Any] = {}
    for panel in ctx["panels"] + ctx["system_panels"]:
        shape = dashboard.shape_of(panel)
        themes = ("light", "dark") if shape.theme == "system" else (shape.theme,)
        for theme in themes:
            variant = shape._replace(theme=theme)
            specs[variant.key] = charts.spec_for(variant)
    return {"data": {key: script_json(orjson.dumps(value).decode()) for key, value in data.items()},
            "specs": script_json(orjson.dumps(specs).decode())}


@bp.get("/projects/<project>")
def project(project: str) -> str:
    """The metrics dashboard: first load is a complete server render with chart data."""
    storage.validate_project_name(project)
    state, view = load_view(project)
    ctx = dashboard_context(project, state, view)
    interval = polling.interval_for(last_activity(state))
    payload = panel_payload(state, view, ctx)
    return render_template("project.html", **ctx, **payload,
                           poll=poll_url(project, view, state, ctx, interval),
                           interval=interval, now=time.time(), sidebar=request.args.get("sidebar"),
                           navbar=request.args.get("navbar"),
                           accordion=request.args.get("accordion"))


@bp.get("/projects/<project>/runs")
def runs(project: str) -> str:
    """A sortable runs table with chosen config columns and final metric values."""
    storage.validate_project_name(project)
    state, view = load_view(project)
    sort = request.args.get("sort", "created")
    descending = request.args.get("order", "desc") != "asc"
    config_keys = sorted({k for c in state.configs.values() for k in c if not k.startswith("_")})
    chosen_config = [k for k in request.args.getlist("col") if k in config_keys] or config_keys[:4]
    chosen_metrics = [m for m in request.args.getlist("metric") if m in state.metric_names] or \
        sorted(state.metric_names)[:3]
    rows = []
    for run in dashboard.visible_runs(state, view):
        columns = state.metrics.get(run.key)
        finals = {}
        for metric in chosen_metrics:
            values = columns.column(metric) if columns is not None else []
            finite = [v for v in values[::-1][:1000] if v == v]
            finals[metric] = finite[0] if finite else None
        rows.append({"run": run, "config": state.configs.get(run.key, {}), "finals": finals})
    rows.sort(key=lambda row: _sort_key(row, sort), reverse=descending)
    return render_template("runs.html", project=project, state=state, rows=rows, sort=sort,
                           descending=descending, config_keys=config_keys,
                           chosen_config=chosen_config, chosen_metrics=chosen_metrics,
                           metric_names=sorted(state.metric_names), view=view, now=time.time(),
                           colours={k: charts.colour(r) for k, r in state.colour_rank().items()})


def _sort_key(row: dict[str, Any], sort: str) -> tuple:
    run = row["run"]
    if sort == "name":
        return (0, run.name.lower())
    if sort == "steps":
        return (0, run.rows)
    if sort.startswith("config:"):
        value = row["config"].get(sort[len("config:"):])
        return (0, str(value)) if value is not None else (1, "")
    if sort.startswith("metric:"):
        value = row["finals"].get(sort[len("metric:"):])
        return (0, value) if value is not None else (-1, 0)
    return (0, run.created)


@bp.get("/projects/<project>/runs/<path:run>")
def run_detail(project: str, run: str) -> str:
    """One run: its full config and its charts."""
    storage.validate_project_name(project)
    state = store().get(project)
    info = state.runs.get(run) or next((r for r in state.runs.values() if r.name == run), None)
    if info is None:
        abort(404, description="No such run in this project.")
    view = parse_view(request.args, state.metric_names)
    view = dashboard.View(**{**view.__dict__, "runs": (info.key,)})
    ctx = dashboard_context(project, state, view)
    payload = panel_payload(state, view, ctx)
    return render_template("run.html", **ctx, **payload, run=info,
                           config=state.configs.get(info.key, {}))
