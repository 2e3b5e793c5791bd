"""Validate and store batches sent by Trackio clients (`bulk_log`, `bulk_log_system`, `bulk_alert`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import storage, timestamps
from .locks import KeyedLocks
from .writer import AlertRow, ConfigRow, MetricRow, ProjectWriter, SystemRow

MAX_NAME = 512
LEVELS = ("info", "warn", "error")
# Steps are drawn by browsers, whose numbers are exact up to 2**53.
MAX_STEP = 2**53
MAX_DEPTH = 64


class InvalidEntry(ValueError):
    """A batch entry that cannot be stored; the message names the entry."""


def _check_value(value: Any, where: str) -> None:
    """Refuse values the store or the reader cannot hold: deep nesting and overlong keys."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidEntry(f"{where} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if len(key) > MAX_NAME:
                    raise InvalidEntry(f"{where} has a key longer than {MAX_NAME} characters")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _text(entry: dict, key: str, index: int, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise InvalidEntry(f"entry {index}: '{key}' must be a non-empty string "
                           f"of at most {MAX_NAME} characters")
    return value


def _step(entry: dict, index: int) -> int | None:
    step = entry.get("step")
    if step is None:
        return None
    whole = isinstance(step, int) or (isinstance(step, float) and step.is_integer())
    if isinstance(step, bool) or not whole or not -MAX_STEP <= step <= MAX_STEP:
        raise InvalidEntry(f"entry {index}: 'step' must be a whole number from -2**53 to 2**53, "
                           "or null")
    return int(step)


def _timestamp(entry: dict, index: int) -> str:
    value = entry.get("timestamp")
    if value is None:
        return timestamps.now_iso()
    checked = timestamps.checked(value)
    if checked is None:
        raise InvalidEntry(f"entry {index}: 'timestamp' must be an ISO 8601 time between "
                           f"{timestamps.LOWEST.year} and {timestamps.HIGHEST.year}")
    return checked


def _common(entry: Any, index: int) -> tuple[str, str, str]:
    if not isinstance(entry, dict):
        raise InvalidEntry(f"entry {index} must be an object")
    project = _text(entry, "project", index)
    try:
        storage.validate_project_name(project)
    except storage.InvalidProjectName as exc:
        raise InvalidEntry(f"entry {index}: {exc}") from None
    run = _text(entry, "run", index)
    run_id = _text(entry, "run_id", index, required=False) or run
    return project, run, run_id


def _metrics(entry: dict, index: int) -> dict[str, Any]:
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict):
        raise InvalidEntry(f"entry {index}: 'metrics' must be an object")
    _check_value(metrics, f"entry {index}: 'metrics'")
    return metrics


def _entries(value: Any, name: str) -> list:
    if not isinstance(value, list):
        raise InvalidEntry(f"'{name}' must be a list of entries")
    return value


class Ingest:
    """One writer per project database, used under a lock (a batch is one transaction)."""

    def __init__(self, data_dir: Path, journal_mode: str, busy_timeout: float) -> None:
        self.data_dir = Path(data_dir)
        self.journal_mode = journal_mode
        self.busy_timeout = busy_timeout
        self._writers: dict[str, ProjectWriter] = {}
        self._lock = KeyedLocks()

    def _writer(self, project: str) -> ProjectWriter:
        writer = self._writers.get(project)
        if writer is None:
            writer = ProjectWriter(storage.db_path(self.data_dir, project), self.journal_mode,
                                   self.busy_timeout)
            self._writers[project] = writer
        return writer

    @contextmanager
    def locked(self, project: str) -> Iterator[ProjectWriter]:
        """The project's writer, held exclusively (for run rename and delete)."""
        with self._lock(project):
            yield self._writer(project)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def log(self, logs: Any) -> int:
        """Store `bulk_log` entries: {project, run, run_id?, metrics, step?, config?, log_id?}."""
        per_project: dict[str, tuple[list, dict]] = {}
        for index, entry in enumerate(_entries(logs, "logs")):
            project, run, run_id = _common(entry, index)
            metrics = _metrics(entry, index)
            config = entry.get("config")
            if config is not None and not isinstance(config, dict):
                raise InvalidEntry(f"entry {index}: 'config' must be an object or null")
            if config:
                _check_value(config, f"entry {index}: 'config'")
            log_id = _text(entry, "log_id", index, required=False)
            rows, configs = per_project.setdefault(project, ([], {}))
            rows.append((run, run_id, _timestamp(entry, index), _step(entry, index), metrics,
                         log_id))
            if config:
                configs.setdefault(run_id, ConfigRow(run_id, run, config, timestamps.now_iso()))
        written = 0
        for project, (rows, configs) in per_project.items():
            with self._lock(project):
                writer = self._writer(project)
                metric_rows = []
                next_steps: dict[str, int] = {}
                for run, run_id, stamp, step, metrics, log_id in rows:
                    if step is None:
                        # Like Trackio's server: a missing step continues after the last one.
                        if run_id not in next_steps:
                            last = writer.last_step(run_id, run)
                            next_steps[run_id] = 0 if last is None else last + 1
                        step = next_steps[run_id]
                        if step > MAX_STEP:
                            raise InvalidEntry(f"run {run!r} is at the largest step (2**53); "
                                               "log with an explicit step")
                    next_steps[run_id] = max(next_steps.get(run_id, 0), step + 1)
                    metric_rows.append(MetricRow(run_id, run, stamp, step, metrics, log_id))
                written += writer.write(metrics=metric_rows, configs=list(configs.values()))
        return written

    def log_system(self, logs: Any) -> int:
        """Store `bulk_log_system` entries: {project, run, run_id?, metrics, timestamp, log_id?}."""
        per_project: dict[str, list[SystemRow]] = {}
        for index, entry in enumerate(_entries(logs, "logs")):
            project, run, run_id = _common(entry, index)
            per_project.setdefault(project, []).append(SystemRow(
                run_id, run, _timestamp(entry, index), _metrics(entry, index),
                _text(entry, "log_id", index, required=False)))
        return self._write_each(per_project, "system")

    def alert(self, alerts: Any) -> int:
        """Store `bulk_alert` entries: {project, run, run_id?, title, text?, level, step?, ...}."""
        per_project: dict[str, list[AlertRow]] = {}
        for index, entry in enumerate(_entries(alerts, "alerts")):
            project, run, run_id = _common(entry, index)
            level = entry.get("level", "warn")
            if level not in LEVELS:
                raise InvalidEntry(f"entry {index}: 'level' must be info, warn or error")
            text = entry.get("text")
            if text is not None and not isinstance(text, str):
                raise InvalidEntry(f"entry {index}: 'text' must be a string or null")
            per_project.setdefault(project, []).append(AlertRow(
                run_id, run, _timestamp(entry, index), _text(entry, "title", index), text, level,
                _step(entry, index), _text(entry, "alert_id", index, required=False)))
        return self._write_each(per_project, "alerts")

    def _write_each(self, per_project: dict[str, list], kind: str) -> int:
        """One transaction per project: `kind` is the writer's keyword (system, alerts)."""
        written = 0
        for project, rows in per_project.items():
            with self._lock(project):
                written += self._writer(project).write(**{kind: rows})
        return written
