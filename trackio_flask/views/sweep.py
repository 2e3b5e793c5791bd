"""The Sweep tab: parallel coordinates (brushing selects runs), a config-vs-metric scatter,
the best runs per metric, and the difference of two groups with its confidence interval."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, abort, render_template, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from .. import groups, selection, storage, sweep
from ..dashboard import Page, order_metrics
from ..encoded import cached_response
from ..extensions import limiter, page_limit
from ..live import ProjectState
from ..params import view_args
from ..rendering import load_page, page_view

bp = Blueprint("sweep", __name__)
limiter.limit(page_limit)(bp)


@dataclasses.dataclass(frozen=True)
class SweepQuery:
    """The tab's own settings (besides the view's selection, grouping and theme)."""

    metric: str
    stat: str
    axes: tuple[str, ...]
    x: str
    a: str
    b: str


def _one_of(args: MultiDict, name: str, allowed: list[str] | tuple[str, ...], default: str
            ) -> str:
    value = args.get(name, "") or default
    if value and value not in allowed:
        abort(400, description=f"{name} must name one of this project's choices")
    return value


def _query(args: MultiDict, state: ProjectState) -> SweepQuery:
    """Validate the tab's parameters against what the project has; a bad one is a 400."""
    metrics = order_metrics(sorted(state.metric_names), ())
    keys = sweep.public_keys(state)
    default_metric = next((m for m in metrics if sweep.lower_is_better(m)), metrics[0] if metrics
                          else "")
    metric = _one_of(args, "metric", metrics, default_metric)
    stat = _one_of(args, "stat", sweep.STATS, "last")
    listed = [value for value in args.getlist("axis") if value]
    if len(listed) > 3 * sweep.MAX_AXES or any(value not in keys for value in listed):
        abort(400, description="axis must name public config keys of this project")
    axes = tuple(dict.fromkeys(listed)) if listed else tuple(keys[: sweep.MAX_AXES])
    numeric = sweep.numeric_keys(state)
    x = _one_of(args, "x", keys, next((key for key in axes if key in numeric),
                                      axes[0] if axes else ""))
    a = args.get("a", "")
    b = args.get("b", "")
    if len(a) > groups.MAX_PATTERN or len(b) > groups.MAX_PATTERN:
        abort(400, description="a and b must name groups")
    return SweepQuery(metric, stat, axes, x, a, b)


def _difference(state: ProjectState, page: Page, query: SweepQuery) -> dict | None:
    """The groups of the view's grouping (Trackio's group when none) and b − a of their
    metric summaries with Welch's 95% interval."""
    grouping = groups.parse_grouping(page.view.group) or (
        groups.Grouping("trackio") if groups.has_trackio_groups(state.configs.values()) else None)
    if grouping is None or not query.metric:
        return None
    stats = sweep.group_stats(state, page.visible, grouping, query.metric, query.stat)
    labels = [g.label for g in stats]
    if len(stats) < 2:
        return {"grouping": grouping, "groups": stats, "result": None, "a": "", "b": ""}
    # By default the two largest groups (of equal size, the first in value order).
    largest = sorted(stats, key=lambda g: -len(g.values))
    a = query.a or largest[0].label
    b = query.b or next(g.label for g in largest if g.label != a)
    if a not in labels or b not in labels:
        abort(400, description="a and b must name groups of this grouping")
    by_label = {g.label: g for g in stats}
    result = groups.welch_difference(a, by_label[a].values, b, by_label[b].values)
    return {"grouping": grouping, "groups": stats, "result": result, "a": a, "b": b}


@bp.get("/projects/<project>/sweep")
def page(project: str) -> Response:
    """Rendered once per project version and settings; brushing is the page script's."""
    storage.validate_project_name(project)
    view = page_view()
    # The tab lists every run the filter shows; the selection only highlights.
    state, page = load_page(project, dataclasses.replace(view, latest_only=False))
    query = _query(request.args, state)
    # Only a selection the URL names is highlighted (a big project's default is not).
    selected = None if view.runs is None and not view.sel else page.selected_keys
    args = view_args(page.view)
    difference = _difference(state, page, query)

    def render() -> str:
        colours = page.colours
        runs = list(page.visible)
        metrics = order_metrics(sorted(state.metric_names), ())
        return render_template(
            "sweep.html", project=project, view=page.view, query=query, args=args,
            metrics=metrics, keys=sweep.public_keys(state),
            parallel=sweep.parallel(state, runs, query.axes, query.metric, query.stat,
                                    selected, colours) if query.metric else None,
            scatter=sweep.scatter(state, runs, query.x, query.metric, query.stat, selected,
                                  colours) if query.x and query.metric else None,
            best=sweep.best_runs(state, runs, metrics, query.stat),
            difference=difference, selected=page.selected,
            # The brushing writes the selection as a token (selection.py), like the sidebar.
            run_index=selection.index(state), token_head=(len(state.runs),
                                                          selection.project_fp(state)),
            token=page.selection_token if selected is not None else "",
            selected_all=selected is None, y_of=sweep.y_of)

    return cached_response(("sweep", project, state.version, sorted(args.items()),
                            dataclasses.astuple(query), request.script_root), render)
