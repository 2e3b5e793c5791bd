"""What a project page shows: runs, panel groups, and the data each panel draws or appends. No Flask."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import charts
from .live import ProjectState, RunInfo
from .series import (
    Columns,
    downsample_indices,
    json_numbers,
    round_significant,
    smooth,
    smoothing_reach,
)


@dataclass(frozen=True)
class View:
    """Every view setting a URL can carry (validated by the view layer)."""

    runs: tuple[str, ...] | None = None  # run keys; None = all
    run_filter: str = ""
    latest_only: bool = False
    group_by: str = ""
    metric_filter: str = ""
    x_axis: str = "step"  # step | time | wall | metric:<name>
    log_y: bool = False
    smoothing: int = 0
    smoother: str = "sma"
    theme: str = "light"
    xmin: float | None = None
    xmax: float | None = None

    @property
    def x_kind(self) -> str:
        return "metric" if self.x_axis.startswith("metric:") else self.x_axis


@dataclass(frozen=True)
class Panel:
    id: str
    metric: str
    title: str
    section: str
    kind: str
    shape_key: str


def compile_filter(pattern: str) -> re.Pattern[str] | None:
    """Case-insensitive regex; an invalid one matches as a literal substring (like Trackio)."""
    if not pattern:
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(pattern), re.IGNORECASE)


def panel_id(prefix: str, metric: str) -> str:
    """A DOM-safe id for a metric name that may hold anything."""
    return f"{prefix}{hashlib.blake2b(metric.encode(), digest_size=6).hexdigest()}"


UNITS = (("utilization", "%"), ("percent", "%"), ("temp", "°C"), ("power", "W"),
         ("mb_per_sec", "MB/s"), ("_gib", "GiB"), ("allocated_memory", "GiB"),
         ("clock", "MHz"))


def unit_of(metric: str) -> str:
    """The unit of a system metric, judged by Trackio's naming (`gpu/0/utilization` → %)."""
    name = metric.lower()
    return next((unit for suffix, unit in UNITS if suffix in name), "")


def section_of(metric: str) -> tuple[str, str]:
    """Split `train/loss` into section `train` and title `loss`; no prefix → `charts`."""
    if "/" in metric:
        head, _, rest = metric.partition("/")
        return head, rest
    return "charts", metric


def visible_runs(state: ProjectState, view: View) -> list[RunInfo]:
    """Runs listed in the sidebar after the run filter, newest first."""
    pattern = compile_filter(view.run_filter)
    runs = state.runs_newest_first()
    if pattern is not None:
        runs = [run for run in runs if pattern.search(run.name)]
    return runs


def selected_runs(state: ProjectState, view: View) -> list[RunInfo]:
    """Runs whose lines are drawn."""
    runs = visible_runs(state, view)
    if view.runs is not None:
        wanted = set(view.runs)
        runs = [run for run in runs if run.key in wanted or run.name in wanted]
    if view.latest_only:
        runs = runs[:1]
    return runs


def run_groups(state: ProjectState, runs: list[RunInfo], key: str) -> list[tuple[str, list[RunInfo]]]:
    """Group runs by a config value (`_Group` and friends included); one group when no key."""
    if not key:
        return [("", runs)]
    groups: dict[str, list[RunInfo]] = {}
    for run in runs:
        value = state.configs.get(run.key, {}).get(key)
        groups.setdefault("(none)" if value is None else str(value), []).append(run)
    return sorted(groups.items())


def group_keys(state: ProjectState) -> list[str]:
    """Config keys worth grouping by: scalar values that differ between runs."""
    seen: dict[str, set[str]] = {}
    for config in state.configs.values():
        for key, value in config.items():
            if isinstance(value, str | int | float | bool) or value is None:
                seen.setdefault(key, set()).add(repr(value))
    return sorted(key for key, values in seen.items() if len(values) > 1)


def metric_panels(state: ProjectState, view: View, system: bool = False) -> list[Panel]:
    """One panel per scalar metric matching the filter, ordered by section then name."""
    names = state.system_names if system else state.metric_names
    pattern = None if system else compile_filter(view.metric_filter)
    runs = selected_runs(state, view)
    table = state.system if system else state.metrics
    panels = []
    for metric in sorted(names):
        if pattern is not None and not pattern.search(metric):
            continue
        section, title = section_of(metric)
        if system and unit_of(metric):
            title = f"{title} ({unit_of(metric)})"
        counts = [table[run.key].finite.get(metric, 0) for run in runs if run.key in table]
        kind = "bar" if counts and max(counts) <= 1 and not system else "line"
        x_kind = "time" if system else view.x_kind
        shape = charts.Shape(kind, x_kind, view.log_y and not system,
                             view.smoothing > 0 and not system and kind == "line", view.theme)
        panels.append(Panel(panel_id("s" if system else "m", metric), metric, title, section,
                            kind, shape.key))
    return panels


def shape_of(panel: Panel) -> charts.Shape:
    kind, x_kind, scale, smoothed, theme = panel.shape_key.split("-")
    return charts.Shape(kind, x_kind, scale == "log", smoothed == "s", theme)


