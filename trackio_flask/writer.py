"""Write rows in Trackio's current schema, one IMMEDIATE transaction per batch. No Flask here."""

from __future__ import annotations

import itertools
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .storage import recover_hot_journal, sqlite_problem

# Trackio's schema version 2 (run_id on every run-scoped table); trackio skips its migrations
# for files that already report it.
TRACKIO_SCHEMA_VERSION = 2

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, timestamp TEXT NOT NULL,
        run_name TEXT NOT NULL, step INTEGER NOT NULL, metrics TEXT NOT NULL,
        log_id TEXT, space_id TEXT)""",
    "CREATE INDEX IF NOT EXISTS idx_metrics_run_step ON metrics(run_id, step)",
    "CREATE INDEX IF NOT EXISTS idx_metrics_run_timestamp ON metrics(run_id, timestamp)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_metrics_log_id ON metrics(log_id) "
    "WHERE log_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS idx_metrics_pending ON metrics(space_id) "
    "WHERE space_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS idx_metrics_run_record ON metrics(run_id, run_name, timestamp)",
    """CREATE TABLE IF NOT EXISTS configs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, run_name TEXT NOT NULL,
        config TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE(run_id))""",
    "CREATE INDEX IF NOT EXISTS idx_configs_run_name ON configs(run_name)",
    """CREATE TABLE IF NOT EXISTS system_metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, timestamp TEXT NOT NULL,
        run_name TEXT NOT NULL, metrics TEXT NOT NULL, log_id TEXT, space_id TEXT)""",
    "CREATE INDEX IF NOT EXISTS idx_system_metrics_run_timestamp "
    "ON system_metrics(run_id, timestamp)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_system_metrics_log_id ON system_metrics(log_id) "
    "WHERE log_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS idx_system_metrics_pending ON system_metrics(space_id) "
    "WHERE space_id IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, timestamp TEXT NOT NULL,
        run_name TEXT NOT NULL, title TEXT NOT NULL, text TEXT,
        level TEXT NOT NULL DEFAULT 'warn', step INTEGER, alert_id TEXT)""",
    "CREATE INDEX IF NOT EXISTS idx_alerts_run ON alerts(run_id)",
    "CREATE INDEX IF NOT EXISTS idx_alerts_timestamp ON alerts(timestamp)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_alerts_alert_id ON alerts(alert_id) "
    "WHERE alert_id IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS project_metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# Created when the first trace arrives (trackio keeps trackio.Trace values in their own table).
