"""Trackio's HTTP API v1: `GET /version` and `POST /api/<name>` (reads open, writes need the token)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from .. import storage
from .._version import __version__
from ..auth import can_write, limiter_key
from ..extensions import api_limit, limiter, trackio_api, write_limit
from ..ingest import InvalidEntry
from ..trackio_api import ApiError, TrackioApi

bp = Blueprint("api", __name__)
log = logging.getLogger(__name__)


def json_response(payload: Any, status: int = 200) -> Response:
    """orjson keeps NaN and infinities out of the output (they become null)."""
    try:
        body = orjson.dumps(payload, default=str)
    except orjson.JSONEncodeError as exc:  # e.g. a stored value nested past orjson's limit
        log.warning("422 stored data cannot be sent as JSON: %s", exc)
        body, status = orjson.dumps({"error": "stored data cannot be sent as JSON"}), 422
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/version")
def version() -> Response:
    """Let Trackio clients detect the plain-HTTP API."""
    return json_response({"version": __version__, "api_version": 1, "api_transport": "http",
                          "mcp_enabled": False, "mcp_path": None})


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
    """The JSON body; over MAX_BODY_MB is 413, also when it arrives chunked (no length)."""
    stream = request.stream
    data = stream.read()
    # A chunked body stops at the limit silently; werkzeug raises 413 on the next read.
    if len(data) >= int(current_app.config["MAX_CONTENT_LENGTH"]) and stream.read(1):
        raise RequestEntityTooLarge()
    if not data.strip():
        return {}
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None


def _is_write(name: str) -> bool:
    return name in TrackioApi.WRITES


@bp.post("/api/<name>")
@limiter.limit(api_limit, exempt_when=lambda: _is_write(request.view_args.get("name", "")))
@limiter.limit(write_limit, key_func=limiter_key,
               exempt_when=lambda: not _is_write(request.view_args.get("name", "")))
def call(name: str) -> Response:
    """Dispatch one Trackio API call."""
    if name not in TrackioApi.READS and not _is_write(name):
        log.info("404 unknown API %r", name[:80])
        return json_response({"error": f"unknown API {name[:80]!r}"}, 404)
    if _is_write(name) and not can_write():
        configured = bool(current_app.config.get("WRITE_TOKEN"))
        log.warning("403 %s without a valid write token from %s", name, request.remote_addr)
        message = ("a valid write token is required (header X-Trackio-Write-Token, cookie "
                   "trackio_write_token or ?write_token=)" if configured else
                   "writes are disabled: set TRACKIO_WRITE_TOKEN on the server")
        return json_response({"error": message}, 403)
    function = getattr(trackio_api(), name)
    try:
        bound = bind(function, _read_body())
        result = function(*bound.args, **bound.kwargs)
    except (ApiError, InvalidEntry, storage.InvalidProjectName) as exc:
        log.info("400 %s: %s", name, exc)
        return json_response({"error": str(exc)}, 400)
    return json_response({"data": result})
