"""Trackio's HTTP API names as methods (same shapes as trackio's server) over our store. No Flask.

`TrackioApi.READS` and `TrackioApi.WRITES` list the names served; the view binds a request body
to the method of that name and turns ApiError into a 400.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from . import storage
from .ingest import Ingest
from .live import ProjectState, ProjectStore, RunInfo
from .series import Columns, decode_payload
from .settings import parse_bool
from .timestamps import to_iso

MAX_BATCH_RUNS = 64
MAX_POINTS_CAP = 10_000
DEFAULT_POINTS = 3000


class ApiError(ValueError):
    """A request Trackio's API would reject with 400."""


def batch_runs(runs: Any) -> list[dict[str, Any]]:
    """Validate `runs` of a batch call: a list of at most 64 objects with `run` and/or `run_id`."""
    if not isinstance(runs, list):
        raise ApiError("runs must be a list")
    if len(runs) > MAX_BATCH_RUNS:
        raise ApiError(f"runs cannot contain more than {MAX_BATCH_RUNS} entries")
    clean = []
    for index, item in enumerate(runs):
        if not isinstance(item, dict):
            raise ApiError(f"runs[{index}] must be an object")
        run, run_id = item.get("run"), item.get("run_id")
        if run is None and run_id is None:
            raise ApiError(f"runs[{index}] needs 'run' or 'run_id'")
        for key, value in (("run", run), ("run_id", run_id)):
            if value is not None and not isinstance(value, str):
                raise ApiError(f"runs[{index}].{key} must be a string")
        clean.append({"run": run, "run_id": run_id})
    return clean


def _max_points(value: Any) -> int:
    """Trackio's rule: null or < 1 → 3000; whole numbers only; capped at 10,000."""
    if value is None:
        return DEFAULT_POINTS
    if isinstance(value, bool):
        raise ApiError("max_points must be a number or null")
    if isinstance(value, float):
        if not value.is_integer():
            raise ApiError("max_points must be a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise ApiError("max_points must be an integer or null")
    if value < 1:
        return DEFAULT_POINTS
    return min(value, MAX_POINTS_CAP)


def flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str):
        try:
            return parse_bool(value)
        except ValueError:
            pass
    raise ApiError(f"{name} must be a boolean")


def text(value: Any, name: str, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(f"{name} must be a non-empty string")
    return value


def resolve_run(state: ProjectState, run: str | None, run_id: str | None) -> RunInfo | None:
    """Find a run by id, else the most recently created run with that name (Trackio's rule)."""
    if run_id is not None:
        return state.runs.get(run_id)
    matches = [info for info in state.runs.values() if info.name == run]
    return max(matches, key=_created_order, default=None)


def _created_order(info: RunInfo) -> tuple[float, str]:
    """Creation order that a run without a readable creation time cannot break (NaN sorts first)."""
    return (info.created if info.created == info.created else -math.inf, info.key)


def _pick(count: int, limit: int) -> np.ndarray:
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))


def scalar_logs(columns: Columns, limit: int, system: bool = False) -> list[dict[str, Any]]:
    """Rows as Trackio returns them with scalar_only: finite metrics plus step and timestamp."""
    rows = []
    names = list(columns.metrics)
    arrays = [columns.column(name) for name in names]
    for index in _pick(columns.length, limit).tolist():
        row: dict[str, Any] = {}
        for name, array in zip(names, arrays, strict=True):
            value = array[index]
            if np.isfinite(value):
                row[name] = float(value)
        row["timestamp"] = to_iso(float(columns.times[index]))
        if not system:
            step = float(columns.steps[index])
            row["step"] = int(step) if math.isfinite(step) else None
        rows.append(row)
    return rows


def full_logs(state: ProjectState, info: RunInfo, limit: int) -> list[dict[str, Any]]:
    """Rows with every logged value (media dicts and strings too), read from the database."""
    conn = storage.open_readonly(state.path)
    try:
        raw = storage.metric_rows(conn, state.schema, 0, run_keys=(info.key,))
    finally:
        conn.close()
    rows = []
    for index in _pick(len(raw), limit).tolist():
        _, _, _, stamp, step, payload = raw[index]
        values = decode_payload(payload)
        values = {k: _number_or_value(v) for k, v in values.items()}
        # Stored by anyone: only text stamps and numeric steps are passed on as they are.
        rows.append({**values, "timestamp": stamp if isinstance(stamp, str) else None,
                     "step": step if type(step) is int or type(step) is float else None})
    return rows


def _number_or_value(value: Any) -> Any:
    # Trackio turns its stored "NaN"/"Infinity" strings back into floats, which JSON sends as null.
    if value in ("NaN", "Infinity", "-Infinity"):
        return None
    return value


