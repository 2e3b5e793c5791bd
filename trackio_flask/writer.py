"""Write rows in Trackio's current schema, one IMMEDIATE transaction per batch. No Flask here."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .storage import sqlite_problem

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
            self._prepare(journal_mode, time.monotonic() + busy_timeout)
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

    def _prepare(self, journal_mode: str, deadline: float) -> None:
        conn = self.conn
        self._wait_at_most(deadline)
        if conn.execute("PRAGMA journal_mode").fetchone()[0].upper() != journal_mode:
            self._wait_at_most(deadline)
            conn.execute(f"PRAGMA journal_mode = {journal_mode}")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._wait_at_most(deadline)
        conn.execute("BEGIN IMMEDIATE")
        try:
            existed = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'metrics'").fetchone() is not None
            for statement in SCHEMA:
                # Old run_name-only files keep their tables; only missing ones are added.
                if existed and "idx_metrics_run_record" in statement:
                    continue
                conn.execute(statement)
            if not existed:
                conn.execute(f"PRAGMA user_version = {TRACKIO_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        self.keyed = {
            table: "run_id" in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for table in ("metrics", "system_metrics", "configs", "alerts")
        }

    def close(self) -> None:
        self.conn.close()

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
            raise _write_error(exc, self.path) from exc
        except BaseException:
            self._rollback()
            raise

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple],
                verb: str = "INSERT OR IGNORE", suffix: str = "") -> None:
        if not rows:
            return
        if not self.keyed[table]:
            # run_name-only era: drop the leading run_id value.
            columns = columns[1:]
            rows = [row[1:] for row in rows]
        marks = ", ".join("?" * len(columns))
        self.conn.executemany(
            f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}", rows)

    def write(self, *, metrics: Iterable[MetricRow] = (), system: Iterable[SystemRow] = (),
              configs: Iterable[ConfigRow] = (), alerts: Iterable[AlertRow] = ()) -> int:
        """Write everything in one transaction; rows whose log_id is stored already are skipped.

        Returns the number of rows changed. Raises DatabaseBusy, StorageFull or CannotWrite,
        leaving nothing half-written.
        """
        metric_rows = [(r.run_id, r.timestamp, r.run_name, r.step, dumps(r.values), r.log_id)
                       for r in metrics]
        system_rows = [(r.run_id, r.timestamp, r.run_name, dumps(r.values), r.log_id)
                       for r in system]
        config_rows = [(r.run_id, r.run_name, dumps(r.config), r.created_at) for r in configs]
        alert_rows = [(r.run_id, r.timestamp, r.run_name, r.title, r.text, r.level, r.step,
                       r.alert_id) for r in alerts]
        before = self.conn.total_changes
        with self._immediate():
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
