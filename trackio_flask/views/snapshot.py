"""The share box's "offline snapshot" button: `trackio-flask export` of the view, as a download.

The export compiles its charts with vl-convert (an embedded V8 the server should not hold), so
it runs as the CLI in a child process with a deadline, one at a time per server process, and
its file is cached per project version and view like an image (same ETag, same budget).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request
from werkzeug.utils import secure_filename

from .. import storage
from ..caching import cached
from ..dashboard import fingerprint
from ..extensions import limiter, page_limit
from ..params import page_args, parse_view
from ..render_budget import DrawUnavailable, draw_limit, drew, mark_drawn, unavailable
from ..rendering import tick_state
from ..shared_cache import not_modified, share

bp = Blueprint("snapshot", __name__)
log = logging.getLogger(__name__)
TIMEOUT_S = 120.0
_one_at_a_time = threading.Lock()


bp.register_error_handler(DrawUnavailable, unavailable)


def _export(project: str, query: str) -> bytes:
    """Run the CLI's export in a child process; DrawUnavailable when busy, failing or late."""
    if not _one_at_a_time.acquire(blocking=False):
        raise DrawUnavailable("another snapshot is being written")
    try:
        mark_drawn()
        with tempfile.TemporaryDirectory(prefix="trackio-export-") as folder:
            out = Path(folder) / "snapshot.html"
            # `--` first: a project may be named like an option (`-o`, `--help`).
            argv = [sys.executable, "-m", "trackio_flask.cli", "export", "--dir",
                    str(current_app.config["DATA_DIR"]), f"--view={query}", "-o", str(out),
                    "--", project]
            try:
                subprocess.run(argv, capture_output=True, check=True, timeout=TIMEOUT_S,
                               env=os.environ.copy())
            except subprocess.TimeoutExpired:
                raise DrawUnavailable(f"the snapshot took longer than {TIMEOUT_S:g} s") from None
            except subprocess.CalledProcessError as exc:
                log.warning("snapshot of %r failed: %s", project, exc.stderr[-500:])
                raise DrawUnavailable("the snapshot could not be written") from None
            return out.read_bytes()
    finally:
        _one_at_a_time.release()


@bp.get("/projects/<project>/snapshot.html")
@limiter.limit(page_limit)
@limiter.limit(draw_limit, deduct_when=drew)
def snapshot(project: str) -> Response:
    """The view as one self-contained HTML file (opens from disk with no server)."""
    storage.validate_project_name(project)
    state = tick_state(project)
    view = parse_view(request.args, state.metric_names)
    query = urlencode(page_args(view), doseq=True)
    etag = fingerprint("snapshot", project, state.version, query)
    if not_modified(etag):
        return share(Response(status=304), etag=etag)
    body = cached(("snapshot", project, state.version, query), lambda: _export(project, query),
                  len)
    response = Response(body, mimetype="text/html")
    name = secure_filename(project) or "project"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-snapshot.html"'
    return share(response, etag=etag)