TRACES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS traces (
        id TEXT PRIMARY KEY, run_id TEXT NOT NULL, timestamp TEXT NOT NULL,
        run_name TEXT NOT NULL, step INTEGER NOT NULL, key TEXT NOT NULL, trace_index INTEGER,
        messages TEXT NOT NULL, metadata TEXT NOT NULL, search_text TEXT NOT NULL,
        log_id TEXT, space_id TEXT, spans TEXT NOT NULL DEFAULT '[]')""",
    "CREATE INDEX IF NOT EXISTS idx_traces_run_step ON traces(run_id, step)",
    "CREATE INDEX IF NOT EXISTS idx_traces_run_timestamp ON traces(run_id, timestamp)",
    "CREATE INDEX IF NOT EXISTS idx_traces_search ON traces(search_text)",
)


# Trackio's artifact tables, created with the first artifact (names, versions, aliases, links).
ARTIFACT_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS artifacts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
        description TEXT, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS artifact_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        artifact_id INTEGER NOT NULL REFERENCES artifacts(id), version INTEGER NOT NULL,
        manifest_digest TEXT NOT NULL, manifest TEXT NOT NULL, metadata TEXT,
        size_bytes INTEGER NOT NULL, producer_run_id TEXT, producer_run_name TEXT,
        created_at TEXT NOT NULL, UNIQUE(artifact_id, version),
        UNIQUE(artifact_id, manifest_digest))""",
    """CREATE TABLE IF NOT EXISTS artifact_aliases (
        artifact_id INTEGER NOT NULL REFERENCES artifacts(id), alias TEXT NOT NULL,
        artifact_version_id INTEGER NOT NULL REFERENCES artifact_versions(id),
        PRIMARY KEY (artifact_id, alias))""",
    """CREATE TABLE IF NOT EXISTS run_artifact_links (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, run_name TEXT, run_project TEXT,
        artifact_version_id INTEGER NOT NULL REFERENCES artifact_versions(id),
        direction TEXT NOT NULL CHECK(direction IN ('input', 'output')),
        created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS external_run_artifact_links (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, run_name TEXT,
        source_project TEXT NOT NULL, source_version_id INTEGER NOT NULL,
        source_artifact TEXT NOT NULL, source_type TEXT NOT NULL,
        source_version INTEGER NOT NULL, source_size_bytes INTEGER NOT NULL,
        direction TEXT NOT NULL CHECK(direction IN ('input', 'output')),
        created_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS idx_run_artifact_links_run ON run_artifact_links(run_id, run_name)",
    "CREATE INDEX IF NOT EXISTS idx_run_artifact_links_name "
    "ON run_artifact_links(run_name, run_id)",
    "CREATE INDEX IF NOT EXISTS idx_run_artifact_links_version "
    "ON run_artifact_links(artifact_version_id)",
)
ARTIFACT_LINK_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_run_artifact_links_unique ON run_artifact_links("
    "COALESCE(run_project, ''), COALESCE(run_id, ''), COALESCE(run_name, ''), "
    "artifact_version_id, direction)",
    "CREATE INDEX IF NOT EXISTS idx_run_artifact_links_project_run "
    "ON run_artifact_links(run_project, run_id, run_name)",
    "CREATE INDEX IF NOT EXISTS idx_external_artifact_links_run "
    "ON external_run_artifact_links(run_id, run_name)",
)
VERSION_ALIAS = re.compile(r"v\d+")


class WriteRefused(ValueError):
    """A write the data forbids (e.g. relogging an artifact with another type)."""


INDEX_TARGET = re.compile(r"CREATE (?:UNIQUE )?INDEX IF NOT EXISTS \w+\s+ON (\w+)\s*\(([^)]*)\)",
                          re.IGNORECASE)


class DatabaseBusy(RuntimeError):
    """The database stayed locked for longer than the busy timeout."""


class StorageFull(RuntimeError):
    """The disk (or SQLite's page limit) is full; the transaction was rolled back."""


class CannotWrite(RuntimeError):
    """The project file cannot take writes: not a database, not a regular file, or read-only."""


def _write_error(exc: sqlite3.Error, path: Path) -> Exception:
    """The exception a failed write becomes, by what SQLite says went wrong."""
    problem = sqlite_problem(exc)
    if problem == "busy":
        return DatabaseBusy(str(exc))
    if problem == "full":
        return StorageFull(str(exc))
    if problem in ("readonly", "cantopen"):
        return CannotWrite(f"{path.name} cannot be written here (read-only or unreachable "
                           f"storage: {exc})")
    if problem == "notadb":
        return CannotWrite(f"{path.name} exists but is not a SQLite database")
    return CannotWrite(f"SQLite refused the write to {path.name}: {exc}")


@dataclass(frozen=True)
class MetricRow:
    run_id: str
    run_name: str
    timestamp: str
    step: int
    values: dict[str, Any]
    log_id: str | None


@dataclass(frozen=True)
class SystemRow:
    run_id: str
    run_name: str
    timestamp: str
    values: dict[str, Any]
    log_id: str | None


@dataclass(frozen=True)
class ConfigRow:
    run_id: str
    run_name: str
    config: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class AlertRow:
    run_id: str
    run_name: str
    timestamp: str
    title: str
    text: str | None
    level: str
    step: int | None
    alert_id: str | None


@dataclass(frozen=True)
class TraceRow:
    id: str
    run_id: str
    run_name: str
    timestamp: str
    step: int
    key: str
    trace_index: int | None
    messages: Any
    metadata: Any
    spans: Any
    search_text: str
    log_id: str | None


def encode_values(values: Any) -> Any:
    """Make values JSON-safe the way Trackio stores them: non-finite floats become strings."""
    if isinstance(values, dict):
        return {str(key): encode_values(item) for key, item in values.items()}
    if isinstance(values, list | tuple | set):
        return [encode_values(item) for item in values]
    if hasattr(values, "item") and callable(values.item) and getattr(values, "ndim", 0) == 0:
        values = values.item()  # numpy and torch scalars
    if isinstance(values, float) and not math.isfinite(values):
        if math.isnan(values):
            return "NaN"
        return "Infinity" if values > 0 else "-Infinity"
    return values


def _fallback(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return encode_values(value.tolist())
    return str(value)


def dumps(values: Any) -> bytes:
    """Serialise like Trackio (orjson bytes); unknown objects become their string, never an error."""
    return orjson.dumps(encode_values(values), default=_fallback)


def _check_target(path: Path) -> bool:
    """Refuse to write through links or into non-files; return whether the file exists."""
    if path.is_symlink():
        raise CannotWrite(f"{path.name} is a symbolic link; refusing to write through it")
    if os.path.lexists(path) and not path.is_file():
        raise CannotWrite(f"{path.name} exists but is not a regular file")
    return path.exists()


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`; None when there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _remove_new_file(path: Path) -> None:
    """Undo a failed first write: remove the table-less database we created and its side files."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                return  # someone else's tables arrived meanwhile: keep them
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # not even a readable header: nothing of value in it
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{path}{suffix}")
        except OSError:
            pass


class ProjectWriter:
    """One read-write connection to a project database, created in Trackio's schema if new."""

    def __init__(self, path: Path, journal_mode: str = "WAL", busy_timeout: float = 5.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CannotWrite(f"the data folder cannot be created ({exc.strerror})") from None
        existed = _check_target(path)
        try:
            self.conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None,
                                        check_same_thread=False)
        except sqlite3.Error as exc:
            raise _write_error(exc, path) from exc
        try:
            # The journal mode is chosen for files we create; an existing file keeps its own
            # (turning a DELETE-mode file into WAL rewrites its header behind its owner's back).
            self._prepare(None if existed else journal_mode, time.monotonic() + busy_timeout)
            self.identity = _identity(path)
        except sqlite3.Error as exc:
            self.conn.close()
            if not existed:
                _remove_new_file(path)
            raise _write_error(exc, path) from exc
        except BaseException:
            self.conn.close()
            if not existed:
                _remove_new_file(path)
            raise

    def _wait_at_most(self, deadline: float) -> None:
        """Let the next statement wait for locks only until `deadline` (one budget per open)."""
        remaining = max(0.0, deadline - time.monotonic())
        self.conn.execute(f"PRAGMA busy_timeout = {int(remaining * 1000)}")

    def _prepare(self, journal_mode: str | None, deadline: float) -> None:
        conn = self.conn
        self._wait_at_most(deadline)
        if journal_mode is not None \
                and conn.execute("PRAGMA journal_mode").fetchone()[0].upper() != journal_mode:
            self._wait_at_most(deadline)
            conn.execute(f"PRAGMA journal_mode = {journal_mode}")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._wait_at_most(deadline)
        conn.execute("BEGIN IMMEDIATE")
        try:
            existed = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'metrics'").fetchone() is not None
            for statement in SCHEMA:
                # Old run_name-only files keep their tables as they are: only missing tables,
                # and indexes over columns their tables have, are added.
                if not self._fits(statement):
                    continue
                conn.execute(statement)
            if not existed:
                conn.execute(f"PRAGMA user_version = {TRACKIO_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        self.columns = {table: self._columns_of(table)
                        for table in ("metrics", "system_metrics", "configs", "alerts", "traces")}
        self.keyed = {table: "run_id" in self.columns[table]
                      for table in ("metrics", "system_metrics", "configs", "alerts")}

    def _columns_of(self, table: str) -> set[str]:
        return {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}

    def _fits(self, statement: str) -> bool:
        """Whether an index statement names only columns its (possibly old) table has."""
        found = INDEX_TARGET.search(statement)
        if found is None:
            return True
        table, columns = found.group(1), found.group(2)
        existing = self._columns_of(table)
        return not existing or all(c.strip().split()[0] in existing for c in columns.split(","))

    def close(self) -> None:
        self.closed = True
        self.conn.close()

    def is_current(self) -> bool:
        """Whether this connection still writes the file at its path (not one deleted or
        replaced since it was opened, whose rows nobody would ever read)."""
        return not self.closed and _identity(self.path) == self.identity

    def _rollback(self) -> None:
        """Roll back if a transaction is open (SQLite ends some on its own, e.g. when full)."""
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the first error is the one worth reporting

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """One BEGIN IMMEDIATE transaction; SQLite errors become DatabaseBusy, StorageFull or
        CannotWrite, and nothing of the transaction stays."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _write_error(exc, self.path) from exc
        try:
            yield
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            error = _write_error(exc, self.path)
            if isinstance(error, StorageFull):
                # A rollback that could not finish leaves a hot journal that read-only
                # readers cannot undo: close, then roll it back as a new opener would.
                self.close()
                recover_hot_journal(self.path)
            raise error from exc
        except BaseException:
            self._rollback()
            raise

    def _insert(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple],
                verb: str = "INSERT OR IGNORE", suffix: str = "") -> None:
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return
        rows = itertools.chain((first,), rows)
        present = self.columns.get(table)
        if present is not None and not set(columns) <= present:
            # An older schema (run_name only, no log_id): store the columns it has.
            keep = [index for index, name in enumerate(columns) if name in present]
            columns = tuple(columns[index] for index in keep)
            rows = (tuple(row[index] for index in keep) for row in rows)
        marks = ", ".join("?" * len(columns))
        self.conn.executemany(
            f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}", rows)

    def write(self, *, metrics: Iterable[MetricRow] = (), system: Iterable[SystemRow] = (),
              configs: Iterable[ConfigRow] = (), alerts: Iterable[AlertRow] = (),
              traces: Iterable[TraceRow] = ()) -> int:
        """Write everything in one transaction; rows whose log_id is stored already are skipped.

        Returns the number of rows changed. Raises DatabaseBusy, StorageFull or CannotWrite,
        leaving nothing half-written.
        """
        # Generators: executemany serializes a row as it inserts it. orjson's bytes keep a
        # 4 kB allocation each, so a list of a 35,000-row batch's payloads held 140 MB.
        metric_rows = ((r.run_id, r.timestamp, r.run_name, r.step, dumps(r.values), r.log_id)
                       for r in metrics)
        system_rows = ((r.run_id, r.timestamp, r.run_name, dumps(r.values), r.log_id)
                       for r in system)
        config_rows = [(r.run_id, r.run_name, dumps(r.config), r.created_at) for r in configs]
        alert_rows = [(r.run_id, r.timestamp, r.run_name, r.title, r.text, r.level, r.step,
                       r.alert_id) for r in alerts]
        trace_rows = [(r.id, r.run_id, r.timestamp, r.run_name, r.step, r.key, r.trace_index,
                       dumps(r.messages), dumps(r.metadata), r.search_text, r.log_id,
                       dumps(r.spans)) for r in traces]
        before = self.conn.total_changes
        with self._immediate():
            if trace_rows:
                self._ensure_traces()
                self.conn.executemany(
                    "INSERT OR IGNORE INTO traces (id, run_id, timestamp, run_name, step, key, "
                    "trace_index, messages, metadata, search_text, log_id, spans) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", trace_rows)
            self._insert("metrics", ("run_id", "timestamp", "run_name", "step", "metrics",
                                     "log_id"), metric_rows)
            self._insert("system_metrics", ("run_id", "timestamp", "run_name", "metrics",
                                            "log_id"), system_rows)
            self._insert("configs", ("run_id", "run_name", "config", "created_at"),
                         config_rows, verb="INSERT OR REPLACE")
            self._insert("alerts", ("run_id", "timestamp", "run_name", "title", "text",
                                    "level", "step", "alert_id"), alert_rows)
        return self.conn.total_changes - before

    def last_step(self, run_id: str, run_name: str) -> int | None:
        """Return the largest step stored for a run, None when it has none."""
        column, value = ("run_id", run_id) if self.keyed["metrics"] else ("run_name", run_name)
        try:
            row = self.conn.execute(
                f"SELECT MAX(step) FROM metrics WHERE {column} = ? "
                "AND typeof(step) IN ('integer', 'real')", (value,)).fetchone()
        except sqlite3.Error as exc:
            raise _write_error(exc, self.path) from exc
        last = row[0]
        if isinstance(last, float):
            # Another writer stored a real step; only a whole, finite one continues a sequence.
            return int(last) if last.is_integer() else None
        return last

    def latest_run_id(self, run_name: str) -> str | None:
        """Return the id of the most recently started run with this name."""
        if not self.keyed["metrics"]:
            found = self.conn.execute("SELECT 1 FROM metrics WHERE run_name = ? LIMIT 1",
                                      (run_name,)).fetchone()
            return run_name if found else None
        row = self.conn.execute(
            "SELECT run_id FROM metrics WHERE run_name = ? ORDER BY id DESC LIMIT 1",
            (run_name,)).fetchone()
        return None if row is None else row[0]

    def _run_scoped(self, statement: str, params: tuple, run_key: str) -> int:
        """Apply one UPDATE/DELETE to every run-scoped table, in one transaction."""
        before = self.conn.total_changes
        with self._immediate():
            for table, keyed in self.keyed.items():
                column = "run_id" if keyed else "run_name"
                self.conn.execute(statement.format(table=table, column=column),
                                  params + (run_key,))
        return self.conn.total_changes - before

    def rename_run(self, run_key: str, new_name: str) -> int:
        """Rename a run everywhere it is stored (its id, where it has one, stays)."""
        return self._run_scoped("UPDATE {table} SET run_name = ? WHERE {column} = ?",
                                (new_name,), run_key)

    def delete_run(self, run_key: str) -> int:
        """Delete a run's rows from every table."""
        return self._run_scoped("DELETE FROM {table} WHERE {column} = ?", (), run_key)

    def _table_columns(self, table: str) -> set[str]:
        return {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}

    def _ensure_traces(self) -> None:
        """Create the traces table (inside the caller's transaction); old ones gain `spans`."""
        for statement in TRACES_SCHEMA:
            self.conn.execute(statement)
        if "spans" not in self._table_columns("traces"):
            self.conn.execute("ALTER TABLE traces ADD COLUMN spans TEXT NOT NULL DEFAULT '[]'")

    def resolve_run_key(self, run_name: str | None, run_id: str | None) -> str | None:
        """The key of the run trackio means: an id as given, else the latest run of that name
        (by first timestamp, trackio's rule); None when neither finds a run."""
        try:
            if not self.keyed["metrics"]:
                name = run_name if run_name is not None else run_id
                if name is None:
                    return None
                found = self.conn.execute("SELECT 1 FROM metrics WHERE run_name = ? LIMIT 1",
                                          (name,)).fetchone()
                return name if found else None
            if run_id is not None:
                return run_id
            row = self.conn.execute(
                "SELECT run_id FROM metrics WHERE run_name = ? GROUP BY run_id "
                "ORDER BY MIN(timestamp) DESC LIMIT 1", (run_name,)).fetchone()
        except sqlite3.Error as exc:
            raise _write_error(exc, self.path) from exc
        return None if row is None else row[0]

    def name_in_use(self, run_name: str) -> bool:
        try:
            return self.conn.execute("SELECT 1 FROM metrics WHERE run_name = ? LIMIT 1",
                                     (run_name,)).fetchone() is not None
        except sqlite3.Error as exc:
            raise _write_error(exc, self.path) from exc

    def _extra_run_tables(self) -> list[tuple[str, str]]:
        """Run-scoped tables beyond the four core ones that exist here, with their run key."""
        tables = []
        for table in ("traces",):
            found = self._table_columns(table)
            if found:
                tables.append((table, "run_id" if "run_id" in found else "run_name"))
        return tables

    def _artifact_refs(self, run_key: str, statement: str, params: tuple) -> None:
        """Apply a run change to artifact links and version producers, where those tables are."""
        keyed = self.keyed["metrics"]
        for table, id_col, name_col in (("run_artifact_links", "run_id", "run_name"),
                                        ("external_run_artifact_links", "run_id", "run_name"),
                                        ("artifact_versions", "producer_run_id",
                                         "producer_run_name")):
            if self._table_columns(table):
                self.conn.execute(statement.format(table=table, id=id_col, name=name_col,
                                                   key=id_col if keyed else name_col),
                                  params + (run_key,))

    def rename_run_with_media(self, run_key: str, new_name: str,
                              rewrite: Callable[[Any], Any]) -> int:
        """Rename a run everywhere (traces too) and pass every metrics/traces payload of the run
        through `rewrite` (media paths move with the name), all in one transaction."""
        before = self.conn.total_changes
        column = "run_id" if self.keyed["metrics"] else "run_name"
        with self._immediate():
            rows = self.conn.execute(f"SELECT id, metrics FROM metrics WHERE {column} = ?",
                                     (run_key,)).fetchall()
            for row_id, payload in rows:
                changed = _rewritten(payload, rewrite)
                if changed is not None:
                    self.conn.execute("UPDATE metrics SET metrics = ? WHERE id = ?",
                                      (changed, row_id))
            for table, keyed in self.keyed.items():
                key = "run_id" if keyed else "run_name"
                self.conn.execute(f"UPDATE {table} SET run_name = ? WHERE {key} = ?",
                                  (new_name, run_key))
            for table, key in self._extra_run_tables():
                trace_rows = self.conn.execute(
                    f"SELECT id, messages, metadata, spans FROM {table} WHERE {key} = ?",
                    (run_key,)).fetchall() if "spans" in self._table_columns(table) else []
                for trace_id, *payloads in trace_rows:
                    updated = [_rewritten(payload, rewrite) for payload in payloads]
                    if any(value is not None for value in updated):
                        self.conn.execute(
                            f"UPDATE {table} SET messages = ?, metadata = ?, spans = ? "
                            "WHERE id = ?",
                            tuple(new if new is not None else old
                                  for new, old in zip(updated, payloads, strict=True))
                            + (trace_id,))
                self.conn.execute(f"UPDATE {table} SET run_name = ? WHERE {key} = ?",
                                  (new_name, run_key))
            self._artifact_refs(run_key, "UPDATE {table} SET {name} = ? WHERE {key} = ?",
                                (new_name,))
        return self.conn.total_changes - before

    def delete_run_everywhere(self, run_key: str) -> int:
        """Delete a run's rows from every run-scoped table, traces included, in one transaction."""
        before = self.conn.total_changes
        with self._immediate():
            for table, keyed in self.keyed.items():
                key = "run_id" if keyed else "run_name"
                self.conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (run_key,))
            for table, key in self._extra_run_tables():
                self.conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (run_key,))
            # Artifact versions a deleted run produced stay; they lose their producer.
            for table in ("run_artifact_links", "external_run_artifact_links"):
                if self._table_columns(table):
                    key = "run_id" if self.keyed["metrics"] else "run_name"
                    self.conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (run_key,))
            if self._table_columns("artifact_versions"):
                key = "producer_run_id" if self.keyed["metrics"] else "producer_run_name"
                self.conn.execute("UPDATE artifact_versions SET producer_run_id = NULL, "
                                  f"producer_run_name = NULL WHERE {key} = ?", (run_key,))
        return self.conn.total_changes - before

    def _ensure_artifacts(self) -> None:
        for statement in ARTIFACT_SCHEMA:
            self.conn.execute(statement)
        if "run_project" not in self._table_columns("run_artifact_links"):
            self.conn.execute("ALTER TABLE run_artifact_links ADD COLUMN run_project TEXT")
        for statement in ARTIFACT_LINK_INDEXES:
            self.conn.execute(statement)

    def _link(self, run_name: str | None, run_id: str | None, version_id: int, direction: str,
              now: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO run_artifact_links (run_id, run_name, run_project, "
            "artifact_version_id, direction, created_at) SELECT ?, ?, NULL, ?, ?, ? WHERE NOT "
            "EXISTS (SELECT 1 FROM run_artifact_links WHERE run_id IS ? AND run_name IS ? AND "
            "run_project IS NULL AND artifact_version_id = ? AND direction = ?)",
            (run_id, run_name, version_id, direction, now, run_id, run_name, version_id,
             direction))

    def _alias(self, artifact_id: int, alias: str, version_id: int,
               version: int | None = None) -> None:
        """Point an alias at a version; with `version`, never move it to an older one."""
        if version is not None:
            current = self.conn.execute(
                "SELECT av.version FROM artifact_aliases aa JOIN artifact_versions av ON "
                "av.id = aa.artifact_version_id WHERE aa.artifact_id = ? AND aa.alias = ?",
                (artifact_id, alias)).fetchone()
            if current is not None and int(current[0]) > version:
                return
        self.conn.execute(
            "INSERT INTO artifact_aliases (artifact_id, alias, artifact_version_id) "
            "VALUES (?, ?, ?) ON CONFLICT(artifact_id, alias) DO UPDATE SET "
            "artifact_version_id = excluded.artifact_version_id",
            (artifact_id, alias, version_id))

    def commit_artifact(self, *, name: str, type: str, description: str | None,
                        manifest: list[dict[str, Any]], digest: str, size_bytes: int,
                        metadata: dict[str, Any] | None, aliases: list[str],
                        run_name: str | None, run_id: str | None, overwrite: bool,
                        now: str) -> tuple[int, set[str]]:
        """Commit an artifact version as trackio does, in one transaction: identical content
        reuses its version, `latest` moves only forward, `overwrite` drops the other versions.
        Returns the version id and the blob digests no version references any more."""
        with self._immediate():
            self._ensure_artifacts()
            row = self.conn.execute("SELECT id, type FROM artifacts WHERE name = ?",
                                    (name,)).fetchone()
            if row is not None:
                if row[1] != type:
                    raise WriteRefused(f"Artifact '{name}' already exists with type '{row[1]}'; "
                                       f"cannot relog with type '{type}'.")
                artifact_id = int(row[0])
                if description is not None:
                    self.conn.execute("UPDATE artifacts SET description = ? WHERE id = ?",
                                      (description, artifact_id))
            else:
                artifact_id = int(self.conn.execute(
                    "INSERT INTO artifacts (name, type, description, created_at) "
                    "VALUES (?, ?, ?, ?)", (name, type, description, now)).lastrowid)
            minimum, obsolete = 0, set()
            if overwrite:
                old = self.conn.execute("SELECT manifest, version FROM artifact_versions "
                                        "WHERE artifact_id = ?", (artifact_id,)).fetchall()
                if old:
                    minimum = max(int(version) for _, version in old) + 1
                    obsolete = _blob_digests(payload for payload, _ in old)
                    self.conn.execute("DELETE FROM artifact_aliases WHERE artifact_id = ?",
                                      (artifact_id,))
                    self.conn.execute("DELETE FROM run_artifact_links WHERE artifact_version_id "
                                      "IN (SELECT id FROM artifact_versions WHERE "
                                      "artifact_id = ?)", (artifact_id,))
                    self.conn.execute("DELETE FROM artifact_versions WHERE artifact_id = ?",
                                      (artifact_id,))
            metadata_json = orjson.dumps(metadata).decode() if metadata else None
            existing = self.conn.execute(
                "SELECT id, version FROM artifact_versions WHERE artifact_id = ? AND "
                "manifest_digest = ?", (artifact_id, digest)).fetchone()
            if existing is not None:
                version_id, version, created = int(existing[0]), int(existing[1]), False
                if metadata:
                    self.conn.execute("UPDATE artifact_versions SET metadata = ? WHERE id = ?",
                                      (metadata_json, version_id))
            else:
                top = self.conn.execute("SELECT MAX(version) FROM artifact_versions WHERE "
                                        "artifact_id = ?", (artifact_id,)).fetchone()[0]
                version = minimum if top is None else max(int(top) + 1, minimum)
                version_id = int(self.conn.execute(
                    "INSERT INTO artifact_versions (artifact_id, version, manifest_digest, "
                    "manifest, metadata, size_bytes, producer_run_id, producer_run_name, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (artifact_id, version, digest, orjson.dumps(manifest).decode(),
                     metadata_json, size_bytes, run_id, run_name, now)).lastrowid)
                created = True
            unused: set[str] = set()
            if overwrite:
                unused = obsolete - _blob_digests(
                    payload for (payload,) in self.conn.execute(
                        "SELECT manifest FROM artifact_versions"))
            if created or overwrite:
                self._alias(artifact_id, "latest", version_id)
            for alias in aliases:
                if VERSION_ALIAS.fullmatch(alias):
                    raise WriteRefused(f"Alias '{alias}' is reserved for version pointers (vN); "
                                       "choose another.")
                self._alias(artifact_id, alias, version_id, version)
            self._link(run_name, run_id, version_id, "output", now)
        return version_id, unused

    def link_artifact_use(self, version_id: int, run_name: str | None, run_id: str | None,
                          now: str) -> bool:
        """Record a run as a consumer of an artifact version; False when there is no such
        version."""
        with self._immediate():
            if not self._table_columns("artifact_versions") or self.conn.execute(
                    "SELECT 1 FROM artifact_versions WHERE id = ?", (version_id,)).fetchone() \
                    is None:
                return False
            self._ensure_artifacts()
            self._link(run_name, run_id, version_id, "input", now)
        return True


def _rewritten(payload: Any, rewrite: Callable[[Any], Any]) -> bytes | None:
    """The payload after `rewrite`, re-encoded; None when unreadable or unchanged."""
    try:
        value = orjson.loads(payload)
        changed = rewrite(value)
    except (orjson.JSONDecodeError, TypeError, RecursionError):
        return None
    return None if changed == value else dumps(changed)


def _blob_digests(payloads: Iterable[Any]) -> set[str]:
    """Digests of the stored blobs (not external references) that manifests name."""
    found: set[str] = set()
    for payload in payloads:
        try:
            entries = orjson.loads(payload)
        except (orjson.JSONDecodeError, TypeError):
            continue
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and "ref" not in entry and isinstance(
                    entry.get("digest"), str):
                found.add(entry["digest"])
    return found
