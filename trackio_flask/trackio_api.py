"""Trackio's HTTP API names as methods (same shapes as trackio's server) over our store. No Flask.

`TrackioApi.READS` and `TrackioApi.WRITES` list the names served (writes need the write token),
`NOT_SERVED` the names answered 501 and why. The view binds a request body to the method of that
name like trackio's dispatcher, passes a `Caller` to methods that take one, and turns ApiError
into a 400 (NotServed into a 501).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import artifacts, media, query_sandbox, storage, trackio_reads
from .ingest import Ingest
from .live import ProjectState, ProjectStore, RunInfo
from .locks import Slots
from .series import Columns, decode_payload
from .settings import parse_bool
from .timestamps import to_iso

MAX_BATCH_RUNS = 64
MAX_POINTS_CAP = 10_000
DEFAULT_POINTS = 3000
MAX_TRACES = 10_000
TRACE_SORTS = frozenset(trackio_reads.TRACE_ORDER)
# trackio's default palette, so its dashboard looks the same when it reads get_settings here.
DEFAULT_PALETTE = ("#A8769B", "#E89957", "#3B82F6", "#10B981", "#EF4444", "#8B5CF6", "#14B8A6",
                   "#F59E0B", "#EC4899", "#06B6D4")
HUB = "this server does not talk to the Hugging Face Hub"
NOT_SERVED = {
    "upload_db_to_space": "upload_db_to_space is not served: it replaces a project's database "
                          "with an uploaded file, which `trackio sync` does to push a project to "
                          "a Hugging Face Space. Log here with trackio.init(server_url=...) or "
                          "copy the .db file into the server's data folder instead.",
    "get_registry_buckets": f"get_registry_buckets is not served: it lists Hugging Face Hub "
                            f"buckets, and {HUB}. Local registries are served (get_registries).",
}


class ApiError(ValueError):
    """A request Trackio's API would reject with 400."""


class NotServed(ApiError):
    """A call that needs the Hugging Face Hub or buckets (answered 501)."""


class AnswerTooLarge(ApiError):
    """An answer that would pass the byte cap (answered 413), found before it is built."""


