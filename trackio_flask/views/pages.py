"""Full pages: projects, a project's dashboard, its runs table and a run's detail."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from .. import polling, runs_table, storage, sweep
from ..compare import flat_configs, format_value
from ..encoded import cached_response
from ..extensions import limiter, page_limit, store
from ..params import MAX_PATTERN, page_args, parse_int, parse_view_or_default
from ..rendering import (
    last_activity,
    load_page,
    notices_besides,
    page_view,
    panel_payload,
    poll_url,
    snapshot_bucket,
)
from ..shared_cache import share

bp = Blueprint("pages", __name__)
log = logging.getLogger(__name__)
limiter.limit(page_limit)(bp)


@bp.get("/")
def index() -> str | Response:
    """List projects; Trackio's `?project=` links land on that project's page."""
    project = request.args.get("project") or request.args.get("selected_project")
    if project:
        storage.validate_project_name(project)
        # Only view settings travel on: anything else could steer url_for.
        return redirect(url_for("pages.project", project=project,
                                **page_args(parse_view_or_default(request.args)[0])))
    rows = [{"info": info, "summary": _summary(info) if info.error is None else None}
            for info in storage.list_projects(current_app.config["DATA_DIR"])]
    return share(make_response(render_template("index.html", projects=rows)))


def _summary(info: storage.ProjectInfo) -> dict[str, Any]:
    """Run count and last activity; one project's trouble never takes down the list."""
    try:
        state = store().get(info.name)
    except (storage.StorageBusy, storage.UnreadableDatabase, storage.ProjectNotFound) as exc:
        return {"error": str(exc) or type(exc).__name__}
    except Exception as exc:  # a file written by anyone: isolate it, log it, show the rest
        log.exception("project %r could not be summarised", info.name)
        return {"error": f"cannot be read ({type(exc).__name__})"}
    last = max((r.last_time for r in state.runs.values() if r.last_time == r.last_time),
               default=math.nan)
    return {"runs": len(state.runs), "last_activity": last}


@bp.get("/projects/<project>")
def project(project: str) -> Response:
    """The metrics dashboard: a complete server render with chart data, shared by every viewer
    of this view until its structure changes or its snapshot ages; the first poll catches up."""
    storage.validate_project_name(project)
    state, page = load_page(project, lenient=True)
    interval = polling.interval_for(last_activity(state))
    # The host: link previews (og:image) need absolute URLs.
    family = ("page", project, sorted(page_args(page.view).items()), interval,
              request.script_root, request.host_url)
    # The build's notice has its own element here, which polls update (#20): not in `notices`.
    return cached_response((*family, page.structure_fp, snapshot_bucket()), lambda: render_template(
        "project.html", page=page, view=page.view, **panel_payload(state, page),
        poll=poll_url(page, state, interval), interval=interval, building=state.building,
        notices=notices_besides(state.building)), family=family)


@bp.get("/projects/<project>/runs")
def runs(project: str) -> Response:
    """The runs table: one page of PAGE_ROWS runs (`page`, 0-based), sorted and filtered on the
    server (`sort`, `order`, the run filter), with the config columns and final metric values
    the URL chooses.

    `col` and `metric` list the chosen columns; an empty `col`/`metric` marks an explicit
    choice (so "none" stays none), and their absence gives the first few of each.
    """
    storage.validate_project_name(project)
    state, page = load_page(project)
    sort = request.args.get("sort", "created")
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        abort(400, description="order must be asc or desc")
    if not runs_table.valid_sort(sort) or len(sort) > MAX_PATTERN:
        abort(400, description="sort must be name, created, steps, config:<key> or metric:<name>")
    descending = order == "desc"
    configs = flat_configs(state)  # flattened once per project version
    metric_names = sorted(state.metric_names)
    # By default the config keys that tell runs apart (a constant key says nothing).
    differing = set(sweep.public_keys(state))
    default_config = [k for k in configs.keys if k in differing] or list(configs.keys)
    chosen_config = [k for k in dict.fromkeys(request.args.getlist("col")) if k in configs.known] \
        if "col" in request.args else default_config[:4]
    chosen_metrics = [m for m in dict.fromkeys(request.args.getlist("metric"))
                      if m in state.metric_names] if "metric" in request.args else metric_names[:3]
    ordered = runs_table.ordered(state, list(page.visible), configs, sort, descending,
                                 page.view.run_filter)
    pages = max(0, len(ordered) - 1) // runs_table.PAGE_ROWS + 1
    number = min(parse_int(request.args.get("page") or "0", "page", 0, 10**9), pages - 1)
    shown = ordered[number * runs_table.PAGE_ROWS:(number + 1) * runs_table.PAGE_ROWS]
    rows = runs_table.page_rows(state, shown, configs, chosen_config, chosen_metrics)
    # Shareable: a token holder's table (with its forms) is made private by shared_cache.
    html = render_template("runs.html", project=project, state=state, rows=rows, sort=sort,
                           descending=descending, config_keys=configs.keys,
                           chosen_config=chosen_config, chosen_metrics=chosen_metrics,
                           metric_names=metric_names, view=page.view,
                           now=time.time(), colours=page.colours, table_page=number,
                           table_pages=pages, first_row=number * runs_table.PAGE_ROWS,
                           total_rows=len(ordered), run_count=page.run_count)
    return share(make_response(html))


@bp.get("/projects/<project>/runs/<path:run>")
def run_detail(project: str, run: str) -> Response:
    """One run: its full config and its charts."""
    storage.validate_project_name(project)
    state = store().get(project)
    info = state.runs.get(run) or next((r for r in state.runs.values() if r.name == run), None)
    if info is None:
        abort(404, description="No such run in this project.")
    view = dataclasses.replace(page_view(state.metric_names), runs=(info.key,),
                               run_filter="", latest_only=False)
    state, page = load_page(project, view)
    # The config as a table of dotted keys, without Trackio's private `_` entries.
    config = [(key, format_value(value))
              for key, value in flat_configs(state).by_run.get(info.key, {}).items()]
    return share(make_response(render_template(
        "run.html", page=page, view=view, **panel_payload(state, page), run=info, config=config)))
