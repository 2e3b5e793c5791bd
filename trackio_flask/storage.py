"""Read Trackio's per-project SQLite files, every schema era, read-only. No Flask here."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

PROJECT_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
DB_SUFFIX = ".db"


class InvalidProjectName(ValueError):
    """A project name that could not be a Trackio database file name."""


class ProjectNotFound(LookupError):
    """No database exists for that project."""


class StorageBusy(RuntimeError):
    """The database cannot be read right now (locked, or a crashed writer left a hot journal)."""


class UnreadableDatabase(RuntimeError):
    """The file is not a SQLite database we can read."""


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    path: Path
    modified: float
    error: str | None


@dataclass(frozen=True)
class Schema:
    """Which run key each table uses: `run_id` since Trackio 0.24, `run_name` before."""

    metrics_key: str | None
    system_key: str | None
    configs_key: str | None
    alerts_key: str | None = None  # no alerts table before trackio added alerts


def validate_project_name(project: str) -> str:
    """Return the name if it can only name a file inside the data dir, else raise."""
    if not isinstance(project, str) or not PROJECT_NAME.fullmatch(project):
        raise InvalidProjectName(
            "project names may use letters, digits, '_' and '-' only (at most 128)"
        )
    return project


def db_path(data_dir: Path, project: str) -> Path:
    """Return the database path of a validated project name."""
    return Path(data_dir) / f"{validate_project_name(project)}{DB_SUFFIX}"


def existing_db_path(data_dir: Path, project: str) -> Path:
    """Return the database path, raising ProjectNotFound when there is no such file."""
    path = db_path(data_dir, project)
    if not path.is_file():
        raise ProjectNotFound(project)
    return path


def open_readonly(path: Path, timeout: float = 2.0) -> sqlite3.Connection:
    """Open a database read-only; never create, migrate or lock it for writing.

    A hot journal left by a writer that died in DELETE mode is rolled back first, as any
    read-write opener would (a read-only one cannot, and would answer "busy" forever).
    """
    try:
        return _open_readonly(path, timeout)
    except StorageBusy:
        if not recover_hot_journal(path):
            raise
    return _open_readonly(path, timeout)


def _open_readonly(path: Path, timeout: float) -> sqlite3.Connection:
    if not path.is_file():
        raise ProjectNotFound(path.stem)
    uri = f"file:{quote(str(path))}?mode=ro"
    conn = None
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise _classify(exc, path) from exc
    return conn


def recover_hot_journal(path: Path) -> bool:
    """Roll back the rollback journal a killed or failed writer left beside `path`; True when
    a read-write opener could read the file afterwards (SQLite does the rollback itself)."""
    if not os.path.exists(f"{path}-journal"):
        return False
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=0.2)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return True


def sqlite_problem(exc: sqlite3.Error) -> str:
    """Name what went wrong: busy, full, readonly, cantopen, notadb or other (one place for all)."""
    name = getattr(exc, "sqlite_errorname", "") or ""  # Python 3.11+
    message = str(exc).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in message \
            or "busy" in message:
        return "busy"
    if name.startswith("SQLITE_FULL") or "disk is full" in message:
        return "full"
    if name.startswith("SQLITE_READONLY") or "readonly" in message or "read-only" in message:
        return "readonly"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in message:
        return "cantopen"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in message \
            or "malformed" in message:
        return "notadb"
    return "other"


def _classify(exc: sqlite3.DatabaseError, path: Path | None = None) -> Exception:
    problem = sqlite_problem(exc)
    if path is not None and problem in ("readonly", "cantopen") and _wal_without_shm(path):
        return UnreadableDatabase(
            f"{path.name} is in WAL mode and has no -shm file, and SQLite cannot create one "
            "(read-only folder), so it cannot open it; make the folder writable for this server or "
            "switch the file to DELETE journal mode (PRAGMA journal_mode=DELETE)")
    # A read-only opener cannot roll back a hot journal left by a killed DELETE-mode writer,
    # and a locked file is transient: both are "try again", not "broken".
    if problem in ("busy", "readonly", "cantopen"):
        return StorageBusy(str(exc))
    return UnreadableDatabase(str(exc))


def _wal_without_shm(path: Path) -> bool:
    """A WAL database (header bytes 18-19 = 2) whose -shm file is missing."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return (len(header) == 20 and header[18] == 2 and header[19] == 2
            and not os.path.exists(f"{path}-shm"))


def read(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[tuple]:
    """Run one read statement, mapping SQLite errors to storage errors."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.DatabaseError as exc:
        raise _classify(exc) from exc


def list_projects(data_dir: Path) -> list[ProjectInfo]:
    """List `*.db` projects in the data dir (skipping Trackio registries), noting unreadable ones."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    projects = []
    for path in sorted(data_dir.glob(f"*{DB_SUFFIX}")):
        name = path.stem
        if name.startswith("registry-") or not PROJECT_NAME.fullmatch(name):
            continue
        error = None
        try:
            conn = open_readonly(path)
            try:
                tables = table_names(conn)
            finally:
                conn.close()
            if tables and "metrics" not in tables:
                error = "not a Trackio database (no metrics table)"
        except UnreadableDatabase as exc:
            error = f"unreadable: {exc}"
        except StorageBusy:
            error = None  # busy now, readable later
        except ProjectNotFound:
            continue
        projects.append(ProjectInfo(name, path, path.stat().st_mtime, error))
    return projects


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in read(conn, "SELECT name FROM sqlite_master WHERE type='table'")}