class ByteBudget:
    """What is left of an answer's byte cap; spending past it raises AnswerTooLarge."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self, count: int) -> None:
        self.spent += count
        if self.limit is not None and self.spent > self.limit:
            raise AnswerTooLarge(self.limit)

    def rest(self) -> ByteBudget:
        """A budget of what is left of this one."""
        return ByteBudget(None if self.limit is None else self.limit - self.spent)


@dataclass(frozen=True)
class Caller:
    """What the view knows about the request that a method may need (trackio's `request`)."""

    can_write: bool


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


def optional_str(value: Any, name: str) -> str | None:
    """A string parameter that may be empty or null (filters, search text)."""
    if value is None or isinstance(value, str):
        return value
    raise ApiError(f"{name} must be a string or null")


def whole(value: Any, name: str, minimum: int | None = None) -> int | None:
    """A whole number or null (numeric strings too, as trackio's int() accepts them)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = int(value)  # what trackio's int() accepts; "²" and the like it refuses
        except ValueError:
            raise ApiError(f"{name} must be a whole number or null") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**63 - 1:
        raise ApiError(f"{name} must be a whole number or null")
    if minimum is not None and value < minimum:
        raise ApiError(f"{name} must be at least {minimum}")
    return value


def window_size(value: Any) -> int | None:
    """trackio truncates a window to whole seconds or steps (int(window))."""
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    return whole(value, "window")


def resolve_run(state: ProjectState, run: str | None, run_id: str | None,
                system: bool = False) -> RunInfo | None:
    """Find a run by id, else the most recently created run with that name (Trackio's rule).

    Like trackio, a name is resolved in the table asked for: for system logs, among the runs
    of that name that have system rows, by their first system sample.
    """
    if run_id is not None:
        return state.runs.get(run_id)
    matches = [info for info in state.runs.values() if info.name == run]
    if system:
        sampled = [info for info in matches if info.key in state.system]
        return max(sampled, default=None, key=lambda info: (
            info.system_first_time if info.system_first_time == info.system_first_time
            else -math.inf, info.key))
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


def full_logs(state: ProjectState, info: RunInfo, limit: int,
              budget: ByteBudget | None = None) -> list[dict[str, Any]]:
    """Rows with every logged value (media dicts and strings too), read from the database:
    the run's row ids first, then only the `limit` rows picked from them, a chunk at a time,
    stopping once their stored payloads alone pass the answer's byte budget."""
    key = state.schema.metrics_key
    if key is None:
        return []
    budget = budget or ByteBudget(None)
    conn = storage.open_readonly(state.path)
    try:
        ids = [row_id for (row_id,) in storage.read(
            conn, f"SELECT id FROM metrics WHERE {key} = ? ORDER BY id", (info.key,))]
        picked = [ids[index] for index in _pick(len(ids), limit).tolist()]
        raw: list[tuple] = []
        for start in range(0, len(picked), trackio_reads.ID_CHUNK):
            chunk = trackio_reads.rows_by_id(conn, "timestamp, step, metrics",
                                             picked[start:start + trackio_reads.ID_CHUNK])
            # The stored JSON is about the size it is sent at: past the cap, stop reading.
            budget.spend(sum(len(payload) for _, _, payload in chunk
                             if isinstance(payload, str | bytes)))
            raw += chunk
    finally:
        conn.close()
    rows = []
    for stamp, step, payload in raw:
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


def _empty_summary(project: Any, run: Any, run_id: Any) -> dict[str, Any]:
    return {"project": project, "run": run, "run_id": run_id, "num_logs": 0, "metrics": [],
            "config": None, "last_step": None}


class TrackioApi:
    """Trackio's API names over this server's store (reads) and ingest (writes)."""

    READS = ("get_all_projects", "get_runs_for_project", "get_run_configs", "get_project_summary",
             "get_run_summary", "get_metrics_for_run", "get_system_metrics_for_run", "get_logs",
             "get_logs_batch", "get_system_logs", "get_system_logs_batch", "get_metric_values",
             "get_snapshot", "get_alerts", "get_traces", "get_trace_steps",
             "get_tab_availability", "get_settings", "get_project_files", "query_project",
             "get_run_mutation_status", "force_sync", "get_artifacts", "list_artifacts",
             "get_artifact_manifest", "get_run_artifacts", "get_run_artifact_counts",
             "get_artifact_consumers", "get_artifact_lineage", "get_registries",
             "get_registry_details")
    # Reads whose cost grows with a run's or a project's rows: they share HEAVY_READ_SLOTS
    # (query_project has slots of its own), so they never hold the threads viewers need.
    HEAVY_READS = frozenset({"get_project_summary", "get_run_summary", "get_metrics_for_run",
                             "get_system_metrics_for_run", "get_logs", "get_logs_batch",
                             "get_system_logs", "get_system_logs_batch", "get_metric_values",
                             "get_snapshot", "get_alerts", "get_traces", "get_trace_steps",
                             "get_tab_availability"})
    WRITES = ("bulk_log", "bulk_log_system", "bulk_alert", "log", "bulk_upload_media",
              "rename_run", "delete_run", "check_artifact_blobs", "bulk_upload_artifact_blob",
              "artifact_log", "log_artifact_use")

    def __init__(self, data_dir: Path, store: ProjectStore, ingest: Ingest,
                 environ: Mapping[str, str] | None = None,
                 query_limits: query_sandbox.Limits | None = None,
                 query_slots: int = 2, heavy_slots: int = 2,
                 answer_max_bytes: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.store = store
        self.ingest = ingest
        self.environ = os.environ if environ is None else environ
        self.query_limits = query_limits or query_sandbox.Limits()
        self.query_slots = Slots(query_slots)
        self.heavy_slots = Slots(heavy_slots)
        self.answer_max_bytes = answer_max_bytes

    def _project(self, project: Any) -> str:
        name = text(project, "project", required=True)
        return storage.validate_project_name(name)

    def _state(self, project: Any) -> ProjectState | None:
        name = self._project(project)
        try:
            return self.store.get(name)
        except storage.ProjectNotFound:
            return None

    def get_all_projects(self) -> list[str]:
        """Every `<name>.db` in the data dir, registries included, as trackio lists them."""
        if not self.data_dir.is_dir():
            return []
        return sorted(path.stem for path in self.data_dir.glob(f"*{storage.DB_SUFFIX}")
                      if storage.PROJECT_NAME.fullmatch(path.stem) and path.is_file())

    def get_runs_for_project(self, project: Any) -> list[dict[str, Any]]:
        state = self._state(project)
        return [] if state is None else runs_for_project(state)

    def get_run_configs(self, project: Any) -> dict[str, Any]:
        state = self._state(project)
        return {} if state is None else dict(state.configs)

    def get_project_summary(self, project: Any) -> dict[str, Any]:
        state = self._state(project)
        runs = [] if state is None else runs_for_project(state)
        if not runs:
            return {"project": project, "num_runs": 0, "runs": [], "last_activity": None}
        with trackio_reads.reading(self.data_dir, project) as conn:
            steps = [] if conn is None else [
                step for step in trackio_reads.max_steps(conn).values() if step is not None]
        # trackio calls the largest step of any run "last_activity".
        return {"project": project, "num_runs": len(runs), "runs": runs,
                "last_activity": max(steps, default=None, key=_step_order)}

    def get_run_summary(self, project: Any, run: Any = None,
                        run_id: Any = None) -> dict[str, Any]:
        name = self._project(project)
        run, run_id = text(run, "run"), text(run_id, "run_id")
        with trackio_reads.reading(self.data_dir, name) as conn:
            if conn is None:
                return _empty_summary(project, run, run_id)
            if run_id is not None:
                run = trackio_reads.run_name_of(conn, run_id) or run
            found = trackio_reads.identity(conn, "metrics", run, run_id)
            count = 0 if found is None else trackio_reads.log_count(conn, found)
            if found is None or count == 0:
                return _empty_summary(project, run, run_id)
            return {"project": project, "run": run, "run_id": run_id, "num_logs": count,
                    "metrics": trackio_reads.metric_names(conn, "metrics", run, run_id,
                                                          frozenset({"timestamp", "step"})),
                    "config": trackio_reads.run_config(conn, found),
                    "last_step": trackio_reads.last_step(conn, found)}

    def _names(self, project: Any, run: Any, run_id: Any, table: str,
               exclude: frozenset[str]) -> list[str]:
        name = self._project(project)
        run, run_id = text(run, "run"), text(run_id, "run_id")
        with trackio_reads.reading(self.data_dir, name) as conn:
            if conn is None:
                return []
            return trackio_reads.metric_names(conn, table, run, run_id, exclude)

    def get_metrics_for_run(self, project: Any, run: Any = None,
                            run_id: Any = None) -> list[str]:
        return self._names(project, run, run_id, "metrics", frozenset({"timestamp", "step"}))

    def get_system_metrics_for_run(self, project: Any, run: Any = None,
                                   run_id: Any = None) -> list[str]:
        return self._names(project, run, run_id, "system_metrics", frozenset({"timestamp"}))

    def _logs(self, project: Any, run: Any, run_id: Any, limit: int, scalar_only: bool,
              system: bool) -> list[dict[str, Any]]:
        state = self._state(project)
        if state is None:
            return []
        info = resolve_run(state, text(run, "run"), text(run_id, "run_id"), system)
        if info is None:
            return []
        return self._run_logs(state, info, limit, scalar_only, system)

    @staticmethod
    def _run_logs(state: ProjectState, info: RunInfo, limit: int, scalar_only: bool,
                  system: bool, budget: ByteBudget | None = None) -> list[dict[str, Any]]:
        table = state.system if system else state.metrics
        if system or scalar_only:
            columns = table.get(info.key)
            return [] if columns is None else scalar_logs(columns, limit, system)
        return full_logs(state, info, limit, budget)

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
        return self._batch(project, clean, limit, flag(scalar_only, "scalar_only"), False)

    def get_system_logs_batch(self, project: Any, runs: Any,
                              max_points: Any = 3000) -> list[dict[str, Any]]:
        clean, limit = batch_runs(runs), _max_points(max_points)
        return self._batch(project, clean, limit, True, True)

    def _batch(self, project: Any, clean: list[dict[str, Any]], limit: int, scalar_only: bool,
               system: bool) -> list[dict[str, Any]]:
        """Each distinct run is read and encoded once, however often the batch names it; the
        answer is made of those encodings (orjson fragments) and refused as soon as their sum
        passes the byte cap, before it is built."""
        state = self._state(project)
        budget = ByteBudget(self.answer_max_bytes)
        encoded: dict[str | None, orjson.Fragment] = {}
        sizes: dict[str | None, int] = {}
        out = []
        for item in clean:
            info = None if state is None else resolve_run(
                state, text(item["run"], "run"), text(item["run_id"], "run_id"), system)
            key = None if info is None else info.key
            if key not in encoded:
                logs = [] if info is None or state is None else self._run_logs(
                    state, info, limit, scalar_only, system, budget.rest())
                body = orjson.dumps(logs, default=str)
                encoded[key], sizes[key] = orjson.Fragment(body), len(body)
            budget.spend(sizes[key] + len(orjson.dumps(item)) + 10)  # + `,"logs":` and a comma
            out.append({**item, "logs": encoded[key]})
        return out

    def _window(self, step: Any, around_step: Any, at_time: Any,
                window: Any) -> tuple[int | None, int | None, str | None, int | None]:
        return (whole(step, "step"), whole(around_step, "around_step"),
                optional_str(at_time, "at_time"), window_size(window))

    def get_metric_values(self, project: Any, run: Any, metric_name: Any, step: Any = None,
                          around_step: Any = None, at_time: Any = None, window: Any = None,
                          run_id: Any = None, max_points: Any = None) -> list[dict[str, Any]]:
        name = self._project(project)
        run, run_id = text(run, "run"), text(run_id, "run_id")
        metric = text(metric_name, "metric_name", required=True)
        filters = self._window(step, around_step, at_time, window)
        limit = whole(max_points, "max_points")
        with trackio_reads.reading(self.data_dir, name) as conn:
            if conn is None:
                return []
            return trackio_reads.metric_values(conn, run, run_id, metric, *filters, limit)

    def get_snapshot(self, project: Any, run: Any = None, run_id: Any = None, step: Any = None,
                     around_step: Any = None, at_time: Any = None,
                     window: Any = None) -> dict[str, Any]:
        name = self._project(project)
        run, run_id = text(run, "run"), text(run_id, "run_id")
        filters = self._window(step, around_step, at_time, window)
        with trackio_reads.reading(self.data_dir, name) as conn:
            if conn is None:
                return {}
            return trackio_reads.snapshot(conn, run, run_id, *filters)

    def get_alerts(self, project: Any, run: Any = None, run_id: Any = None, level: Any = None,
                   since: Any = None) -> list[dict[str, Any]]:
        name = self._project(project)
        run, run_id = text(run, "run"), text(run_id, "run_id")
        level, since = optional_str(level, "level"), optional_str(since, "since")
        with trackio_reads.reading(self.data_dir, name) as conn:
            if conn is None:
                return []
            return trackio_reads.alerts(conn, run, run_id, level, since)

    def get_traces(self, project: Any, run: Any = None, run_id: Any = None, search: Any = None,
                   sort: Any = None, limit: Any = None, offset: Any = 0,
                   step: Any = None) -> list[dict[str, Any]]:
        name = self._project(project)
        run, run_id = text(run, "run"), text(run_id, "run_id")
        search = optional_str(search, "search")
        # trackio falls back to newest first for an unknown sort, and so do we.
        order = sort if isinstance(sort, str) and sort in TRACE_SORTS else None
        count = whole(limit, "limit", minimum=0)
        count = MAX_TRACES if count is None else min(count, MAX_TRACES)
        skip = whole(offset, "offset") or 0
        with trackio_reads.reading(self.data_dir, name) as conn:
            if conn is None:
                return []
            return trackio_reads.traces(conn, run, run_id, search, order, count, max(0, skip),
                                        whole(step, "step"))

    def get_trace_steps(self, project: Any, run: Any = None,
                        run_id: Any = None) -> dict[str, Any]:
        name = self._project(project)
        run, run_id = text(run, "run"), text(run_id, "run_id")
        with trackio_reads.reading(self.data_dir, name) as conn:
            if conn is None:
                return {"total": 0, "steps": []}
            return trackio_reads.trace_steps(conn, run, run_id)

    def get_tab_availability(self, project: Any) -> dict[str, bool]:
        name = self._project(project)
        with trackio_reads.reading(self.data_dir, name) as conn:
            flags = dict.fromkeys(("metrics", "system", "traces", "media", "reports", "alerts",
                                   "artifacts"), False)
            if conn is not None:
                flags = trackio_reads.tab_flags(conn)
        return {"metrics": flags["metrics"], "system": flags["system"],
                "traces": flags["traces"], "media": flags["media"],
                "reports": flags["reports"] or flags["alerts"],
                "files": media.has_project_files(self.data_dir, name),
                "artifacts": flags["artifacts"]}

    def get_settings(self) -> dict[str, Any]:
        """Trackio's dashboard settings, from trackio's own environment variables."""
        env = self.environ
        palette = [c.strip() for c in env.get("TRACKIO_COLOR_PALETTE", "").split(",") if c.strip()]
        try:
            truncate = int(env.get("TRACKIO_TABLE_TRUNCATE_LENGTH", "250"))
        except ValueError:
            truncate = 250
        return {
            "logo_urls": {"light": env.get("TRACKIO_LOGO_LIGHT_URL"),
                          "dark": env.get("TRACKIO_LOGO_DARK_URL")},
            "color_palette": palette or list(DEFAULT_PALETTE),
            "plot_order": [item.strip() for item in env.get("TRACKIO_PLOT_ORDER", "").split(",")
                           if item.strip()],
            "table_truncate_length": truncate,
            "media_dir": str(media.media_root(self.data_dir)),
            "space_id": env.get("SPACE_ID"),
        }

    def get_project_files(self, project: Any) -> list[dict[str, Any]]:
        return media.project_files(self.data_dir, self._project(project))

    def query_project(self, project: Any, query: Any) -> orjson.Fragment:
        """One read-only statement, run in a child process with its own limits and slots."""
        name = self._project(project)
        if not isinstance(query, str):
            raise ApiError("query must be a string")
        path = storage.db_path(self.data_dir, name)
        if not path.is_file():
            raise ApiError(f"Project '{project}' not found.")
        try:
            with self.query_slots.taken():
                return orjson.Fragment(query_sandbox.run(path, name, query, self.query_limits))
        except query_sandbox.QueryError as exc:
            raise ApiError(str(exc)) from None

    def get_run_mutation_status(self, *, caller: Caller) -> dict[str, Any]:
        if caller.can_write:
            return {"spaces": False, "allowed": True, "auth": "local"}
        return {"spaces": False, "allowed": False, "auth": "none"}

    def force_sync(self) -> bool:
        """Every write here is committed before it is acknowledged: nothing waits to sync."""
        return True

    def bulk_log(self, logs: Any, hf_token: Any = None) -> None:
        self.ingest.log(logs)

    def bulk_log_system(self, logs: Any, hf_token: Any = None) -> None:
        self.ingest.log_system(logs)

    def bulk_alert(self, alerts: Any, hf_token: Any = None) -> None:
        self.ingest.alert(alerts)

    def log(self, project: Any, run: Any, metrics: Any, step: Any, hf_token: Any,
            run_id: Any = None) -> None:
        """Trackio's legacy one-row log (old clients); a null step continues the run."""
        self.ingest.log([{"project": project, "run": run, "run_id": run_id, "metrics": metrics,
                          "step": step}])

    def bulk_upload_media(self, uploads: Any, hf_token: Any = None) -> None:
        self.ingest.upload_media(uploads)

    def rename_run(self, project: Any, old_name: Any, new_name: Any,
                   run_id: Any = None) -> bool:
        name = self._project(project)
        old = text(old_name, "old_name", required=True)
        if not isinstance(new_name, str):
            raise ApiError("new_name must be a string")
        try:
            self.ingest.rename_run(name, old, new_name, text(run_id, "run_id"))
        finally:
            self.store.invalidate(name)
        return True

    def delete_run(self, project: Any, run: Any = None, run_id: Any = None) -> bool:
        name = self._project(project)
        try:
            return self.ingest.delete_run(name, text(run, "run"), text(run_id, "run_id"))
        finally:
            self.store.invalidate(name)

    def _artifact_read(self, project: Any, empty: Any, read: Any) -> Any:
        name = self._project(project)
        with trackio_reads.reading(self.data_dir, name) as conn:
            return empty if conn is None else read(conn, name)

    def get_artifacts(self, project: Any) -> list[dict[str, Any]]:
        return self._artifact_read(project, [], lambda conn, _: artifacts.get_artifacts(conn))

    def list_artifacts(self, project: Any) -> list[dict[str, Any]]:
        return self._artifact_read(project, [], lambda conn, _: artifacts.list_artifacts(conn))

    def get_artifact_manifest(self, project: Any, name: Any, spec: Any) -> dict[str, Any] | None:
        artifact = text(name, "name", required=True)
        version = optional_str(spec, "spec")
        return self._artifact_read(project, None, lambda conn, _: artifacts.manifest_record(
            conn, artifact, version))

    def get_run_artifacts(self, project: Any, run: Any = None,
                          run_id: Any = None) -> dict[str, list[dict[str, Any]]]:
        run, run_id = text(run, "run"), text(run_id, "run_id")
        return self._artifact_read(project, {"input": [], "output": []},
                                   lambda conn, name: artifacts.run_artifacts(conn, name, run,
                                                                              run_id))

    def get_run_artifact_counts(self, project: Any) -> list[dict[str, Any]]:
        return self._artifact_read(project, [], artifacts.run_artifact_counts)

    def get_artifact_consumers(self, project: Any, version_id: Any) -> list[dict[str, Any]]:
        version = _version_id(version_id)
        return self._artifact_read(project, [], lambda conn, name: artifacts.consumers(
            conn, name, version))

    def get_artifact_lineage(self, project: Any, version_id: Any) -> dict[str, Any]:
        version = _version_id(version_id)
        empty = {"focus": f"art:{version}", "truncated": False, "nodes": [], "edges": []}
        return self._artifact_read(project, empty, lambda conn, name: artifacts.lineage(
            conn, name, version))

    def get_registries(self, bucket_id: Any = None) -> list[dict[str, Any]]:
        if bucket_id is not None:
            raise NotServed(f"registries in Hugging Face buckets are not served: {HUB}. "
                            "Local registries are (call without bucket_id).")
        return artifacts.list_registries(self.data_dir)

    def get_registry_details(self, registry: Any, bucket_id: Any = None) -> dict[str, Any]:
        try:
            name = artifacts.validate_registry_name(registry)
        except artifacts.ArtifactError as exc:
            raise ApiError(str(exc)) from None
        if bucket_id is not None:
            raise NotServed(f"registries in Hugging Face buckets are not served: {HUB}. "
                            "Local registries are (call without bucket_id).")
        with trackio_reads.reading(self.data_dir, f"{artifacts.REGISTRY_PREFIX}{name}") as conn:
            record = None if conn is None else artifacts.registry_record(conn, name)
            if conn is None or record is None:
                raise ApiError(f"Registry {name!r} does not exist locally.")
            return artifacts.registry_details(conn, record)

    def _digests(self, digests: Any) -> list[str]:
        if not isinstance(digests, list):
            raise ApiError("digests must be a list of sha256 hex digests")
        try:
            return [artifacts.digest(d) for d in digests]
        except artifacts.ArtifactError as exc:
            raise ApiError(str(exc)) from None

    def check_artifact_blobs(self, project: Any, digests: Any,
                             hf_token: Any = None) -> dict[str, list[str]]:
        name = self._project(project)
        return {"present": artifacts.present_blobs(self.data_dir, name, self._digests(digests))}

    def bulk_upload_artifact_blob(self, project: Any, uploads: Any, hf_token: Any) -> None:
        self.ingest.upload_artifact_blobs(self._project(project), uploads)

    def artifact_log(self, project: Any, name: Any, type: Any, description: Any, metadata: Any,
                     manifest: Any, aliases: Any, run_name: Any, run_id: Any, hf_token: Any,
                     overwrite: Any = False) -> dict[str, Any]:
        """Commit an artifact version whose blobs were uploaded (trackio's checks, in order)."""
        project_name = self._project(project)
        try:
            artifacts.validate_name(name)
            if not isinstance(type, str) or not type:
                raise artifacts.ArtifactError(
                    f"Artifact type must be a non-empty string, got {type!r}")
            if not isinstance(overwrite, bool):
                raise artifacts.ArtifactError(
                    f"Artifact overwrite must be a boolean, got {overwrite!r}")
            alias_list = artifacts.validate_aliases(aliases)
            canonical, digests = artifacts.validate_manifest(manifest)
        except artifacts.ArtifactError as exc:
            raise ApiError(str(exc)) from None
        if description is not None and not isinstance(description, str):
            raise ApiError("description must be a string or null")
        if metadata is not None and not isinstance(metadata, dict):
            raise ApiError("metadata must be an object or null")
        present = set(artifacts.present_blobs(self.data_dir, project_name, digests))
        missing = [d for d in digests if d not in present]
        if missing:
            raise ApiError(f"Manifest references blobs not on server: {missing[:5]}"
                           f"{'...' if len(missing) > 5 else ''}")
        content_digest, size = artifacts.manifest_digest(canonical)
        try:
            return self.ingest.commit_artifact(
                project_name, name=name, type=type, description=description,
                manifest=canonical, digest=content_digest, size_bytes=size, metadata=metadata,
                aliases=alias_list, run_name=text(run_name, "run_name"),
                run_id=text(run_id, "run_id"), overwrite=overwrite)
        finally:
            self.store.invalidate(project_name)

    def log_artifact_use(self, project: Any, version_id: Any, run_name: Any, run_id: Any,
                         hf_token: Any) -> None:
        version = _version_id(version_id)
        self.ingest.link_artifact_use(self._project(project), version, text(run_name, "run_name"),
                                      text(run_id, "run_id"))


def _version_id(value: Any) -> int:
    version = whole(value, "version_id")
    if version is None:
        raise ApiError("version_id must be a whole number")
    return version


def _step_order(step: Any) -> tuple[int, Any]:
    """Order steps another writer may have stored as text after the numbers, never failing."""
    return (0, step) if isinstance(step, int | float) else (1, str(step))