def runs_for_project(state: ProjectState) -> list[dict[str, Any]]:
    ordered = sorted(state.runs.values(), key=_created_order)
    return [{"id": info.key, "name": info.name, "created_at": to_iso(info.created)}
            for info in ordered]


def run_summary(state: ProjectState, project: str, run: str | None,
                run_id: str | None) -> dict[str, Any]:
    info = resolve_run(state, run, run_id)
    if info is None:
        return {"project": project, "run": run, "run_id": run_id, "num_logs": 0, "metrics": [],
                "config": None, "last_step": None}
    columns = state.metrics.get(info.key)
    metrics = sorted(columns.metrics) if columns is not None else []
    last_step = None if info.last_step != info.last_step else int(info.last_step)
    return {"project": project, "run": info.name, "run_id": info.key, "num_logs": info.rows,
            "metrics": metrics, "config": state.configs.get(info.key), "last_step": last_step}


class TrackioApi:
    """Trackio's API names over this server's store (reads) and ingest (writes)."""

    READS = ("get_all_projects", "get_runs_for_project", "get_run_configs", "get_run_summary",
             "get_logs", "get_system_logs", "get_logs_batch", "get_system_logs_batch")
    WRITES = ("bulk_log", "bulk_log_system", "bulk_alert")

    def __init__(self, data_dir: Path, store: ProjectStore, ingest: Ingest) -> None:
        self.data_dir = Path(data_dir)
        self.store = store
        self.ingest = ingest

    def _state(self, project: Any) -> ProjectState | None:
        name = text(project, "project", required=True)
        try:
            return self.store.get(name)
        except storage.ProjectNotFound:
            return None

    def get_all_projects(self) -> list[str]:
        return [p.name for p in storage.list_projects(self.data_dir)]

    def get_runs_for_project(self, project: Any) -> list[dict[str, Any]]:
        state = self._state(project)
        return [] if state is None else runs_for_project(state)

    def get_run_configs(self, project: Any) -> dict[str, Any]:
        state = self._state(project)
        return {} if state is None else dict(state.configs)

    def get_run_summary(self, project: Any, run: Any = None,
                        run_id: Any = None) -> dict[str, Any]:
        state = self._state(project)
        run, run_id = text(run, "run"), text(run_id, "run_id")
        if state is None:
            return {"project": project, "run": run, "run_id": run_id, "num_logs": 0,
                    "metrics": [], "config": None, "last_step": None}
        return run_summary(state, project, run, run_id)

    def _logs(self, project: Any, run: Any, run_id: Any, limit: int, scalar_only: bool,
              system: bool) -> list[dict[str, Any]]:
        state = self._state(project)
        if state is None:
            return []
        info = resolve_run(state, text(run, "run"), text(run_id, "run_id"))
        if info is None:
            return []
        table = state.system if system else state.metrics
        if system or scalar_only:
            columns = table.get(info.key)
            return [] if columns is None else scalar_logs(columns, limit, system)
        return full_logs(state, info, limit)

    def get_logs(self, project: Any, run: Any = None, run_id: Any = None,
                 scalar_only: Any = False) -> list[dict[str, Any]]:
        return self._logs(project, run, run_id, DEFAULT_POINTS,
                          flag(scalar_only, "scalar_only"), system=False)

    def get_system_logs(self, project: Any, run: Any = None,
                        run_id: Any = None) -> list[dict[str, Any]]:
        return self._logs(project, run, run_id, DEFAULT_POINTS, True, system=True)

    def get_logs_batch(self, project: Any, runs: Any, max_points: Any = 3000,
                       scalar_only: Any = False) -> list[dict[str, Any]]:
        clean, limit = batch_runs(runs), _max_points(max_points)
        only = flag(scalar_only, "scalar_only")
        return [{**item, "logs": self._logs(project, item["run"], item["run_id"], limit, only,
                                            False)} for item in clean]

    def get_system_logs_batch(self, project: Any, runs: Any,
                              max_points: Any = 3000) -> list[dict[str, Any]]:
        clean, limit = batch_runs(runs), _max_points(max_points)
        return [{**item, "logs": self._logs(project, item["run"], item["run_id"], limit, True,
                                            True)} for item in clean]

    def bulk_log(self, logs: Any, hf_token: Any = None) -> None:
        self.ingest.log(logs)

    def bulk_log_system(self, logs: Any, hf_token: Any = None) -> None:
        self.ingest.log_system(logs)

    def bulk_alert(self, alerts: Any, hf_token: Any = None) -> None:
        self.ingest.alert(alerts)
