"""Run rename and delete from the dashboard: write token in a cookie, CSRF token in the form."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import storage
from ..auth import can_write, check_form_write
from ..extensions import ingest, limiter, page_limit, store
from ..params import MAX_RUN_NAME, MAX_RUNS

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


def _chosen(project: str) -> list:
    """The runs a bulk-delete form names (`run`, repeated: keys), unknown keys left out."""
    storage.validate_project_name(project)
    keys = list(dict.fromkeys(key for key in request.form.getlist("run") if key))
    if len(keys) > MAX_RUNS:
        abort(400, description=f"run lists more than {MAX_RUNS} runs")
    state = store().get(project)
    return [state.runs[key] for key in keys if key in state.runs]


@bp.post("/projects/<project>/runs/delete-selected/confirm")
def confirm_bulk_delete(project: str) -> str:
    """Ask before deleting the runs ticked in the runs table. Posted by that table's form (a
    GET could not carry 100 run keys); it changes nothing, so it needs the write token but not
    the CSRF token, which only the confirmation's own form carries."""
    if not can_write():
        abort(403, description="Deleting runs needs the write token.")
    runs = _chosen(project)
    if not runs:
        abort(400, description="Tick the runs to delete first.")
    return render_template("confirm_bulk_delete.html", project=project, runs=runs)


@bp.post("/projects/<project>/runs/delete-selected")
def bulk_delete(project: str) -> Response:
    """Delete the confirmed runs: same-origin form, write cookie and CSRF token, as for one."""
    storage.validate_project_name(project)
    check_form_write(project)
    runs = _chosen(project)
    for info in runs:
        ingest().delete_run(project, info.name, info.key)
    store().invalidate(project)
    log.info("deleted %d runs of project %r", len(runs), project)
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
