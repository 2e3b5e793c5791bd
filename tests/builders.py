"""Build throwaway project databases in each Trackio schema era, row by row."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from trackio_flask.writer import SCHEMA, TRACKIO_SCHEMA_VERSION

LEGACY_SCHEMA = (
    "CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL, "
    "run_name TEXT NOT NULL, step INTEGER NOT NULL, metrics TEXT NOT NULL)",
    "CREATE TABLE configs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_name TEXT NOT NULL, "
    "config TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE(run_name))",
    "CREATE TABLE system_metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL, "
    "run_name TEXT NOT NULL, metrics TEXT NOT NULL)",
)
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


class ProjectDB:
    """A project file written directly in a chosen schema; `as_text` stores JSON as TEXT."""

    def __init__(self, path: Path, legacy: bool = False, journal: str = "WAL",
                 as_text: bool = False) -> None:
        self.path = path
        self.legacy = legacy
        self.as_text = as_text
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute(f"PRAGMA journal_mode = {journal}")
        for statement in LEGACY_SCHEMA if legacy else SCHEMA:
            self.conn.execute(statement)
        if not legacy:
            self.conn.execute(f"PRAGMA user_version = {TRACKIO_SCHEMA_VERSION}")

    def _json(self, value) -> bytes | str:
        data = orjson.dumps(value)
        return data.decode() if self.as_text else data

    def log(self, run: str, step: int, metrics: dict, at: float | None = None,
            run_id: str | None = None) -> None:
        at = float(step) if at is None else at
        if self.legacy:
            self.conn.execute("INSERT INTO metrics (timestamp, run_name, step, metrics) "
                              "VALUES (?, ?, ?, ?)", (stamp(at), run, step, self._json(metrics)))
        else:
            self.conn.execute("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                              "VALUES (?, ?, ?, ?, ?)",
                              (run_id or f"id-{run}", stamp(at), run, step, self._json(metrics)))

    def log_many(self, run: str, steps: range, make, run_id: str | None = None) -> None:
        self.conn.execute("BEGIN")
        for step in steps:
            self.log(run, step, make(step), run_id=run_id)
        self.conn.execute("COMMIT")

    def system(self, run: str, at: float, metrics: dict, run_id: str | None = None) -> None:
        if self.legacy:
            self.conn.execute("INSERT INTO system_metrics (timestamp, run_name, metrics) "
                              "VALUES (?, ?, ?)", (stamp(at), run, self._json(metrics)))
        else:
            self.conn.execute("INSERT INTO system_metrics (run_id, timestamp, run_name, metrics) "
                              "VALUES (?, ?, ?, ?)",
                              (run_id or f"id-{run}", stamp(at), run, self._json(metrics)))

    def config(self, run: str, config: dict, run_id: str | None = None) -> None:
        if self.legacy:
            self.conn.execute("INSERT INTO configs (run_name, config, created_at) VALUES (?, ?, ?)",
                              (run, self._json(config), stamp(0)))
        else:
            self.conn.execute("INSERT INTO configs (run_id, run_name, config, created_at) "
                              "VALUES (?, ?, ?, ?)",
                              (run_id or f"id-{run}", run, self._json(config), stamp(0)))

    def close(self) -> None:
        self.conn.close()
