"""Trackio's HTTP API v1: `GET /version`, `POST /api/<name>` and `POST /api/upload` (reads are
open, writes need the write token)."""

from __future__ import annotations

import errno
import inspect
import logging
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Response, after_this_request, current_app, request
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from .. import media, memory_release, storage
from .._version import __version__
from ..auth import can_write, check_cookie_write, limiter_key
from ..extensions import api_limit, bad_token_limit, limiter, trackio_api, write_limit
from ..ingest import InvalidEntry
from ..locks import NoSlot
from ..trackio_api import NOT_SERVED, AnswerTooLarge, ApiError, Caller, NotServed, TrackioApi

bp = Blueprint("api", __name__)
log = logging.getLogger(__name__)
UPLOAD = "upload"


def json_response(payload: Any, status: int = 200, max_bytes: int | None = None) -> Response:
    """orjson keeps NaN and infinities out of the output (they become null); an answer over
    `max_bytes` on the wire is refused (413) rather than sent."""
    try:
        body = orjson.dumps(payload, default=str)
    except orjson.JSONEncodeError as exc:  # e.g. a stored value nested past orjson's limit
        log.warning("422 stored data cannot be sent as JSON: %s", exc)
        body, status = orjson.dumps({"error": "stored data cannot be sent as JSON"}), 422
    if max_bytes is not None and len(body) > max_bytes:
        log.warning("413 answer of %d bytes over the %d byte limit", len(body), max_bytes)
        return too_large(max_bytes)
    return _json_bytes(body, status)


def too_large(max_bytes: int) -> Response:
    return _json_bytes(orjson.dumps({"error": f"The answer is larger than {max_bytes // 2**20} "
                                              "MB; ask for fewer runs, fewer points "
                                              "(max_points) or a step window."}), 413)


def _json_bytes(body: bytes, status: int) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/version")
def version() -> Response:
    """Let Trackio clients detect the plain-HTTP API."""
    return json_response({"version": __version__, "api_version": 1, "api_transport": "http",
                          "mcp_enabled": False, "mcp_path": None})


def _split_body(body: Any) -> tuple[list, dict]:
    """Trackio's body shapes: {"args", "kwargs"}, {"data": [...]}, a plain object, a list."""
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
    return args, kwargs


def bind(function: Callable[..., Any], body: Any,
         injected: dict[str, Any] | None = None) -> dict[str, Any]:
    """Bind a body to `function` the way trackio's dispatcher does (by name, then position),
    with its "Missing required parameter" message; `injected` parameters come from the server,
    never from the body. Arguments the function does not take are refused."""
    args, kwargs = _split_body(body)
    injected = injected or {}
    params = [p for p in inspect.signature(function).parameters.values()
              if p.name not in injected]
    # A misspelt name explains a missing one, so it is reported first.
    unexpected = sorted(set(kwargs) - {p.name for p in params})
    if unexpected:
        raise ApiError(f"bad arguments: unexpected parameter {unexpected[0][:80]!r}")
    named: dict[str, Any] = dict(injected)
    used = 0
    for param in params:
        if param.name in kwargs:
            named[param.name] = kwargs[param.name]
        elif used < len(args):
            named[param.name] = args[used]
            used += 1
        elif param.default is inspect.Parameter.empty:
            raise ApiError(f"Missing required parameter: {param.name}")
    if used < len(args):
        raise ApiError(f"bad arguments: {len(args) - used} more positional argument(s) than "
                       "this API takes")
    return named


def _read_body() -> Any:
    """The JSON body; over MAX_BODY_MB is 413, also when it arrives chunked (no length)."""
    stream = request.stream
    data = stream.read()
    # A chunked body stops at the limit silently; werkzeug raises 413 on the next read.
    if len(data) >= int(current_app.config["MAX_CONTENT_LENGTH"]) and stream.read(1):
        raise RequestEntityTooLarge()
    if len(data) >= memory_release.TRIM_AFTER_BYTES:
        # What the parsed body and its rows freed goes back to the system once answered.
        after_this_request(_release_after)
    if not data.strip():
        return {}
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None


def _release_after(response: Response) -> Response:
    response.call_on_close(memory_release.release)
    return response


def _name() -> str:
    return (request.view_args or {}).get("name", UPLOAD)


def _is_write(name: str) -> bool:
    return name in TrackioApi.WRITES or name == UPLOAD


def _is_read(name: str) -> bool:
    """Known names other than writes share the read budget; unknown names spend nothing."""
    return name in TrackioApi.READS or name in NOT_SERVED


