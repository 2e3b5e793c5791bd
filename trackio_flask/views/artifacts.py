"""Artifacts: a project's artifacts and their versions, one version's files, producer, consumers
and lineage graph (SVG drawn here, clickable without a script); and the read-only registries.

`GET /projects/<p>/artifacts?name=&version=&files=` is the page (trackio's `selected_artifact`
and `selected_version=vN` work too; `files` is the 0-based page of the version's file list),
`.../artifacts/refresh?v=&f=&iv=` its poller,
`GET /registry` and `/registry/<name>` the local registries (`registry-<name>.db`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for
from werkzeug.exceptions import BadRequest, NotFound

from .. import artifacts, lineage, polling, storage
from ..caching import cached
from ..chrome import request_chrome
from ..dashboard import fingerprint as hash_parts
from ..encoded import cached_response
from ..extensions import limiter, page_limit, refresh_limit
from ..live import ProjectState
from ..params import parse_int, parse_view
from ..rendering import last_activity, tick_state

bp = Blueprint("artifacts", __name__)
limiter.limit(page_limit)(bp)
MAX_NAME = 256
# The page stays a bounded size however much a project logged: the tree lists this many
# artifacts and each one's newest versions (any other is one form away), a version's files come
# a page at a time, and its consumers are listed up to a number.
TREE_ARTIFACTS = 300
TREE_VERSIONS = 10
FILES_PAGE = 200
MAX_CONSUMERS = 100
REGISTRY_ROWS = 200  # collections, links per collection and events on a registry's page


@dataclass(frozen=True)
class Selection:
    """What the URL asks for: an artifact and version ("" / None: the default) and a page of
    that version's files."""

    name: str
    version: int | None
    files: int


def _selection() -> Selection:
    name = request.args.get("name") or request.args.get("selected_artifact") or ""
    raw = request.args.get("version") or request.args.get("selected_version") or ""
    files = parse_int(request.args.get("files") or "0", "files", 0, 10**9)
    if len(name) > MAX_NAME:
        raise BadRequest(f"name is longer than {MAX_NAME} characters")
    if not raw:
        return Selection(name, None, files)
    digits = raw[1:] if raw.startswith("v") else raw
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
        raise BadRequest("version must be a version number (3 or v3)")
    return Selection(name, int(digits), files)


def _read(state: ProjectState, read) -> Any:
    conn = storage.open_readonly(state.path)
    try:
        return read(conn)
    finally:
        conn.close()


def _listing(project: str, state: ProjectState) -> list[dict[str, Any]]:
    """Every artifact with its versions, once per version of the project."""
    return cached(("artifact-list", project, state.version),
                  lambda: _read(state, artifacts.list_artifacts),
                  lambda found: 400 * sum(1 + len(a["versions"]) for a in found))


def _links_fingerprint(conn: sqlite3.Connection) -> tuple:
    if "run_artifact_links" not in storage.table_names(conn):
        return ()
    return tuple(storage.read(conn, "SELECT COUNT(*), MAX(id) FROM run_artifact_links")[0])


def content_fingerprint(project: str, state: ProjectState) -> str:
    """Changes when an artifact, version, alias or run link changes."""
    return cached(("artifact-fp", project, state.version),
                  lambda: hash_parts(_listing(project, state), _read(state, _links_fingerprint)),
                  lambda text: len(text) + 64)