def detect_schema(conn: sqlite3.Connection) -> Schema:
    """Detect per table whether rows are keyed by run_id or only by run_name."""

    def key_of(table: str) -> str | None:
        columns = {row[1] for row in read(conn, f"PRAGMA table_info({table})")}
        if not columns:
            return None
        return "run_id" if "run_id" in columns else "run_name"

    return Schema(key_of("metrics"), key_of("system_metrics"), key_of("configs"),
                  key_of("alerts"))


def metric_rows(conn: sqlite3.Connection, schema: Schema, since_id: int = 0,
                run_keys: tuple[str, ...] | None = None, limit: int = -1) -> list[tuple]:
    """Return (id, run_key, run_name, timestamp, step, payload) rows with id > since_id, by id."""
    if schema.metrics_key is None:
        return []
    sql = (f"SELECT id, {schema.metrics_key}, run_name, timestamp, step, metrics "
           f"FROM metrics WHERE id > ?")
    params: tuple = (since_id,)
    if run_keys is not None:
        sql += f" AND {schema.metrics_key} IN ({','.join('?' * len(run_keys))})"
        params += tuple(run_keys)
    return read(conn, sql + " ORDER BY id LIMIT ?", params + (limit,))


def last_id(conn: sqlite3.Connection, schema: Schema) -> int:
    """The largest metrics row id (0 when empty): an index lookup, for progress reports."""
    if schema.metrics_key is None:
        return 0
    return int(read(conn, "SELECT COALESCE(MAX(id), 0) FROM metrics")[0][0])


def alert_rows(conn: sqlite3.Connection, schema: Schema, since_id: int = 0) -> list[tuple]:
    """Return (id, run_key, run_name, timestamp, title, text, level, step) alerts after since_id."""
    if schema.alerts_key is None:
        return []
    return read(conn, f"SELECT id, {schema.alerts_key}, run_name, timestamp, title, text, level, "
                      f"step FROM alerts WHERE id > ? ORDER BY id", (since_id,))


def system_rows(conn: sqlite3.Connection, schema: Schema, since_id: int = 0,
                limit: int = -1) -> list[tuple]:
    """Return (id, run_key, run_name, timestamp, payload) system rows with id > since_id."""
    if schema.system_key is None:
        return []
    return read(conn, f"SELECT id, {schema.system_key}, run_name, timestamp, metrics "
                      f"FROM system_metrics WHERE id > ? ORDER BY id LIMIT ?", (since_id, limit))


def row_signature(conn: sqlite3.Connection, schema: Schema, table: str, row_id: int) -> str:
    """Text naming the run, name, time and step of one metrics/system row ("" when it is gone),
    so a derived copy can tell whether the row it stopped at is still the same row."""
    key = schema.metrics_key if table == "metrics" else schema.system_key
    if key is None or row_id <= 0:
        return ""
    step = "step" if table == "metrics" else "NULL"
    rows = read(conn, f"SELECT {key}, run_name, timestamp, {step} FROM {table} WHERE id = ?",
                (row_id,))
    return repr(rows[0]) if rows else ""


def snapshot(conn: sqlite3.Connection) -> None:
    """Start a read transaction, so several reads see one committed state."""
    read(conn, "BEGIN")
    read(conn, "SELECT 1 FROM sqlite_master LIMIT 1")


def config_rows(conn: sqlite3.Connection, schema: Schema) -> list[tuple]:
    """Return (run_key, run_name, config payload, created_at) for every run with a config."""
    if schema.configs_key is None:
        return []
    return read(conn, f"SELECT {schema.configs_key}, run_name, config, created_at "
                      f"FROM configs ORDER BY id")


def row_count(conn: sqlite3.Connection, table: str) -> int:
    """Return the number of rows of a table, 0 when it does not exist."""
    if table not in table_names(conn):
        return 0
    return int(read(conn, f"SELECT COUNT(*) FROM {table}")[0][0])


def version(path: Path) -> str:
    """Return a token that changes whenever a committed write changes the database.

    Combines file identity (inode, size, mtime_ns) with bytes SQLite rewrites on every commit
    whatever the clock says: the db header (its change counter moves in rollback-journal modes),
    the WAL header (new salts on every WAL restart) and the wal-index header's last frame and
    salts in -shm (moved by every WAL commit, also when the -wal file keeps its size). Readers
    rewrite other -shm bytes and create an empty -wal, so only these fields count, and an empty
    WAL counts as no WAL.
    """
    digest = hashlib.blake2b(digest_size=8)
    _hash_file(digest, f"{path}", 100)
    try:
        wal = os.stat(f"{path}-wal")
    except FileNotFoundError:
        wal = None
    if wal is not None and wal.st_size > 0:
        _hash_file(digest, f"{path}-wal", 32)
        try:
            with open(f"{path}-shm", "rb") as handle:
                header = handle.read(48)
            digest.update(header[16:24] + header[32:40])
        except OSError:
            digest.update(b"no-shm")
    return digest.hexdigest()


def _hash_file(digest, target: str, header_bytes: int) -> None:
    try:
        stat = os.stat(target)
        with open(target, "rb") as handle:
            header = handle.read(header_bytes)
    except OSError:
        digest.update(b"-")
        return
    digest.update(f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update(header)