def _refuse_write() -> Response:
    configured = bool(current_app.config.get("WRITE_TOKEN"))
    log.warning("403 %s without a valid write token from %s", _name(), request.remote_addr)
    message = ("a valid write token is required (header X-Trackio-Write-Token, cookie "
               "trackio_write_token or ?write_token=)" if configured else
               "writes are disabled: set TRACKIO_WRITE_TOKEN on the server")
    return json_response({"error": message}, 403)


# Uploads and the write names share one budget per token.
write_budget = limiter.shared_limit(write_limit, "trackio-api-write", key_func=limiter_key,
                                    exempt_when=lambda: not _is_write(_name()))


# Wrong tokens are counted per client address (403s only), so guessing stops at the limit
# while the token's own budget stays untouched.
bad_token_budget = limiter.shared_limit(
    bad_token_limit, "trackio-bad-token", key_func=get_remote_address,
    exempt_when=lambda: not _is_write(_name()),
    deduct_when=lambda response: response.status_code == 403)


@bp.post("/api/<name>")
@limiter.limit(api_limit, exempt_when=lambda: not _is_read(_name()))
@write_budget
@bad_token_budget
def call(name: str) -> Response:
    """Dispatch one Trackio API call."""
    if name in NOT_SERVED:
        log.info("501 %s", name)
        return json_response({"error": NOT_SERVED[name]}, 501)
    if not _is_read(name) and not _is_write(name):
        log.info("404 unknown API %r", name[:80])
        return json_response({"error": f"Unknown API: {name[:80]}"}, 404)
    if _is_write(name) and not can_write():
        return _refuse_write()
    if _is_write(name) and (refused := check_cookie_write()):
        log.warning("403 %s with the write cookie: %s (Origin %r)", name, refused,
                    (request.headers.get("Origin") or "")[:100])
        return json_response({"error": refused}, 403)
    api = trackio_api()
    function = getattr(api, name)
    slots = api.heavy_slots.taken() if name in TrackioApi.HEAVY_READS else nullcontext()
    try:
        with slots:
            result = function(**bind(function, _read_body(), _injected(function)))
            return json_response({"data": result},
                                 max_bytes=int(current_app.config["API_ANSWER_MAX_MB"]) * 2**20)
    except NoSlot:
        log.warning("503 %s: every heavy-read slot is busy (client %s)", name,
                    request.remote_addr)
        response = json_response({"error": "The server is busy with other heavy reads; "
                                           "try again shortly."}, 503)
        response.headers["Retry-After"] = "2"
        return response
    except AnswerTooLarge as exc:
        log.warning("413 %s: the answer passed the %d byte limit before it was built", name,
                    exc.args[0])
        return too_large(exc.args[0])
    except orjson.JSONEncodeError as exc:  # a run's stored value nested past orjson's limit
        log.warning("422 %s: stored data cannot be sent as JSON: %s", name, exc)
        return json_response({"error": "stored data cannot be sent as JSON"}, 422)
    except NotServed as exc:
        log.info("501 %s: %s", name, exc)
        return json_response({"error": str(exc)}, 501)
    except (ApiError, InvalidEntry, storage.InvalidProjectName) as exc:
        log.info("400 %s: %s", name, exc)
        return json_response({"error": str(exc)}, 400)


def _injected(function: Callable[..., Any]) -> dict[str, Any]:
    if "caller" in inspect.signature(function).parameters:
        return {"caller": Caller(can_write=can_write())}
    return {}


@bp.post("/api/upload")
@write_budget
@bad_token_budget
def upload() -> Response:
    """Stage files (multipart field `files`) for a later bulk_upload_media; answer their paths."""
    if not can_write():
        return _refuse_write()
    if refused := check_cookie_write():
        log.warning("403 upload with the write cookie: %s", refused)
        return json_response({"error": refused}, 403)
    limit = int(current_app.config["MAX_UPLOAD_MB"]) * 2**20
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"uploads are limited to {limit // 2**20} MB")
    request.max_content_length = limit
    files = request.files.getlist("files")
    if not files:
        return json_response({"error": "send the files as multipart form field 'files'"}, 400)
    data_dir = trackio_api().data_dir
    paths = []
    try:
        for item in files:
            paths.append(media.stage(data_dir, item.stream, item.filename or "", limit))
    except (media.MediaError, OSError) as exc:
        for path in paths:
            Path(path).unlink(missing_ok=True)
        if isinstance(exc, media.MediaError):
            return json_response({"error": str(exc)}, 413)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            log.error("507 upload could not be staged: %s", exc)
            return json_response({"error": f"the upload could not be stored: {exc.strerror}"},
                                 507)
        # Like every other write the storage refuses (read-only folder, no permission): 409.
        log.warning("409 upload could not be staged: %s", exc)
        return json_response({"error": f"Nothing was written: the upload could not be stored "
                                       f"({exc.strerror})"}, 409)
    return json_response({"paths": paths})