def _chosen(listing: list[dict[str, Any]], name: str, version: int | None
            ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (artifact, version) to show: the URL's, else the first artifact's latest."""
    if not listing:
        return None
    if not name:
        first = listing[0]
        return (first, first["versions"][0]) if first["versions"] else None
    artifact = next((a for a in listing if a["name"] == name), None)
    if artifact is None:
        raise NotFound("No artifact of that name in this project.")
    if version is None:
        return (artifact, artifact["versions"][0]) if artifact["versions"] else None
    found = next((v for v in artifact["versions"] if v["version"] == version), None)
    if found is None:
        raise NotFound("No such version of this artifact.")
    return artifact, found


def _detail(project: str, state: ProjectState, artifact: dict[str, Any],
            version: dict[str, Any]) -> dict[str, Any]:
    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        record = artifacts.manifest_record(conn, artifact["name"], f"v{version['version']}")
        if record is None:
            raise NotFound("This artifact version is gone.")
        graph = artifacts.lineage(conn, project, record["version_id"])
        return {"record": record, "consumers": artifacts.consumers(conn, project, record["version_id"]),
                "graph": graph, "layout": lineage.layout(graph["nodes"], graph["edges"])}
    return _read(state, read)


def _blob_present(project: str, digest: Any) -> bool:
    return isinstance(digest, str) and artifacts.served_blob(
        current_app.config["DATA_DIR"], project, digest) is not None


def _last_files_page(chosen: tuple[dict[str, Any], dict[str, Any]] | None) -> int:
    count = chosen[1]["num_files"] if chosen else 0
    return max(0, count - 1) // FILES_PAGE


def _tree(listing: list[dict[str, Any]], chosen: tuple[dict[str, Any], dict[str, Any]] | None
          ) -> dict[str, list[dict[str, Any]]]:
    """The first TREE_ARTIFACTS artifacts (and the chosen one) by type, each with its newest
    TREE_VERSIONS versions (and the chosen one) and how many older ones are not listed."""
    shown = listing[:TREE_ARTIFACTS]
    if chosen is not None and chosen[0] not in shown:
        shown.append(chosen[0])
    tree: dict[str, list[dict[str, Any]]] = {}
    for artifact in shown:
        versions = artifact["versions"][:TREE_VERSIONS]
        if chosen is not None and chosen[0] is artifact and chosen[1] not in versions:
            versions.append(chosen[1])
        tree.setdefault(str(artifact["type"]), []).append({
            "artifact": artifact, "versions": versions,
            "older": len(artifact["versions"]) - len(versions)})
    return tree


def _context(project: str, state: ProjectState, listing: list[dict[str, Any]],
             selection: Selection) -> dict[str, Any]:
    chosen = _chosen(listing, selection.name, selection.version)
    detail = None if chosen is None else _detail(project, state, *chosen)
    manifest = detail["record"]["manifest"] if detail else None
    manifest = manifest if isinstance(manifest, list) else []
    start = selection.files * FILES_PAGE
    return {"project": project, "tree": _tree(listing, chosen),
            "unlisted": max(0, len(listing) - TREE_ARTIFACTS), "chosen": chosen,
            "detail": detail, "files_page": selection.files, "files_count": len(manifest),
            "files": artifacts.manifest_files(manifest[start:start + FILES_PAGE]),
            "files_pages": _last_files_page(chosen) + 1,
            "files_link": lambda number: url_for(
                "artifacts.page", project=project, name=chosen[0]["name"],
                version=chosen[1]["version"], files=number or None, **request_chrome()),
            "max_consumers": MAX_CONSUMERS, "chrome": request_chrome(), "blob_present": _blob_present,
            "node_size": (lineage.NODE_W, lineage.NODE_H),
            "registries": artifacts.list_registries(current_app.config["DATA_DIR"])}


def _canonical(listing: list[dict[str, Any]], selection: Selection) -> Selection:
    """The selection with its files page no further than the chosen version's last page (so a
    made-up page number mints no cache entry); 404 for an unknown artifact or version."""
    chosen = _chosen(listing, selection.name, selection.version)
    return Selection(selection.name, selection.version,
                     min(selection.files, _last_files_page(chosen)))


def _poll_url(project: str, state: ProjectState, selection: Selection, interval: float,
              chrome: dict[str, str]) -> str:
    return url_for("artifacts.refresh", project=project, name=selection.name or None,
                   version=selection.version, files=selection.files or None, **chrome,
                   v=state.version, f=content_fingerprint(project, state), iv=interval)


@bp.get("/projects/<project>/artifacts")
def page(project: str) -> Response:
    """Artifacts grouped by type; one version's details and lineage."""
    storage.validate_project_name(project)
    state = tick_state(project)
    listing = _listing(project, state)
    selection = _canonical(listing, _selection())
    interval = polling.interval_for(last_activity(state))
    chrome = request_chrome()
    parts = ("artifacts", project, state.version, selection, sorted(chrome.items()),
             interval, request.script_root)
    return cached_response(parts, lambda: render_template(
        "artifacts.html", project=project, view=parse_view(request.args),
        content=_context(project, state, listing, selection), interval=interval,
        poll=_poll_url(project, state, selection, interval, chrome)))


@bp.get("/projects/<project>/artifacts/refresh")
@limiter.limit(refresh_limit)
def refresh(project: str) -> Response:
    """204 at the page's version; the next poller when no artifact changed; else the page's
    content (out of band) and the next poller."""
    storage.validate_project_name(project)
    state = tick_state(project)
    selection = _selection()
    interval = polling.interval_for(last_activity(state))
    if polling.page_is_current(state.version, interval):
        return polling.no_content()
    chrome = request_chrome()
    if request.args.get("f") == content_fingerprint(project, state):
        return polling.next_poller(_poll_url(project, state, selection, interval, chrome),
                                   interval)
    listing = _listing(project, state)
    selection = _canonical(listing, selection)
    poll = _poll_url(project, state, selection, interval, chrome)
    parts = ("artifacts-refresh", project, state.version, selection, sorted(chrome.items()),
             interval, request.script_root)
    return cached_response(parts, lambda: render_template(
        "_partials/_artifacts_refresh.html",
        content=_context(project, state, listing, selection), poll=poll,
        interval=interval))


@bp.get("/registry")
def registries() -> str:
    """The local registries (trackio's `trackio show --dashboard registry`), read-only."""
    return render_template("registry.html", registries=artifacts.list_registries(
        current_app.config["DATA_DIR"]), details=None, view=parse_view(request.args))


@bp.get("/registry/<name>")
def registry(name: str) -> str:
    """One registry's collections (with the artifact versions they link) and its event log."""
    try:
        artifacts.validate_registry_name(name)
        path = storage.db_path(current_app.config["DATA_DIR"], artifacts.REGISTRY_PREFIX + name)
    except (artifacts.ArtifactError, storage.InvalidProjectName):
        raise BadRequest("registry names use letters, digits, '_' and '-'") from None
    try:
        conn = storage.open_readonly(path)
    except storage.ProjectNotFound:
        raise NotFound("No registry of that name.") from None
    try:
        record = artifacts.registry_record(conn, name)
        if record is None:
            raise NotFound("No registry of that name.")
        details = artifacts.registry_details(conn, record, REGISTRY_ROWS)
    finally:
        conn.close()
    return render_template("registry.html", registries=artifacts.list_registries(
        current_app.config["DATA_DIR"]), details=details, view=parse_view(request.args))
