"""Every logged row of a project over HTTP, cut so that shared caches keep most of it for good.

`GET /projects/<p>/history` answers JSON: per run its name, creation time and config, and per
table ("metrics", "system") the URLs of its closed chunks plus its open tail inline. The index
lives one tick, like a poll. `GET /projects/<p>/history/<table>/<i>/<digest>.json?run=<key>`
answers one closed chunk (history_chunks.py) with `Cache-Control: public, max-age=<a year>,
immutable` and a strong ETag; a digest that no longer matches (the history was
rewritten) is a 404 that no cache keeps. `trackio-flask export --url` reads a remote dashboard
this way (history_client.py): a second export fetches only the index and the new chunks.
"""

from __future__ import annotations

import logging
import re

import orjson
from flask import Blueprint, Response, request, url_for
from werkzeug.exceptions import NotFound

from .. import history_chunks, storage
from ..caching import cached
from ..compare import METADATA
from ..extensions import limiter, refresh_limit
from ..rendering import tick_state
from ..shared_cache import share, share_forever

bp = Blueprint("history", __name__)
log = logging.getLogger(__name__)
DIGEST = re.compile(r"[0-9a-f]{32}")


def _config(config: dict) -> dict:
    """What the pages show of a run's config: no top-level `_` keys but Trackio's metadata."""
    return {k: v for k, v in config.items() if not str(k).startswith("_") or k in METADATA}


def _table(state, table: str, run: str) -> dict:
    """A run's table: its closed chunks' URLs and its tail."""
    urls = [url_for("history.chunk", project=state.project, table=table, index=c.index,
                    digest=c.digest, run=run) for c in history_chunks.closed(state, table, run)]
    return {"chunks": urls, "tail": history_chunks.tail(state, table, run)}


@bp.get("/projects/<project>/history")
@limiter.limit(refresh_limit)
def index(project: str) -> Response:
    """The project's runs, each table's closed chunk URLs and open tail."""
    storage.validate_project_name(project)
    state = tick_state(project)

    def compute() -> bytes:
        runs = [{"key": run.key, "name": run.name, "created": run.created,
                 "first_time": run.first_time, "config": _config(state.configs.get(run.key, {})),
                 **{table: _table(state, table, run.key) for table in history_chunks.TABLES}}
                for run in sorted(state.runs.values(), key=lambda r: r.key)]
        return orjson.dumps({"project": project, "version": state.version,
                             "chunk_rows": history_chunks.CHUNK_ROWS, "runs": runs},
                            option=orjson.OPT_SERIALIZE_NUMPY)

    body = cached(("history", project, state.version, request.script_root), compute, len)
    return share(Response(body, mimetype="application/json"))


@bp.get("/projects/<project>/history/<table>/<int:index>/<digest>.json")
@limiter.limit(refresh_limit)
def chunk(project: str, table: str, index: int, digest: str) -> Response:
    """One closed chunk, if `digest` is still its content's; else 404 (never old rows)."""
    storage.validate_project_name(project)
    run = request.args.get("run", "")
    if table not in history_chunks.TABLES or not DIGEST.fullmatch(digest):
        raise NotFound("no such history chunk")
    state = tick_state(project)
    data = history_chunks.closed_body(state, table, run, index, digest)
    if data is None:
        log.info("history chunk %s/%d of a run of %r: gone or rewritten", table, index, project)
        raise NotFound("this history chunk is gone or was rewritten: read the index again")
    return share_forever(Response(data, mimetype="application/json"))
