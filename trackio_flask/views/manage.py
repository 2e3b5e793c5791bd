"""Run rename and delete from the dashboard: write token in a cookie, CSRF token in the form."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import storage
from ..auth import can_write, check_form_write
from ..extensions import ingest, limiter, page_limit, store
from ..params import MAX_RUN_NAME

bp = Blueprint("manage", __name__)
limiter.limit(page_limit)(bp)
log = logging.getLogger(__name__)


def _run(project: str, run: str):
    storage.validate_project_name(project)
    state = store().get(project)
    info = state.runs.get(run)
    if info is None:
        abort(404, description="No such run in this project.")
    return info


@bp.get("/projects/<project>/runs/<path:run>/delete")
def confirm_delete(project: str, run: str) -> str:
    """Ask before deleting (no JavaScript confirm needed)."""
    info = _run(project, run)
    if not can_write():
        abort(403, description="Deleting runs needs the write token.")
    return render_template("confirm_delete.html", project=project, run=info)


@bp.post("/projects/<project>/runs/<path:run>/delete")
def delete(project: str, run: str) -> Response:
    info = _run(project, run)
    check_form_write(project)
    ingest().delete_run(project, info.name, info.key)
    store().invalidate(project)
    log.info("deleted run %r of project %r", info.key, project)
    return redirect(url_for("pages.runs", project=project), code=303)


@bp.post("/projects/<project>/runs/<path:run>/rename")
def rename(project: str, run: str) -> Response:
    info = _run(project, run)
    check_form_write(project)
    new_name = request.form.get("name", "").strip()
    if not new_name or len(new_name) > MAX_RUN_NAME or any(ord(c) < 32 for c in new_name):
        abort(400, description=f"A run name needs 1 to {MAX_RUN_NAME} printable characters.")
    # Through ingest, like the API's rename_run: media files and their paths move too.
    ingest().rename_run(project, info.name, new_name, run_id=info.key)
    store().invalidate(project)
    log.info("renamed run %r of project %r", info.key, project)
    return redirect(url_for("pages.runs", project=project), code=303)