def sections(panels: list[Panel]) -> list[tuple[str, list[Panel]]]:
    grouped: dict[str, list[Panel]] = {}
    for panel in panels:
        grouped.setdefault(panel.section, []).append(panel)
    return list(grouped.items())


def _x_values(columns: Columns, run: RunInfo, view: View, system: bool) -> np.ndarray:
    times = columns.times[: columns.length]
    if system:
        return times - run.system_first_time
    if view.x_axis == "step":
        return columns.steps[: columns.length]
    if view.x_axis == "time":
        return times - run.first_time
    if view.x_axis == "wall":
        return times * 1000.0
    return columns.column(view.x_axis[len("metric:"):])


def _series_arrays(columns: Columns, run: RunInfo, metric: str, view: View, system: bool,
                   start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Return row indices, x, y and smoothed y for rows >= start where x and y are finite."""
    values = columns.column(metric)
    smoothed = None if system else smooth(values, view.smoother, view.smoothing, start)
    x = _x_values(columns, run, view, system)
    keep = np.flatnonzero(np.isfinite(values[start:]) & np.isfinite(x[start:]))
    rows = keep + start
    return rows, x[rows], values[rows], None if smoothed is None else smoothed[keep]


def _encode(rows: np.ndarray, x: np.ndarray, y: np.ndarray, s: np.ndarray | None,
            log_y: bool) -> dict[str, Any]:
    if log_y:
        # A log axis cannot place values <= 0; draw them at a floor below the smallest positive
        # value instead of dropping them silently.
        positive = y[y > 0]
        floor = float(positive.min()) / 10 if positive.size else 1e-12
        y = np.maximum(y, floor)
        if s is not None:
            s = np.maximum(s, floor)
    encoded: dict[str, Any] = {"i": rows.tolist(), "x": json_numbers(round_significant(x, 10)),
                               "y": json_numbers(round_significant(y))}
    if s is not None:
        encoded["s"] = json_numbers(round_significant(s))
    return encoded


def _selected_series(state: ProjectState, view: View, panel: Panel, system: bool):
    """(run, its columns, the fields every series carries) for runs that logged the metric."""
    table = state.system if system else state.metrics
    ranks = state.colour_rank()
    for run in selected_runs(state, view):
        columns = table.get(run.key)
        if columns is not None and panel.metric in columns.metrics:
            yield run, columns, {"r": run.key, "n": run.name, "c": charts.colour(ranks[run.key])}


def full_data(state: ProjectState, view: View, panel: Panel, max_points: int,
              system: bool = False) -> list[dict[str, Any]]:
    """Everything a panel draws: one downsampled series per selected run."""
    log_y = shape_of(panel).log_y
    result = []
    for run, columns, fields in _selected_series(state, view, panel, system):
        rows, x, y, s = _series_arrays(columns, run, panel.metric, view, system, 0)
        if rows.size == 0:
            continue
        keep = downsample_indices(y, max_points)
        if keep.size != rows.size:
            rows, x, y = rows[keep], x[keep], y[keep]
            s = None if s is None else s[keep]
        result.append({**fields, **_encode(rows, x, y, s, log_y)})
    return result


def delta_data(state: ProjectState, view: View, panel: Panel, since_id: int,
               system: bool = False) -> list[dict[str, Any]]:
    """Points the page lacks: per run, replace rows from index `k` on (k covers smoothing reach)."""
    log_y = shape_of(panel).log_y
    reach = 0 if system else smoothing_reach(view.smoother, view.smoothing)
    result = []
    for run, columns, fields in _selected_series(state, view, panel, system):
        first_new = columns.index_after(since_id)
        if first_new >= columns.length:
            continue
        start = max(0, first_new - reach)
        rows, x, y, s = _series_arrays(columns, run, panel.metric, view, system, start)
        if rows.size == 0 and reach == 0:
            continue
        result.append({**fields, "k": start, **_encode(rows, x, y, s, log_y)})
    return result


def epoch(state: ProjectState, view: View, max_points: int) -> int:
    """Deltas are appended until the longest selected series outgrows its downsampled slack.

    While every series fits in max_points the page only ever appends (epoch 0); past that,
    every max_points new rows start a new epoch, and a page from an older epoch is redrawn, so
    a page holds at most about twice max_points per series. The number depends only on the
    data, so viewers at one version share one computation.
    """
    longest = max((state.metrics[run.key].length for run in selected_runs(state, view)
                   if run.key in state.metrics), default=0)
    if longest <= max_points:
        return 0
    return 1 + (longest - max_points) // max_points


def fingerprint(*parts: Any) -> str:
    """A short hash of what a page shows (run list, panel list) to tell when to re-render it."""
    digest = hashlib.blake2b(digest_size=6)
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def sidebar_fingerprint(state: ProjectState, view: View) -> str:
    return fingerprint([(r.key, r.name) for r in visible_runs(state, view)],
                       [r.key for r in selected_runs(state, view)])


def panels_fingerprint(panels: list[Panel], system_panels: list[Panel]) -> str:
    return fingerprint([(p.id, p.shape_key) for p in panels],
                       [(p.id, p.shape_key) for p in system_panels])
