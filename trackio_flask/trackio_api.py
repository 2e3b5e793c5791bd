"""Trackio's read API results (same shapes as trackio's server), built from our store. No Flask."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np

from . import storage
from .live import ProjectState, RunInfo
from .series import Columns, decode_payload

MAX_BATCH_RUNS = 64
MAX_POINTS_CAP = 10_000
DEFAULT_POINTS = 3000


class ApiError(ValueError):
    """A request Trackio's API would reject with 400."""


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat()


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


def max_points(value: Any) -> int:
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
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    if value is None:
        return False
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
    return max(matches, key=lambda info: info.created, default=None)


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
        row["timestamp"] = iso(float(columns.times[index]))
        if not system:
            row["step"] = int(columns.steps[index])
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
        rows.append({**values, "timestamp": stamp, "step": step})
    return rows


def _number_or_value(value: Any) -> Any:
    # Trackio turns its stored "NaN"/"Infinity" strings back into floats, which JSON sends as null.
    if value in ("NaN", "Infinity", "-Infinity"):
        return None
    return value


def runs_for_project(state: ProjectState) -> list[dict[str, Any]]:
    ordered = sorted(state.runs.values(), key=lambda info: (info.created, info.key))
    return [{"id": info.key, "name": info.name, "created_at": iso(info.created)}
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
