"""Run rename and delete from the dashboard: write token in a cookie, CSRF token in the form."""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import urlencode, urlparse

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import storage
from ..app import store
from .api import WRITE_TOKEN_COOKIE, ingest, token_is_valid

bp = Blueprint("manage", __name__)
log = logging.getLogger(__name__)
MAX_RUN_NAME = 256


@bp.before_app_request
def adopt_write_token_from_url() -> Response | None:
    """Move `?write_token=` into an HttpOnly cookie and strip it from the address bar."""
    if request.method != "GET" or "write_token" not in request.args or request.path.startswith("/api/"):
        return None
    token = request.args["write_token"]
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != "write_token"]
    target = request.script_root + request.path + (f"?{urlencode(rest)}" if rest else "")
    response = redirect(target, code=303)
    if token_is_valid(token):
        response.set_cookie(WRITE_TOKEN_COOKIE, token, max_age=7 * 86400, httponly=True,
                            samesite="Strict", secure=request.is_secure,
                            path=request.script_root or "/")
    else:
        log.warning("invalid write token presented in a URL from %s", request.remote_addr)
    return response


def can_write() -> bool:
    if "can_write" not in g:
        g.can_write = token_is_valid(request.cookies.get(WRITE_TOKEN_COOKIE))
    return g.can_write


def csrf_token(project: str) -> str:
    """Derived from the write token, so only a holder of the token can produce it."""
    secret = str(current_app.config.get("WRITE_TOKEN") or "").encode()
    return hmac.new(secret, f"csrf:{project}".encode(), hashlib.sha256).hexdigest()


@bp.app_context_processor
def write_access() -> dict:
    return {"can_write": can_write, "csrf_token": csrf_token}


def _check_write(project: str) -> None:
    if not can_write():
        log.warning("403 run change without write access from %s", request.remote_addr)
        abort(403, description="Changing runs needs the write token (open a link with "
                               "?write_token=… once).")
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin and urlparse(origin).netloc != request.host:
        log.warning("403 cross-origin run change from %s", origin[:100])
        abort(403, description="Cross-site request refused.")
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), csrf_token(project).encode()):
        log.warning("403 run change with a missing or wrong CSRF token")
        abort(403, description="The form expired; reload the page and try again.")


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
    _check_write(project)
    writer = ingest()
    with writer.locked(project) as project_writer:
        project_writer.delete_run(info.key)
    store().invalidate(project)
    log.info("deleted run %r of project %r", info.key, project)
    return redirect(url_for("pages.runs", project=project), code=303)


@bp.post("/projects/<project>/runs/<path:run>/rename")
def rename(project: str, run: str) -> Response:
    info = _run(project, run)
    _check_write(project)
    new_name = request.form.get("name", "").strip()
    if not new_name or len(new_name) > MAX_RUN_NAME or any(ord(c) < 32 for c in new_name):
        abort(400, description=f"A run name needs 1 to {MAX_RUN_NAME} printable characters.")
    with ingest().locked(project) as project_writer:
        project_writer.rename_run(info.key, new_name)
    store().invalidate(project)
    log.info("renamed run %r of project %r", info.key, project)
    return redirect(url_for("pages.runs", project=project), code=303)
