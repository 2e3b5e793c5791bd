"""Run comparer: selected runs side by side, config and summary metrics as rows."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, abort, render_template, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from .. import storage
from ..compare import MAX_COLUMNS, STATS, Query, compare, unknown_count
from ..encoded import cached_response
from ..extensions import limiter, page_limit
from ..params import MAX_PATTERN, MAX_RUN_NAME, MAX_RUNS
from ..rendering import add_notice, load_page, page_view

bp = Blueprint("compare", __name__)
limiter.limit(page_limit)(bp)


def _query(args: MultiDict) -> Query:
    """The selection and theme as the metrics page reads them (`run_ids`, `runs`, `sel`,
    `__theme`) plus the picker's `run` (repeated: a key may hold a comma), and the comparer's
    `q`, `diff` and `stat`; a bad value is a 400 naming the parameter."""
    view = page_view()
    runs = view.runs
    if "run" in args:
        # An empty `run` says "this is a selection" even when nothing is ticked.
        listed = [value for value in args.getlist("run") if value]
        if len(listed) > MAX_RUNS:
            abort(400, description=f"run lists more than {MAX_RUNS} runs")
        runs = tuple(sorted(set((runs or ()) + tuple(listed))))
    if any(len(name) > MAX_RUN_NAME for name in runs or ()):
        abort(400, description=f"run names a run longer than {MAX_RUN_NAME} characters")
    search = args.get("q", "").strip()
    if len(search) > MAX_PATTERN:
        abort(400, description=f"q is longer than {MAX_PATTERN} characters")
    diff = args.get("diff", "")
    if diff not in ("", "0", "1"):
        add_notice("diff must be 1 or 0: showing every key instead.")
        diff = ""
    stat = args.get("stat", "") or "last"
    if stat not in STATS:
        add_notice(f"stat must be one of: {', '.join(STATS)}: showing the last value instead.")
        stat = "last"
    # The comparer lists every run: a run filter or "latest only" from a metrics link would
    # hide runs the picker cannot show.
    view = dataclasses.replace(view, runs=runs, run_filter="", latest_only=False)
    return Query(view=view, search=search, diff_only=diff == "1", stat=stat)


@bp.get("/projects/<project>/compare")
def page(project: str) -> Response:
    """Up to ten runs as columns; navigation-only, rendered once per resolved selection,
    settings and project version (names of no run add only their count to the key)."""
    storage.validate_project_name(project)
    query = _query(request.args)
    state, page = load_page(project, query.view)
    unknown = unknown_count(state, query.runs)
    # A selection token (selection.py) or a big project's default selects runs too.
    implicit = query.runs is None and page.view.sel in ("", "all") and not page.selection_default
    selected = None if implicit else tuple(run.key for run in page.selected)
    return cached_response(
        ("compare", project, selected, unknown, query.search, query.diff_only, query.stat,
         query.theme, state.version, request.script_root),
        lambda: render_template("compare.html", project=project, query=query,
                                comparison=compare(state, page, query, unknown),
                                max_columns=MAX_COLUMNS))
