"""Trackio's artifacts: content-addressed blobs under `<data dir>/artifacts/<project>/blobs/sha256/`
and the artifact tables of a project database. Validation and reads mirror trackio's server on
the same file (its messages too); writes go through writer.ProjectWriter. No Flask here.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from . import storage

SHA256 = re.compile(r"[0-9a-f]{64}")
NAME = re.compile(r"[A-Za-z0-9._-]+")
VERSION_SPEC = re.compile(r"v(\d+)")
MAX_MANIFEST = 100_000
MAX_LINEAGE_NODES = 1000
MAX_LINEAGE_EDGES = 5000
MAX_LINEAGE_LINKS = 10_000
CHUNK = 1 << 20
# A version's file count; NULL where its manifest is not JSON (any other reader's mistake must
# not make every artifact unreadable).
_FILE_COUNT = "CASE WHEN json_valid(manifest) THEN json_array_length(manifest) END AS n"


class ArtifactError(ValueError):
    """An artifact request trackio's server would refuse; the message is trackio's."""


def blob_path(data_dir: Path, project: str, digest: str) -> Path:
    storage.validate_project_name(project)
    return Path(data_dir) / "artifacts" / project / "blobs" / "sha256" / digest[:2] / digest


def digest(value: Any) -> str:
    if not isinstance(value, str) or not SHA256.fullmatch(value):
        raise ArtifactError(f"Invalid sha256 digest: {value!r}")
    return value


def present_blobs(data_dir: Path, project: str, digests: list[str]) -> list[str]:
    return [d for d in digests if blob_path(data_dir, project, d).is_file()]


def store_blob(data_dir: Path, project: str, claimed: str, source: Path) -> None:
    """Move a staged upload into the project's blob store after checking its sha256."""
    target = blob_path(data_dir, project, claimed)
    if target.is_file():
        source.unlink(missing_ok=True)
        return
    sha = hashlib.sha256()
    with open(source, "rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    actual = sha.hexdigest()
    if actual != claimed:
        source.unlink(missing_ok=True)
        raise ArtifactError(f"Digest mismatch: claimed {claimed}, computed {actual}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{claimed}.partial.{secrets.token_hex(8)}")
    try:
        os.replace(source, partial)
    except OSError:  # another file system: copy instead
        partial.write_bytes(source.read_bytes())
        source.unlink(missing_ok=True)
    os.replace(partial, target)


def served_blob(data_dir: Path, project: str, value: str) -> Path | None:
    """The blob `/artifact_blob/<project>/<digest>` may send, or None."""
    try:
        path = blob_path(data_dir, project, digest(value))
    except (ArtifactError, storage.InvalidProjectName):
        return None
    return path if path.is_file() and not path.is_symlink() else None


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ArtifactError(f"Artifact name {name!r} must match ^[A-Za-z0-9._-]+$ "
                            "(letters, digits, dot, underscore, hyphen).")
    return name


def validate_aliases(aliases: Any) -> list[str]:
    if aliases is None:
        return []
    if not isinstance(aliases, list):
        raise ArtifactError(f"aliases must be a list of strings, got {type(aliases).__name__}.")
    for alias in aliases:
        if not isinstance(alias, str) or not alias:
            raise ArtifactError(f"Alias {alias!r} must be a non-empty string.")
        if not NAME.fullmatch(alias):
            raise ArtifactError(f"Alias {alias!r} must match ^[A-Za-z0-9._-]+$ "
                                "(letters, digits, dot, underscore, hyphen).")
        if VERSION_SPEC.fullmatch(alias):
            raise ArtifactError(f"Alias {alias!r} is reserved for version pointers (vN); "
                                "choose another.")
    return list(aliases)


def _logical_path(path: Any) -> str:
    if not isinstance(path, str) or not path:
        raise ArtifactError(f"Invalid artifact path: {path!r} (must be non-empty)")
    if "\\" in path or "\x00" in path:
        raise ArtifactError(f"Invalid artifact path {path!r}: backslashes and NUL are not "
                            "allowed")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise ArtifactError(f"Invalid artifact path {path!r}: must be relative")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ArtifactError(f"Invalid artifact path {path!r}: '.', '..', and empty segments "
                            "are not allowed")
    return path


def _reference(uri: Any) -> None:
    if not isinstance(uri, str) or not uri:
        raise ArtifactError(f"Invalid reference URI: {uri!r} (must be non-empty)")
    if "\x00" in uri or any(c.isspace() for c in uri):
        raise ArtifactError(f"Invalid reference URI {uri!r}: NUL and whitespace are not "
                            "allowed (percent-encode them)")
    if not urlsplit(uri).scheme:
        raise ArtifactError(f"Invalid reference URI {uri!r}: a scheme is required "
                            "(e.g. file://, s3://, https://); use add_file for local paths.")


def validate_manifest(manifest: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Trackio's manifest checks; returns (canonical entries sorted by path, blob digests)."""
    if not isinstance(manifest, list) or not manifest:
        raise ArtifactError("Artifact manifest must be a non-empty list of entries.")
    if len(manifest) > MAX_MANIFEST:
        raise ArtifactError(f"Artifact manifest has more than {MAX_MANIFEST} entries.")
    canonical, digests, seen = [], [], set()
    for entry in manifest:
        if not isinstance(entry, dict):
            raise ArtifactError(f"Invalid artifact manifest entry: {str(entry)[:200]}")
        path = _logical_path(entry.get("path"))
        size = entry.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ArtifactError(f"Artifact manifest entry has invalid size: {size!r}")
        item: dict[str, Any] = {"path": path, "digest": entry.get("digest"), "size": size}
        if "ref" in entry:
            _reference(entry["ref"])
            if not isinstance(item["digest"], str) or not item["digest"]:
                raise ArtifactError("Artifact reference entry must carry a string digest, got "
                                    f"{item['digest']!r}")
            item["ref"] = entry["ref"]
        else:
            digests.append(digest(item["digest"]))
        if path in seen:
            raise ArtifactError(f"Duplicate logical path in manifest: {path!r}")
        seen.add(path)
        canonical.append(item)
    for path in seen:
        parts = path.split("/")
        for end in range(1, len(parts)):
            if "/".join(parts[:end]) in seen:
                raise ArtifactError(f"Artifact path {path!r} collides with "
                                    f"{'/'.join(parts[:end])!r}: a path cannot be both a file "
                                    "and a directory in the same artifact.")
    canonical.sort(key=lambda e: e["path"])
    return canonical, digests


def manifest_digest(canonical: list[dict[str, Any]]) -> tuple[str, int]:
    """Trackio's content address of a manifest (sorted keys) and its total size."""
    payload = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest(), sum(int(e["size"]) for e in canonical)


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[sqlite3.Row] | None:
    """Rows as mappings; None when a table is missing (a project without artifacts)."""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    try:
        return cursor.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc) or "no such column" in str(exc):
            return None
        raise storage.StorageBusy(str(exc)) if storage.sqlite_problem(exc) == "busy" \
            else storage.UnreadableDatabase(str(exc)) from exc


def _int(value: Any) -> int | None:
    """An integer column's value; None when the row holds anything else (SQLite columns take any
    type, so a file trackio never wrote can hold text or bytes where trackio writes numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, float) and value.is_integer() else None


def _order(value: Any) -> str:
    """A sort key for a timestamp column whatever type the row holds (None first)."""
    return "" if value is None else str(value)


def _loads(value: Any) -> Any:
    try:
        return orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None


def list_artifacts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    artifacts = _rows(conn, "SELECT id, name, type, description, created_at FROM artifacts "
                            "ORDER BY type, name")
    versions = _rows(conn, "SELECT id, artifact_id, version, " + _FILE_COUNT + ", size_bytes, "
                           "created_at FROM artifact_versions ORDER BY artifact_id, version DESC")
    aliases = _rows(conn, "SELECT alias, artifact_version_id FROM artifact_aliases")
    if artifacts is None or versions is None or aliases is None:
        return []
    by_version: dict[int, list[str]] = {}
    for row in aliases:
        if (version_id := _int(row["artifact_version_id"])) is not None:
            by_version.setdefault(version_id, []).append(row["alias"])
    by_artifact: dict[int, list[dict[str, Any]]] = {}
    for row in versions:
        artifact_id, number = _int(row["artifact_id"]), _int(row["version"])
        if artifact_id is None or number is None:
            continue
        by_artifact.setdefault(artifact_id, []).append({
            "version_id": int(row["id"]), "version": number,
            "aliases": by_version.get(int(row["id"]), []), "size_bytes": _int(row["size_bytes"]),
            "num_files": _int(row["n"]) or 0, "created_at": row["created_at"]})
    result = []
    for art in artifacts:
        found = by_artifact.get(int(art["id"]), [])
        result.append({"name": art["name"], "type": art["type"],
                       "description": art["description"], "created_at": art["created_at"],
                       "num_versions": len(found),
                       "latest_version": found[0]["version"] if found else None,
                       "versions": found})
    return result


def get_artifacts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [{"name": art["name"], "type": art["type"], "description": art["description"],
             "num_versions": art["num_versions"], "latest_version": art["latest_version"],
             "size_bytes": art["versions"][0]["size_bytes"] if art["versions"] else None,
             "aliases": sorted({a for v in art["versions"] for a in v["aliases"]}, key=str),
             "created_at": art["created_at"]}
            for art in sorted(list_artifacts(conn), key=lambda a: str(a["name"]))]


def resolve_version(conn: sqlite3.Connection, name: str, spec: str | None) -> dict | None:
    found = _rows(conn, "SELECT id FROM artifacts WHERE name = ?", (name,))
    if not found:
        return None
    artifact_id = int(found[0]["id"])
    spec = spec or "latest"
    match = VERSION_SPEC.fullmatch(spec)
    if match:
        rows = _rows(conn, "SELECT id, version FROM artifact_versions WHERE artifact_id = ? "
                           "AND version = ?", (artifact_id, int(match.group(1))))
    else:
        rows = _rows(conn, "SELECT av.id, av.version FROM artifact_versions av JOIN "
                           "artifact_aliases aa ON aa.artifact_version_id = av.id "
                           "WHERE aa.artifact_id = ? AND aa.alias = ?", (artifact_id, spec))
    if not rows or _int(rows[0]["version"]) is None:
        return None
    return {"artifact_id": artifact_id, "version_id": int(rows[0]["id"]),
            "version": _int(rows[0]["version"])}


def manifest_record(conn: sqlite3.Connection, name: str, spec: str | None) -> dict | None:
    resolved = resolve_version(conn, name, spec)
    if resolved is None:
        return None
    rows = _rows(conn, """SELECT av.id, av.version, av.manifest, av.manifest_digest, av.metadata,
                                 av.size_bytes, av.producer_run_id, av.producer_run_name,
                                 av.created_at, a.name, a.type, a.description
                          FROM artifact_versions av JOIN artifacts a ON a.id = av.artifact_id
                          WHERE av.id = ?""", (resolved["version_id"],))
    if not rows:
        return None
    row = rows[0]
    aliases = _rows(conn, "SELECT alias FROM artifact_aliases WHERE artifact_version_id = ?",
                    (resolved["version_id"],)) or []
    return {"artifact_id": resolved["artifact_id"], "version_id": int(row["id"]),
            "version": resolved["version"], "name": row["name"], "type": row["type"],
            "description": row["description"], "manifest": _loads(row["manifest"]),
            "manifest_digest": row["manifest_digest"], "metadata": _loads(row["metadata"]),
            "size_bytes": _int(row["size_bytes"]), "producer_run_id": row["producer_run_id"],
            "producer_run_name": row["producer_run_name"], "created_at": row["created_at"],
            "aliases": [r["alias"] for r in aliases]}


def manifest_files(manifest: Any) -> list[dict[str, Any]]:
    """A stored manifest's entries as a page lists them: `path` as text, `size` an integer or
    None, `digest` text or None, `ref` text for references; entries that are not objects are
    left out (a manifest trackio did not write can hold anything)."""
    if not isinstance(manifest, list):
        return []
    files = []
    for entry in manifest:
        if not isinstance(entry, dict):
            continue
        digest = entry.get("digest")
        item = {"path": str(entry.get("path")), "size": _int(entry.get("size")),
                "digest": digest if isinstance(digest, str) else None}
        if "ref" in entry:
            item["ref"] = str(entry["ref"])
        files.append(item)
    return files


def consumers(conn: sqlite3.Connection, project: str, version_id: int) -> list[dict[str, Any]]:
    has_project = _has_column(conn, "run_artifact_links", "run_project")
    rows = _rows(conn, f"SELECT run_name, run_id, {'run_project' if has_project else 'NULL'} AS rp, "
                       "created_at FROM run_artifact_links WHERE artifact_version_id = ? AND "
                       "direction = 'input' ORDER BY created_at", (version_id,))
    return [{"run_name": r["run_name"], "run_id": r["run_id"], "project": r["rp"] or project,
             "created_at": r["created_at"]} for r in rows or []]


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return column in {row[1] for row in storage.read(conn, f"PRAGMA table_info({table})")}


def _metrics_keyed(conn: sqlite3.Connection) -> bool:
    return _has_column(conn, "metrics", "run_id")


class _Identities:
    """Trackio's folding of artifact-link run identities onto run records: a link row belongs
    to its run id when that id is a run; otherwise to the one run of that name, if only one."""

    def __init__(self, conn: sqlite3.Connection, pairs: set[tuple[Any, Any]]) -> None:
        self.legacy = not _metrics_keyed(conn)
        self.record_ids: set[Any] = set()
        self.ids_by_name: dict[Any, set[Any]] = {}
        if self.legacy or not pairs:
            return
        names = {n for _, n in pairs if n is not None}
        ids = {i for i, _ in pairs if i is not None}
        metric_names: set[Any] = set()
        # One pass over the metrics table: it has no index on run names, so a query per chunk
        # of names would scan it once per chunk.
        for run_id, run_name in storage.read(conn, "SELECT DISTINCT run_id, run_name FROM metrics"):
            if run_name not in names and run_id not in ids:
                continue
            if run_name is not None:
                metric_names.add(run_name)
            if run_id is not None:
                self.record_ids.add(run_id)
                if run_name is not None:
                    self.ids_by_name.setdefault(run_name, set()).add(run_id)
        metric_ids = set(self.record_ids)
        for run_id, run_name in pairs:
            if run_id is None or run_name is None:
                continue
            if run_name in metric_names or run_id in metric_ids:
                continue
            self.record_ids.add(run_id)
            self.ids_by_name.setdefault(run_name, set()).add(run_id)

    def run_id(self, run_id: Any, run_name: Any) -> Any:
        if self.legacy:
            return None
        if run_id is not None and run_id in self.record_ids:
            return run_id
        owners = self.ids_by_name.get(run_name, ())
        return next(iter(owners)) if len(owners) == 1 else None


def _link_only_runs(conn: sqlite3.Connection) -> set[tuple[Any, Any]]:
    """(run_id, run_name) of runs known only from artifact links (trackio lists them as runs)."""
    rows = storage.read(conn, """SELECT DISTINCT l.run_id, l.run_name FROM run_artifact_links l
        WHERE l.run_id IS NOT NULL AND l.run_name IS NOT NULL
          AND l.run_name NOT IN (SELECT run_name FROM metrics WHERE run_name IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = l.run_id)""")
    return set(rows)


def run_artifacts(conn: sqlite3.Connection, project: str, run_name: str | None,
                  run_id: str | None) -> dict[str, list[dict[str, Any]]]:
    """A run's input and output artifact versions (links of this project and external ones)."""
    result: dict[str, list[dict[str, Any]]] = {"input": [], "output": []}
    has_project = _has_column(conn, "run_artifact_links", "run_project")
    links = _rows(conn, "SELECT run_id, run_name, artifact_version_id, direction, created_at, "
                        f"{'run_project' if has_project else 'NULL'} AS run_project "
                        "FROM run_artifact_links")
    if links is None:
        return result
    if not _metrics_keyed(conn):
        name = run_name if run_name is not None else run_id
        if name is None:
            return result

        def matches(row: sqlite3.Row) -> bool:
            return row["run_name"] == name
    else:
        column, value = "run_id", run_id
        if run_id is None:
            latest = storage.read(conn, "SELECT run_id FROM metrics WHERE run_name = ? GROUP BY "
                                        "run_id ORDER BY MIN(timestamp) DESC LIMIT 1",
                                  (run_name,)) if run_name is not None else []
            column, value = ("run_id", latest[0][0]) if latest else ("run_name", run_name)
        if value is None:
            return result
        fold, valid = False, set()
        if column == "run_id" and run_name is not None:
            # Orphan rows (no or unknown run id) of the same name belong to this run when it
            # is the only run of that name.
            link_only = _link_only_runs(conn)
            same_name = {rid for (rid,) in storage.read(
                conn, "SELECT DISTINCT run_id FROM metrics WHERE run_name = ?", (run_name,))}
            same_name |= {rid for rid, name in link_only if name == run_name}
            fold = same_name == {value}
            if fold:
                valid = {rid for (rid,) in storage.read(
                    conn, "SELECT DISTINCT run_id FROM metrics WHERE run_id IS NOT NULL")}
                valid |= {rid for rid, _ in link_only}

        def matches(row: sqlite3.Row) -> bool:
            if row[column] == value:
                return True
            return fold and row["run_name"] == run_name and (
                row["run_id"] is None or row["run_id"] not in valid)
    chosen: dict[tuple[str, int], Any] = {}
    for row in links:
        if row["run_project"] not in (None, project) or not matches(row):
            continue
        version_id = _int(row["artifact_version_id"])
        if version_id is None:
            continue
        key = (row["direction"], version_id)
        stamp = row["created_at"]
        if key not in chosen or _order(stamp) < _order(chosen[key]):
            chosen[key] = stamp
    versions = _version_rows(conn, {version for _, version in chosen})
    for (direction, version), stamp in sorted(chosen.items(), key=lambda i: _order(i[1])):
        info = versions.get(version)
        if info is not None and direction in result:
            result[direction].append({"version_id": version, "project": project,
                                      "name": info["name"], "type": info["type"],
                                      "version": info["version"],
                                      "size_bytes": info["size_bytes"], "created_at": stamp})
    if run_id is not None or run_name is not None:
        external = _rows(conn, f"""SELECT direction, MIN(created_at) AS created_at,
                                    source_project, source_version_id, source_artifact,
                                    source_type, source_version, source_size_bytes
                                    FROM external_run_artifact_links
                                    WHERE {'run_id' if run_id is not None else 'run_name'} = ?
                                    GROUP BY direction, source_project, source_version_id
                                    ORDER BY created_at""",
                         (run_id if run_id is not None else run_name,)) or []
        for row in external:
            version_id, number = _int(row["source_version_id"]), _int(row["source_version"])
            if row["direction"] in result and version_id is not None and number is not None:
                result[row["direction"]].append({
                    "version_id": version_id,
                    "project": row["source_project"], "name": row["source_artifact"],
                    "type": row["source_type"], "version": number,
                    "size_bytes": _int(row["source_size_bytes"]),
                    "created_at": row["created_at"]})
    for direction in result:
        result[direction].sort(key=lambda item: _order(item["created_at"]))
    return result


def _version_rows(conn: sqlite3.Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    values = sorted(ids)
    for start in range(0, len(values), 500):
        chunk = values[start:start + 500]
        for row in _rows(conn, f"""SELECT av.id, av.version, av.size_bytes, av.created_at,
                                   av.producer_run_id, av.producer_run_name,
                                   {_FILE_COUNT.replace("manifest", "av.manifest")}, a.name, a.type
                                   FROM artifact_versions av JOIN artifacts a
                                   ON a.id = av.artifact_id
                                   WHERE av.id IN ({','.join('?' * len(chunk))})""",
                         tuple(chunk)) or []:
            if _int(row["version"]) is None:
                continue
            found[int(row["id"])] = {"version": _int(row["version"]), "name": row["name"],
                                     "type": row["type"], "size_bytes": _int(row["size_bytes"]),
                                     "num_files": _int(row["n"]) or 0,
                                     "created_at": row["created_at"],
                                     "producer_run_id": row["producer_run_id"],
                                     "producer_run_name": row["producer_run_name"]}
    return found


def run_artifact_counts(conn: sqlite3.Connection, project: str) -> list[dict[str, Any]]:
    has_project = _has_column(conn, "run_artifact_links", "run_project")
    rows = _rows(conn, "SELECT DISTINCT run_id, run_name, artifact_version_id, direction FROM "
                       "run_artifact_links" + (" WHERE run_project IS NULL OR run_project = ?"
                                               if has_project else ""),
                 (project,) if has_project else ())
    if rows is None:
        return []
    links = [(r["run_id"], r["run_name"], project, r["artifact_version_id"], r["direction"])
             for r in rows]
    external = _rows(conn, "SELECT DISTINCT run_id, run_name, source_project, "
                           "source_version_id, direction FROM external_run_artifact_links") or []
    links += [(r["run_id"], r["run_name"], r["source_project"], r["source_version_id"],
               r["direction"]) for r in external]
    identities = _Identities(conn, {(run_id, name) for run_id, name, *_ in links})
    counts: dict[tuple, dict[str, Any]] = {}
    seen: dict[tuple, set] = {}
    for run_id, name, owner, version, direction in links:
        canonical = identities.run_id(run_id, name)
        key = (canonical, name)
        entry = counts.setdefault(key, {"run_id": canonical, "run_name": name, "input": 0,
                                        "output": 0})
        link = (owner, version, direction)
        if link in seen.setdefault(key, set()):
            continue
        seen[key].add(link)
        if direction in ("input", "output"):
            entry[direction] += 1
    return list(counts.values())


def lineage(conn: sqlite3.Connection, project: str, version_id: int) -> dict[str, Any]:
    """The connected run/artifact-version graph around `version_id`, trackio's shape and budgets
    (nodes 1000, edges 5000, link rows 10,000; `truncated` says a budget stopped the walk)."""
    focus = f"art:{version_id}"
    empty = {"focus": focus, "truncated": False, "nodes": [], "edges": []}
    has_project = _has_column(conn, "run_artifact_links", "run_project")
    rows = _rows(conn, "SELECT id, run_id, run_name, "
                       f"{'run_project' if has_project else 'NULL'} AS run_project, "
                       "artifact_version_id, direction, created_at FROM run_artifact_links "
                       "WHERE direction IN ('input', 'output') ORDER BY id LIMIT ?",
                 (MAX_LINEAGE_LINKS + 1,))
    if rows is None:
        return empty
    truncated = len(rows) > MAX_LINEAGE_LINKS
    rows = rows[:MAX_LINEAGE_LINKS]
    identities = _Identities(conn, {(r["run_id"], r["run_name"]) for r in rows})

    def run_key(row: sqlite3.Row) -> tuple[str, Any]:
        canonical = identities.run_id(row["run_id"], row["run_name"])
        return (f"run:{canonical}" if canonical is not None else f"run:name:{row['run_name']}",
                canonical)

    by_version: dict[int, list[sqlite3.Row]] = {}
    by_run: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        if _int(row["artifact_version_id"]) is None:
            continue
        by_version.setdefault(_int(row["artifact_version_id"]), []).append(row)
        by_run.setdefault(run_key(row)[0], []).append(row)
    nodes, edges, run_meta = {focus}, {}, {}
    frontier, done_versions, done_runs = {version_id}, set(), set()
    stop = False
    while frontier and not stop:
        stage = []
        for version in sorted(frontier - done_versions):
            done_versions.add(version)
            for row in by_version.get(version, []):
                key = run_key(row)[0]
                if key not in done_runs:
                    done_runs.add(key)
                    stage.extend(by_run[key])
        frontier = set()
        for row in sorted({r["id"]: r for r in stage}.values(),
                          key=lambda r: (_order(r["created_at"]), r["id"])):
            key, canonical = run_key(row)
            art = int(row["artifact_version_id"])
            art_key = f"art:{art}"
            new = {k for k in (key, art_key) if k not in nodes}
            if len(nodes) + len(new) > MAX_LINEAGE_NODES:
                truncated = stop = True
                break
            edge = (key, art_key, "output") if row["direction"] == "output" else \
                (art_key, key, "input")
            if edge not in edges and len(edges) >= MAX_LINEAGE_EDGES:
                truncated = stop = True
                break
            nodes |= new
            if art not in done_versions:
                frontier.add(art)
            stamp = row["created_at"]
            meta = run_meta.get(key)
            if meta is None or _order(stamp) < _order(meta["created_at"]):
                run_meta[key] = {"run_id": canonical, "run_name": row["run_name"],
                                 "project": row["run_project"] or project, "created_at": stamp}
            if edge not in edges or _order(stamp) < _order(edges[edge]):
                edges[edge] = stamp
    versions = _version_rows(conn, {int(n[4:]) for n in nodes if n.startswith("art:")})
    if version_id not in versions:
        return empty
    aliases: dict[int, list[str]] = {}
    for row in _rows(conn, "SELECT artifact_version_id, alias FROM artifact_aliases "
                           "ORDER BY alias") or []:
        if _int(row["artifact_version_id"]) in versions:
            aliases.setdefault(_int(row["artifact_version_id"]), []).append(row["alias"])
    kept = {f"art:{v}" for v in versions} | (set(run_meta) & nodes)
    out_nodes: list[dict[str, Any]] = [
        {"id": f"art:{v}", "kind": "artifact", "version_id": v, "artifact_name": info["name"],
         "artifact_type": info["type"], "version": info["version"],
         "aliases": aliases.get(v, []), "size_bytes": info["size_bytes"],
         "num_files": info["num_files"], "created_at": info["created_at"],
         "producer_run_id": info["producer_run_id"],
         "producer_run_name": info["producer_run_name"]}
        for v, info in sorted(versions.items())]
    for key in sorted(set(run_meta) & nodes):
        meta = run_meta[key]
        node = {"id": key, "kind": "run", "run_id": meta["run_id"],
                "run_name": meta["run_name"], "created_at": meta["created_at"]}
        if meta["project"] != project:
            node["project"] = meta["project"]
        out_nodes.append(node)
    out_edges = [{"source": s, "target": t, "direction": d, "created_at": stamp}
                 for (s, t, d), stamp in sorted(edges.items(),
                                                key=lambda i: (_order(i[1]), *i[0]))
                 if s in kept and t in kept]
    return {"focus": focus, "truncated": truncated, "nodes": out_nodes, "edges": out_edges}


REGISTRY_PREFIX = "registry-"
REGISTRY_NAME = re.compile(r"[A-Za-z0-9_-]+")


def validate_registry_name(name: Any) -> str:
    if not isinstance(name, str) or not REGISTRY_NAME.fullmatch(name):
        raise ArtifactError(f"Registry name {name!r} must match ^[A-Za-z0-9_-]+$ "
                            "(letters, digits, underscore, hyphen).")
    return name


def _metadata(conn: sqlite3.Connection, key: str) -> Any:
    rows = _rows(conn, "SELECT value FROM project_metadata WHERE key = ?", (key,))
    return rows[0]["value"] if rows else None


def registry_record(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """A local registry (`registry-<name>.db`): None until its creation marker is written."""
    created_at = _metadata(conn, "registry_created_at")
    if created_at is None:
        return None
    return {"name": name, "description": _metadata(conn, "registry_description"),
            "created_at": created_at}


def list_registries(data_dir: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(Path(data_dir).glob(f"{REGISTRY_PREFIX}*.db")):
        name = path.stem[len(REGISTRY_PREFIX):]
        if not REGISTRY_NAME.fullmatch(name) or not storage.PROJECT_NAME.fullmatch(path.stem):
            continue
        try:
            conn = storage.open_readonly(path)
        except (storage.ProjectNotFound, storage.UnreadableDatabase, storage.StorageBusy):
            continue
        try:
            record = registry_record(conn, name)
        finally:
            conn.close()
        if record is not None:
            found.append(record)
    return found


def _collection_links(conn: sqlite3.Connection, limit: int | None
                      ) -> dict[int, list[dict[str, Any]]]:
    """Each collection's links, newest version first (at most `limit` per collection)."""
    links = _rows(conn, """SELECT * FROM (SELECT id, collection_id, collection_version,
                           source_project, source_artifact, source_version, source_space_id,
                           source_bucket_id, source_server_base_url, created_at,
                           ROW_NUMBER() OVER (PARTITION BY collection_id
                                              ORDER BY collection_version DESC) AS rank
                           FROM collection_links) WHERE ?1 IS NULL OR rank <= ?1
                           ORDER BY collection_id, collection_version DESC""", (limit,)) or []
    aliases: dict[int, list[str]] = {}
    for row in _rows(conn, "SELECT alias, link_id FROM collection_aliases") or []:
        aliases.setdefault(_int(row["link_id"]), []).append(row["alias"])
    grouped: dict[int, list[dict[str, Any]]] = {}
    for link in links:
        numbers = (_int(link["collection_id"]), _int(link["collection_version"]),
                   _int(link["source_version"]))
        if None in numbers:
            continue
        grouped.setdefault(numbers[0], []).append({
            "collection_version": numbers[1],
            "source_project": link["source_project"],
            "source_artifact": link["source_artifact"],
            "source_version": numbers[2],
            "source_space_id": link["source_space_id"],
            "source_bucket_id": link["source_bucket_id"],
            "source_server_base_url": link["source_server_base_url"],
            "aliases": sorted(aliases.get(int(link["id"]), []), key=str),
            "created_at": link["created_at"]})
    return grouped


def registry_details(conn: sqlite3.Connection, record: dict[str, Any],
                     limit: int | None = None) -> dict[str, Any]:
    """A registry with its collections (type, then name) and its event log (oldest first).

    With `limit` (a page, not trackio's API): the first `limit` collections, the newest `limit`
    links of each and the newest `limit` events, with `num_collections` and `num_events`
    counting them all (`num_links` always counts every link).
    """
    bound = -1 if limit is None else limit  # SQLite: LIMIT -1 is no limit
    collections = []
    links = _collection_links(conn, limit)
    counts = {_int(row[0]): row[1] for row in _rows(
        conn, "SELECT collection_id, COUNT(*) FROM collection_links GROUP BY collection_id") or []}
    for row in _rows(conn, "SELECT id, name, type, description, created_at FROM collections "
                           "ORDER BY type, name LIMIT ?", (bound,)) or []:
        found = links.get(int(row["id"]), [])
        collections.append({"name": row["name"], "type": row["type"],
                            "description": row["description"], "created_at": row["created_at"],
                            "num_links": counts.get(int(row["id"]), 0),
                            "latest_version": found[0]["collection_version"] if found else None,
                            "links": found})
    events = [{"id": int(row["id"]), "event_uid": row["event_uid"], "ts": row["ts"],
               "kind": row["kind"], "payload": _loads(row["payload"])}
              for row in reversed(_rows(conn, "SELECT id, event_uid, ts, kind, payload FROM "
                                              "registry_events ORDER BY id DESC LIMIT ?",
                                        (bound,)) or [])]
    details = {**record, "bucket_id": None, "collections": collections, "events": events}
    if limit is not None:
        for name, table in (("num_collections", "collections"), ("num_events", "registry_events")):
            details[name] = (_rows(conn, f"SELECT COUNT(*) FROM {table}") or [[0]])[0][0]
    return details
