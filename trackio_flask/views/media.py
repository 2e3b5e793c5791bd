"""`GET /file?path=` (media files from the data dir's media folder) and
`GET /artifact_blob/<project>/<sha256>` (artifact blobs), as Trackio's server serves them, and
nothing else."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, request, send_file
from werkzeug.wrappers import Response

from .. import artifacts, media
from ..extensions import trackio_api

bp = Blueprint("media", __name__)
log = logging.getLogger(__name__)
# Logged HTML and SVG stay inert: no scripts, no plugins, no requests, a unique origin.
MEDIA_CSP = ("default-src 'none'; img-src 'self' data:; media-src 'self'; "
             "style-src 'unsafe-inline'; sandbox")


@bp.get("/file")
def file() -> Response:
    """Send one media file (path absolute under the media folder, or relative to it)."""
    raw = request.args.get("path", "")
    if not raw:
        abort(400, description="Missing path")
    path = media.served_file(trackio_api().data_dir, raw)
    if path is None:
        log.info("404 /file for a path outside the media folder or missing")
        abort(404, description="Not found")
    response = send_file(path, mimetype=media.content_type(path), conditional=True, max_age=0)
    response.headers["Content-Security-Policy"] = MEDIA_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/artifact_blob/<project>/<digest>")
def artifact_blob(project: str, digest: str) -> Response:
    """Send one artifact blob by content address (trackio's client downloads them here)."""
    path = artifacts.served_blob(trackio_api().data_dir, project, digest)
    if path is None:
        abort(404, description="Not found")
    response = send_file(path, mimetype="application/octet-stream", conditional=True,
                         max_age=0, as_attachment=True, download_name=digest)
    response.headers["Content-Security-Policy"] = MEDIA_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response
