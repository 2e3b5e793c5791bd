"""Files: what a project saved with `trackio.save()` (its `media/<project>/files/` folder), each
with its size, a download link and, for text files, a preview read on demand.

`GET /projects/<p>/files?page=` is the page (200 files a page, `page` 0-based),
`.../files/preview?name=` one file's preview (htmx loads it when its row is opened),
`.../files/refresh?f=&iv=&page=` the page's poller. Files are not in the database, so the poller
compares a fingerprint of the listing (names, sizes, modification times), computed at most once
per tick for all viewers.
"""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for
from werkzeug.exceptions import BadRequest, NotFound

from .. import media, polling, storage
from ..caching import cached
from ..chrome import request_chrome
from ..dashboard import fingerprint as hash_parts
from ..encoded import cached_response
from ..extensions import limiter, page_limit, refresh_limit
from ..params import parse_int, parse_view

bp = Blueprint("files", __name__)
limiter.limit(page_limit)(bp)
PREVIEW_CHARS = 50_000
PAGE_SIZE = 200
TEXT_SUFFIXES = frozenset({".txt", ".md", ".json", ".jsonl", ".yml", ".yaml", ".toml", ".ini",
                           ".cfg", ".csv", ".tsv", ".xml", ".html", ".css", ".js", ".py", ".sh",
                           ".log", ".conf", ".env", ".gitignore", ".dockerfile", ""})


def _listing(project: str) -> tuple[list[dict], str]:
    """The project's files and their fingerprint, read at most once per tick."""
    tick = float(current_app.config["TICK_S"])
    data_dir = current_app.config["DATA_DIR"]

    def read() -> tuple[list[dict], str]:
        found = media.project_files(data_dir, project)
        stats = []
        for item in found:
            try:
                stats.append((item["name"], item["size"], Path(item["path"]).stat().st_mtime_ns))
            except OSError:
                continue
        return found, hash_parts(stats)

    if not tick:
        return read()
    return cached(("project-files", project, int(time.time() // tick)), read,
                  lambda value: 200 * len(value[0]) + 64)


def previewable(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in TEXT_SUFFIXES


def _page(found: list[dict]) -> int:
    """The 0-based page the URL asks for, the last one if it asks past it."""
    asked = parse_int(request.args.get("page") or "0", "page", 0, 10**9)
    return min(asked, max(0, len(found) - 1) // PAGE_SIZE)


def _list_args(project: str, found: list[dict], page: int) -> dict[str, Any]:
    """What the list macro shows: one page of files and the links around it."""
    chrome = request_chrome()
    return {"project": project, "files": found[page * PAGE_SIZE:(page + 1) * PAGE_SIZE],
            "count": len(found), "page": page, "pages": max(0, len(found) - 1) // PAGE_SIZE + 1,
            "page_link": lambda number: url_for("files.page", project=project,
                                                page=number or None, **chrome),
            "previewable": previewable}


def _poll_url(project: str, fingerprint: str, page: int, interval: float) -> str:
    return url_for("files.refresh", project=project, f=fingerprint, iv=interval,
                   page=page or None, **request_chrome())


def _existing(project: str) -> None:
    storage.existing_db_path(current_app.config["DATA_DIR"], project)


@bp.get("/projects/<project>/files")
def page(project: str) -> Response:
    """The project's saved files."""
    storage.validate_project_name(project)
    _existing(project)
    view = parse_view(request.args)
    found, fingerprint = _listing(project)
    page_number = _page(found)
    interval = polling.base_interval()
    parts = ("files", project, fingerprint, page_number, sorted(request_chrome().items()),
             interval, request.script_root)
    return cached_response(parts, lambda: render_template(
        "files.html", view=view, listing=_list_args(project, found, page_number),
        project=project, poll=_poll_url(project, fingerprint, page_number, interval),
        interval=interval))


@bp.get("/projects/<project>/files/refresh")
@limiter.limit(refresh_limit)
def refresh(project: str) -> Response:
    """204 while the listing is unchanged; else the list (out of band) and the next poller."""
    storage.validate_project_name(project)
    _existing(project)
    page_interval = polling.interval_arg()
    interval = polling.base_interval()
    found, fingerprint = _listing(project)
    if request.args.get("f") == fingerprint and interval == page_interval:
        return polling.no_content()
    page_number = _page(found)
    # Keyed on the listing, not on the poll's `f`: a made-up fingerprint costs a cache lookup.
    parts = ("files-refresh", project, fingerprint, page_number,
             sorted(request_chrome().items()), interval, request.script_root)
    return cached_response(parts, lambda: render_template(
        "_partials/_files_refresh.html", listing=_list_args(project, found, page_number),
        poll=_poll_url(project, fingerprint, page_number, interval), interval=interval))


@bp.get("/projects/<project>/files/preview")
def preview(project: str) -> Response:
    """The first PREVIEW_CHARS characters of one saved text file, as text."""
    storage.validate_project_name(project)
    name = request.args.get("name", "")
    if not name or len(name) > 4096:
        raise BadRequest("name names a saved file")
    found, _ = _listing(project)
    item = next((f for f in found if f["name"] == name), None)
    if item is None:
        raise NotFound("No saved file of that name.")
    if not previewable(name):
        raise BadRequest("Only text files have a preview; download the file instead.")
    try:
        with open(item["path"], "rb") as handle:
            raw = handle.read(PREVIEW_CHARS * 4)
    except OSError:
        raise NotFound("The file is gone.") from None
    text = raw.decode("utf-8", errors="replace")[:PREVIEW_CHARS]
    cut = item["size"] > len(raw) or len(text) == PREVIEW_CHARS
    return polling.html_response(render_template("_partials/_file_preview.html", text=text,
                                                 cut=cut))
