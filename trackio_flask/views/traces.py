"""Traces: the list of a project's trackio.Trace records (filtered by run, status and text,
paginated, live) and one trace's conversation and span tree.

`GET /projects/<p>/traces` is the list, `.../traces/refresh?v=&f=&iv=` its one poller (the list's
own parameters ride along), `.../trace?id=` one trace. URL parameters of the list:
    run     run keys to show (repeated; none = every run)     status  success | error | unknown
    q       text in the trace (trackio's search text)          sort    newest | oldest | step_desc | step_asc
    page    0-based page of 50
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from werkzeug.exceptions import BadRequest, NotFound

from .. import polling, storage, traces
from ..caching import cached
from ..chrome import request_chrome
from ..dashboard import View
from ..encoded import cached_response
from ..extensions import limiter, page_limit, refresh_limit
from ..live import ProjectState
from ..params import parse_int, parse_view
from ..rendering import last_activity, tick_state
from ..trace_index import trace_index

bp = Blueprint("traces", __name__)
limiter.limit(page_limit)(bp)
MAX_PAGE = 10**6
MAX_RUNS = 1000


def _query(state: ProjectState, index: traces.TraceIndex) -> traces.TraceQuery:
    args = request.args
    listed = [value for value in args.getlist("run") if value]
    if len(listed) > MAX_RUNS:
        raise BadRequest(f"run lists more than {MAX_RUNS} runs")
    # Runs the project does not have are dropped: made-up keys mint no cache entry.
    runs = tuple(sorted({run for run in listed if run in state.runs or run in index.runs}))
    status = args.get("status", "")
    if status and status not in traces.STATUSES:
        raise BadRequest(f"status must be one of: {', '.join(traces.STATUSES)}")
    text = args.get("q", "")
    if len(text) > traces.MAX_TEXT:
        raise BadRequest(f"q is longer than {traces.MAX_TEXT} characters")
    sort = args.get("sort") or "newest"
    if sort not in traces.SORTS:
        raise BadRequest(f"sort must be one of: {', '.join(traces.SORTS)}")
    page = parse_int(args.get("page") or "0", "page", 0, MAX_PAGE)
    # Past the last page of all traces no filter can reach: that page, not one more cache entry.
    page = min(page, traces.last_page(len(index.entries)))
    return traces.TraceQuery(runs, status, text.strip(), sort, page)


def query_args(query: traces.TraceQuery, **changes: Any) -> dict[str, Any]:
    """URL arguments that reproduce `query` (defaults left out), with `changes` applied."""
    args: dict[str, Any] = {"run": list(query.runs) or None, "status": query.status or None,
                            "q": query.q or None,
                            "sort": None if query.sort == "newest" else query.sort,
                            "page": query.page or None}
    args.update(changes)
    return {name: value for name, value in args.items() if value not in (None, "", [])}


def _selection(project: str, state: ProjectState, index: traces.TraceIndex,
               query: traces.TraceQuery) -> tuple[list[traces.Entry], int]:
    hits = None
    if query.q:
        hits = cached(("trace-search", project, state.version, query.q),
                      lambda: traces.matching_rowids(state.path, query.q),
                      lambda found: 8 * len(found) + 64)
    return traces.select(index, query, hits)


def _list_context(project: str, state: ProjectState, index: traces.TraceIndex,
                  query: traces.TraceQuery) -> dict[str, Any]:
    entries, total = _selection(project, state, index, query)
    pages = traces.last_page(total) + 1
    query = dataclasses.replace(query, page=min(query.page, pages - 1))
    chrome = request_chrome()

    def page_link(number: int) -> str:
        return url_for("traces.page", project=project, **query_args(query, page=number or None),
                       **chrome)

    return {"project": project, "entries": entries, "total": total, "query": query,
            "pages": pages, "all_total": len(index.entries), "page_link": page_link,
            "chrome": chrome, "runs": state.runs_newest_first(),
            "traced_runs": index.runs, "fmt": traces}


def _poll_url(project: str, state: ProjectState, index: traces.TraceIndex,
              query: traces.TraceQuery, interval: float) -> str:
    return url_for("traces.refresh", project=project, **query_args(query), **request_chrome(),
                   v=state.version, f=_fingerprint(index), iv=interval)


def _fingerprint(index: traces.TraceIndex) -> str:
    count, cursor = index.fingerprint()
    return f"{count}.{cursor}"


@bp.get("/projects/<project>/traces")
def page(project: str) -> Response:
    """The project's traces, newest first, a page at a time."""
    storage.validate_project_name(project)
    state = tick_state(project)
    index = trace_index(project, state)
    query = _query(state, index)
    interval = polling.interval_for(last_activity(state))
    parts = ("traces", project, state.version, sorted(query_args(query).items()),
             sorted(request_chrome().items()), interval, request.script_root)
    view = parse_view(request.args)
    return cached_response(parts, lambda: render_template(
        "traces.html", view=view, **_list_context(project, state, index, query),
        poll=_poll_url(project, state, index, query, interval), interval=interval))


@bp.get("/projects/<project>/traces/refresh")
@limiter.limit(refresh_limit)
def refresh(project: str) -> Response:
    """204 at the page's version; the next poller when no trace was added or removed; else the
    list (out of band) and the next poller."""
    storage.validate_project_name(project)
    state = tick_state(project)
    interval = polling.interval_for(last_activity(state))
    if polling.page_is_current(state.version, interval):
        return polling.no_content()
    index = trace_index(project, state)
    query = _query(state, index)
    poll = _poll_url(project, state, index, query, interval)
    if request.args.get("f") == _fingerprint(index):
        return polling.next_poller(poll, interval)
    parts = ("traces-refresh", project, state.version, sorted(query_args(query).items()),
             sorted(request_chrome().items()), interval, request.script_root)
    return cached_response(parts, lambda: render_template(
        "_partials/_traces_refresh.html", **_list_context(project, state, index, query),
        poll=poll, interval=interval))


@bp.get("/projects/<project>/trace")
def detail(project: str) -> Response:
    """One trace: its summary, metadata, span tree (a waterfall) and conversation."""
    storage.validate_project_name(project)
    trace_id = request.args.get("id", "")
    if not trace_id or len(trace_id) > 2000:
        raise BadRequest("id names a trace")
    state = tick_state(project)
    index = trace_index(project, state)
    if trace_id not in index.by_id:
        raise NotFound("No trace with this id in this project.")
    view = parse_view(request.args)
    parts = ("trace", project, state.version, trace_id, sorted(request_chrome().items()),
             request.script_root)
    return cached_response(parts, lambda: _render_detail(project, state, index, trace_id, view))


def _render_detail(project: str, state: ProjectState, index: traces.TraceIndex, trace_id: str,
                   view: View) -> str:
    record = traces.read_record(state.path, trace_id)
    if record is None:  # deleted since the index was caught up
        raise NotFound("No trace with this id in this project.")
    entry = index.entries[index.by_id[trace_id]]
    spans = traces.execution_spans(record.spans, record.messages)
    tree, total_ms = traces.span_tree(spans, traces.TextBudget())
    return render_template("trace.html", project=project, view=view, record=record, entry=entry,
                           tree=tree, total_ms=total_ms, derived=not (
                               isinstance(record.spans, list) and record.spans),
                           messages=traces.conversation(record.messages, traces.TextBudget()),
                           metadata=traces.metadata_items(record.metadata, traces.TextBudget()),
                           chrome=request_chrome(), fmt=traces)
