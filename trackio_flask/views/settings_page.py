"""Settings: how to log to this server (trackio's `server_url` and the write token, which is
never printed), trackio's CLI pointed at it, the theme, and this server's settings.

`GET /settings` (with `?project=` the commands name that project and the project's tabs show).
The page says whether this browser holds the write token but never shows the token, so it is
the same for every viewer but that one line; it is not cached.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from werkzeug.wrappers import Response

from .. import auth, storage
from .._version import __version__
from ..chrome import chrome_args
from ..extensions import limiter, page_limit, trackio_api
from ..params import parse_view
from ..settings import SETTINGS

bp = Blueprint("settings_page", __name__)
limiter.limit(page_limit)(bp)
HIDDEN = frozenset({"WRITE_TOKEN"})  # settings whose value the page never shows


def _setting_rows() -> list[tuple[str, str, str, str]]:
    rows = []
    for setting in SETTINGS:
        value = current_app.config.get(setting.name)
        if setting.name in HIDDEN:
            shown = "set" if value else "not set"
        elif isinstance(value, tuple | list):
            shown = ", ".join(map(str, value)) or "—"
        else:
            shown = "—" if value is None else str(value)
        rows.append((setting.name, setting.env, shown, setting.help))
    return rows


@bp.get("/settings")
def page() -> Response:
    """CLI commands and settings for this server."""
    project = request.args.get("project") or ""
    if project:
        storage.existing_db_path(current_app.config["DATA_DIR"], project)
    projects = [info.name for info in storage.list_projects(current_app.config["DATA_DIR"])]
    view = parse_view(request.args)
    server_url = request.url_root
    body = render_template(
        "settings.html", project=project, projects=projects, view=view,
        chrome=chrome_args(view), server_url=server_url, version=__version__,
        writes_enabled=bool(current_app.config.get("WRITE_TOKEN")), holds_token=auth.can_write(),
        settings=_setting_rows(), trackio_settings=trackio_api().get_settings())
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response
