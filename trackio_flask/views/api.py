"""Trackio's HTTP API v1: `GET /version` and `POST /api/<name>` (reads open, writes need the token)."""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Callable
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import BadRequest

from .. import storage, trackio_api
from .._version import __version__
from ..app import store
from ..extensions import api_limit, limiter, write_limit, write_token_key
from ..ingest import Ingest, InvalidEntry
from ..trackio_api import ApiError

bp = Blueprint("api", __name__)
log = logging.getLogger(__name__)
WRITE_TOKEN_HEADER = "X-Trackio-Write-Token"
WRITE_TOKEN_COOKIE = "trackio_write_token"


def json_response(payload: Any, status: int = 200) -> Response:
    """orjson keeps NaN and infinities out of the output (they become null)."""
    response = Response(orjson.dumps(payload), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/version")
def version() -> Response:
    """Let Trackio clients detect the plain-HTTP API."""
    return json_response({"version": __version__, "api_version": 1, "api_transport": "http",
                          "mcp_enabled": False, "mcp_path": None})


def presented_token() -> str | None:
    return (request.headers.get(WRITE_TOKEN_HEADER) or request.cookies.get(WRITE_TOKEN_COOKIE)
            or request.args.get("write_token"))


def token_is_valid(token: str | None) -> bool:
    """Constant-time comparison against the configured token; no token configured → no writes."""
    expected = current_app.config.get("WRITE_TOKEN")
    if not expected or not token:
        return False
    return hmac.compare_digest(token.encode(), str(expected).encode())


def ingest() -> Ingest:
    service = current_app.extensions.get("trackio_ingest")
    if service is None:
        service = Ingest(current_app.config["DATA_DIR"], current_app.config["SQLITE_JOURNAL_MODE"],
                         float(current_app.config["BUSY_TIMEOUT_S"]))
        current_app.extensions["trackio_ingest"] = service
    return service


# ---- endpoint functions: (project, ...) → Trackio-shaped data -------------------------------


def get_all_projects() -> list[str]:
    return [p.name for p in storage.list_projects(current_app.config["DATA_DIR"])]


def _state(project: Any):
    name = trackio_api.text(project, "project", required=True)
    try:
        return store().get(name)
    except storage.ProjectNotFound:
        return None


def get_runs_for_project(project: Any) -> list[dict[str, Any]]:
    state = _state(project)
    return [] if state is None else trackio_api.runs_for_project(state)


def get_run_configs(project: Any) -> dict[str, Any]:
    state = _state(project)
    return {} if state is None else dict(state.configs)


def get_run_summary(project: Any, run: Any = None, run_id: Any = None) -> dict[str, Any]:
    state = _state(project)
    run, run_id = trackio_api.text(run, "run"), trackio_api.text(run_id, "run_id")
    if state is None:
        return {"project": project, "run": run, "run_id": run_id, "num_logs": 0, "metrics": [],
                "config": None, "last_step": None}
    return trackio_api.run_summary(state, project, run, run_id)


def _logs(project: Any, run: Any, run_id: Any, limit: int, scalar_only: bool,
          system: bool) -> list[dict[str, Any]]:
    state = _state(project)
    if state is None:
        return []
    info = trackio_api.resolve_run(state, trackio_api.text(run, "run"),
                                   trackio_api.text(run_id, "run_id"))
    if info is None:
        return []
    table = state.system if system else state.metrics
    if system or scalar_only:
        columns = table.get(info.key)
        return [] if columns is None else trackio_api.scalar_logs(columns, limit, system)
    return trackio_api.full_logs(state, info, limit)


def get_logs(project: Any, run: Any = None, run_id: Any = None,
             scalar_only: Any = False) -> list[dict[str, Any]]:
    return _logs(project, run, run_id, trackio_api.DEFAULT_POINTS,
                 trackio_api.flag(scalar_only, "scalar_only"), system=False)


def get_system_logs(project: Any, run: Any = None, run_id: Any = None) -> list[dict[str, Any]]:
    return _logs(project, run, run_id, trackio_api.DEFAULT_POINTS, True, system=True)


def get_logs_batch(project: Any, runs: Any, max_points: Any = 3000,
                   scalar_only: Any = False) -> list[dict[str, Any]]:
    clean, limit = trackio_api.batch_runs(runs), trackio_api.max_points(max_points)
    only = trackio_api.flag(scalar_only, "scalar_only")
    return [{**item, "logs": _logs(project, item["run"], item["run_id"], limit, only, False)}
            for item in clean]


def get_system_logs_batch(project: Any, runs: Any, max_points: Any = 3000) -> list[dict[str, Any]]:
    clean, limit = trackio_api.batch_runs(runs), trackio_api.max_points(max_points)
    return [{**item, "logs": _logs(project, item["run"], item["run_id"], limit, True, True)}
            for item in clean]


def bulk_log(logs: Any, hf_token: Any = None) -> None:
    ingest().log(logs)


def bulk_log_system(logs: Any, hf_token: Any = None) -> None:
    ingest().log_system(logs)


def bulk_alert(alerts: Any, hf_token: Any = None) -> None:
    ingest().alert(alerts)


READS: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    get_all_projects, get_runs_for_project, get_run_configs, get_run_summary, get_logs,
    get_system_logs, get_logs_batch, get_system_logs_batch)}
WRITES: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    bulk_log, bulk_log_system, bulk_alert)}


def bind(function: Callable[..., Any], body: Any) -> inspect.BoundArguments:
    """Bind Trackio's body shapes ({"args", "kwargs"}, {"data"}, a plain object, a list)."""
    if isinstance(body, dict) and ("args" in body or "kwargs" in body):
        args, kwargs = body.get("args") or [], body.get("kwargs") or {}
    elif isinstance(body, dict) and "data" in body:
        args, kwargs = body["data"], {}
    elif isinstance(body, dict):
        args, kwargs = [], body
    elif isinstance(body, list):
        args, kwargs = body, {}
    else:
        raise ApiError("the body must be a JSON object or list")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ApiError("'args' must be a list and 'kwargs' an object")
    try:
        return inspect.signature(function).bind(*args, **kwargs)
    except TypeError as exc:
        raise ApiError(f"bad arguments: {exc}") from None


def _read_body() -> Any:
    if not request.content_length and not request.data:
        return {}
    try:
        return orjson.loads(request.get_data())
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None


@bp.post("/api/<name>")
@limiter.limit(api_limit, exempt_when=lambda: request.view_args.get("name") in WRITES)
@limiter.limit(write_limit, key_func=write_token_key,
               exempt_when=lambda: request.view_args.get("name") not in WRITES)
def call(name: str) -> Response:
    """Dispatch one Trackio API call."""
    function = READS.get(name) or WRITES.get(name)
    if function is None:
        log.info("404 unknown API %r", name[:80])
        return json_response({"error": f"unknown API {name!r}"}, 404)
    if name in WRITES and not token_is_valid(presented_token()):
        configured = bool(current_app.config.get("WRITE_TOKEN"))
        log.warning("403 %s without a valid write token from %s", name, request.remote_addr)
        message = ("a valid write token is required (header X-Trackio-Write-Token, cookie "
                   "trackio_write_token or ?write_token=)" if configured else
                   "writes are disabled: set TRACKIO_WRITE_TOKEN on the server")
        return json_response({"error": message}, 403)
    try:
        bound = bind(function, _read_body())
        result = function(*bound.args, **bound.kwargs)
    except (ApiError, InvalidEntry, storage.InvalidProjectName) as exc:
        log.info("400 %s: %s", name, exc)
        return json_response({"error": str(exc)}, 400)
    return json_response({"data": result})
