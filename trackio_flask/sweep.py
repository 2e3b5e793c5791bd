"""What the Sweep tab shows: per run a metric summary beside its config, laid out as parallel
coordinates (SVG geometry computed here), a config-vs-metric scatter, the best runs per metric
and the difference between two groups with its confidence interval. No Flask."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import groups
from .live import ProjectState, RunInfo
from .series import overflow_scale

STATS = ("last", "min", "max")
MAX_AXES = 12  # config axes drawn (the first by name past this; the URL may pick others)
MAX_LINES = 2000  # runs drawn as lines; the newest past this, and the page says so
MAX_METRICS_BEST = 24
BEST_N = 5
# Plot geometry of the parallel coordinates and the scatter, in SVG user units.
AXIS_GAP, PLOT_TOP, PLOT_HEIGHT, LEFT = 150, 24, 240, 110
TICK_CHARS = 16  # a categorical tick's label is cut here (the line's tooltip has it whole)
SCATTER_W, SCATTER_H = 560, 260
LOWER_IS_BETTER = ("loss", "err", "perplex", "mse", "mae", "rmse", "nll", "wer", "cer", "dist")


def summary(columns: Any, metric: str, stat: str) -> float:
    """A run's last, smallest or largest finite value of a metric; NaN when it has none."""
    if columns is None or metric not in columns.metrics:
        return math.nan
    values = columns.column(metric)
    values = values[np.isfinite(values)]
    if not values.size:
        return math.nan
    if stat == "last":
        return float(values[-1])
    return float(values.min() if stat == "min" else values.max())


def public_keys(state: ProjectState) -> list[str]:
    """The project's varying public config keys (groups.config_keys), once per version."""
    return state.derived("sweep-keys", lambda s: groups.config_keys(s.configs.values()))


def numeric_keys(state: ProjectState) -> frozenset[str]:
    """Config keys whose every value is a number (the scatter's natural x), once per version."""
    def compute(s: ProjectState) -> frozenset[str]:
        numeric: dict[str, bool] = {}
        for config in s.configs.values():
            for key, value in groups.flatten(config).items():
                if value is not None:
                    numeric[key] = numeric.get(key, True) and _number(value) is not None
        return frozenset(key for key, ok in numeric.items() if ok)

    return state.derived("sweep-numeric-keys", compute)


def summaries(state: ProjectState, metric: str, stat: str) -> dict[str, float]:
    """Every run's summary of a metric, computed once per project version and metric (one
    derived entry per stat, filled as metrics are asked for: the derived store holds few)."""
    by_metric: dict[str, dict[str, float]] = state.derived(("sweep-summaries", stat),
                                                           lambda s: {})
    found = by_metric.get(metric)
    if found is None:
        # Two requests may both compute it; they store the same values.
        found = {key: summary(columns, metric, stat) for key, columns in state.metrics.items()}
        by_metric[metric] = found
    return found


def lower_is_better(metric: str) -> bool:
    """Judged by name, as a reader would: losses and errors go down, the rest up."""
    name = metric.lower()
    return any(word in name for word in LOWER_IS_BETTER)


@dataclass(frozen=True)
class Axis:
    """One vertical axis: a config key (numeric, log-scaled, or categorical) or the metric."""

    name: str
    kind: str  # "num", "log" or "cat"
    lo: float = 0.0
    hi: float = 1.0
    categories: tuple[str, ...] = ()

    def position(self, value: Any) -> float | None:
        """Where a value sits along the axis, 0 (bottom) to 1 (top); None when it has none."""
        if self.kind == "cat":
            label = groups.value_label(value)
            if label not in self.categories:
                return None
            return (self.categories.index(label) + 0.5) / len(self.categories)
        number = _number(value)
        if number is None or (self.kind == "log" and number <= 0):
            return None
        if self.kind == "log":
            number = math.log10(number)
        return 0.5 if self.hi == self.lo else (number - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[tuple[float, str]]:
        """(position, label) pairs to print beside the axis."""
        if self.kind == "cat":
            shown = self.categories if len(self.categories) <= 12 else self.categories[:: math.ceil(
                len(self.categories) / 12)]
            return [(self.position(label) or 0.0, _cut(label)) for label in shown]
        if self.hi == self.lo:
            return [(0.5, _fmt(10 ** self.lo if self.kind == "log" else self.lo))]
        out = []
        for at in (0.0, 0.25, 0.5, 0.75, 1.0):
            raw = self.lo + at * (self.hi - self.lo)
            out.append((at, _fmt(10 ** raw if self.kind == "log" else raw)))
        return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _cut(label: str) -> str:
    return label if len(label) <= TICK_CHARS else label[:TICK_CHARS - 1] + "…"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def make_axis(name: str, values: Sequence[Any]) -> Axis:
    """Numbers get a linear axis (log when they span more than two decades, all positive);
    anything else, or a mix, a categorical one in value order."""
    present = [v for v in values if v is not None]
    numbers = [n for n in map(_number, present) if n is not None]
    if present and len(numbers) == len(present):
        lo, hi = min(numbers), max(numbers)
        if lo > 0 and hi / lo > 100:
            return Axis(name, "log", math.log10(lo), math.log10(hi))
        return Axis(name, "num", lo, hi)
    labels = sorted({groups.value_label(v) for v in present}, key=groups._sort_key)
    return Axis(name, "cat", categories=tuple(labels))


@dataclass(frozen=True)
class Line:
    """One run across the axes: `points` (x, y) in SVG units, None where it has no value."""

    key: str
    name: str
    colour: str
    selected: bool
    metric: float
    values: tuple[str, ...]  # per axis, the value as text (the tooltip)
    points: tuple[tuple[float, float] | None, ...]

    @property
    def ys(self) -> str:
        """Per axis the line's y, "" where it has none: what brushing an axis tests."""
        return ",".join("" if p is None else f"{p[1]:.1f}" for p in self.points)

    @property
    def path(self) -> str:
        """An SVG path: segments join neighbouring axes that both have a value."""
        parts, pen = [], False
        for point in self.points:
            if point is None:
                pen = False
                continue
            parts.append(f"{'L' if pen else 'M'}{point[0]:.1f},{point[1]:.1f}")
            pen = True
        return " ".join(parts)


@dataclass(frozen=True)
class Parallel:
    axes: tuple[Axis, ...]
    lines: tuple[Line, ...]
    width: float
    height: float
    total: int  # runs with a config or the metric, before MAX_LINES

    def axis_x(self, index: int) -> float:
        return LEFT + index * AXIS_GAP


def y_of(position: float) -> float:
    return PLOT_TOP + (1 - position) * PLOT_HEIGHT


def config_values(state: ProjectState, run: RunInfo) -> dict[str, Any]:
    return groups.flatten(state.configs.get(run.key, {}))


def parallel(state: ProjectState, runs: Sequence[RunInfo], keys: Sequence[str], metric: str,
             stat: str, selected: frozenset[str] | None, colours: Mapping[str, str]) -> Parallel:
    """Parallel coordinates over `keys` and the metric's summary (last axis) for `runs`
    (newest first, at most MAX_LINES); `selected` None means every run is selected."""
    drawn = list(runs[:MAX_LINES])
    flat = {run.key: config_values(state, run) for run in drawn}
    known = summaries(state, metric, stat)
    scores = {run.key: known.get(run.key, math.nan) for run in drawn}
    axes = [make_axis(key, [flat[run.key].get(key) for run in drawn]) for key in keys]
    finite = [v for v in scores.values() if math.isfinite(v)]
    axes.append(Axis(f"{stat}({metric})", "num", min(finite, default=0.0),
                     max(finite, default=1.0)))
    lines = []
    for run in drawn:
        values = [flat[run.key].get(key) for key in keys] + [scores[run.key]]
        points = []
        for index, (axis, value) in enumerate(zip(axes, values, strict=True)):
            position = axis.position(value)
            points.append(None if position is None else (LEFT + index * AXIS_GAP, y_of(position)))
        texts = tuple("—" if v is None or (isinstance(v, float) and math.isnan(v))
                      else groups.value_label(v) for v in values)
        lines.append(Line(run.key, run.name, colours.get(run.key, "#888"),
                          selected is None or run.key in selected, scores[run.key], texts,
                          tuple(points)))
    width = LEFT * 2 + (len(axes) - 1) * AXIS_GAP
    return Parallel(tuple(axes), tuple(lines), width, PLOT_TOP * 2 + PLOT_HEIGHT + 20, len(runs))


@dataclass(frozen=True)
class Scatter:
    """One config key (x) against the metric summary (y); points in SVG units."""

    key: str
    x_axis: Axis
    y_axis: Axis
    points: tuple[tuple[float, float, str, str, str, bool], ...]  # x, y, key, name, colour, sel
    width: int = SCATTER_W
    height: int = SCATTER_H
    left: int = LEFT  # the plot's left edge (and right margin)


def scatter(state: ProjectState, runs: Sequence[RunInfo], key: str, metric: str, stat: str,
            selected: frozenset[str] | None, colours: Mapping[str, str]) -> Scatter:
    """Each run with a value for `key` and the metric, as a point."""
    drawn = list(runs[:MAX_LINES])
    values = {run.key: config_values(state, run).get(key) for run in drawn}
    known = summaries(state, metric, stat)
    scores = {run.key: known.get(run.key, math.nan) for run in drawn}
    x_axis = make_axis(key, list(values.values()))
    finite = [v for v in scores.values() if math.isfinite(v)]
    y_axis = Axis(f"{stat}({metric})", "num", min(finite, default=0.0), max(finite, default=1.0))
    points = []
    inner_w, inner_h = SCATTER_W - 2 * LEFT, SCATTER_H - 2 * PLOT_TOP - 20
    for run in drawn:
        px, py = x_axis.position(values[run.key]), y_axis.position(scores[run.key])
        if px is None or py is None or not math.isfinite(scores[run.key]):
            continue
        points.append((LEFT + px * inner_w, PLOT_TOP + (1 - py) * inner_h, run.key, run.name,
                       colours.get(run.key, "#888"), selected is None or run.key in selected))
    return Scatter(key, x_axis, y_axis, tuple(points))


@dataclass(frozen=True)
class Best:
    metric: str
    lower: bool
    runs: tuple[tuple[RunInfo, float], ...]


def best_runs(state: ProjectState, runs: Sequence[RunInfo], metrics: Sequence[str], stat: str,
              n: int = BEST_N) -> list[Best]:
    """Per metric, the `n` best runs by the summary (lowest for losses and errors)."""
    out = []
    for metric in list(metrics)[:MAX_METRICS_BEST]:
        lower = lower_is_better(metric)
        known = summaries(state, metric, stat)
        scored = [(run, known.get(run.key, math.nan)) for run in runs]
        scored = [(run, value) for run, value in scored if math.isfinite(value)]
        scored.sort(key=lambda item: item[1] if lower else -item[1])
        out.append(Best(metric, lower, tuple(scored[:n])))
    return out


@dataclass(frozen=True)
class GroupStat:
    label: str
    keys: tuple[str, ...]
    values: tuple[float, ...]  # the members' finite summaries

    @property
    def mean(self) -> float:
        if not self.values:
            return math.nan
        # A sum of values near 1e308 overflows on the way to a mean that does not.
        values = np.asarray(self.values)
        scale = overflow_scale(values)
        return float(np.mean(values / scale)) * scale


def group_stats(state: ProjectState, runs: Sequence[RunInfo], grouping: groups.Grouping,
                metric: str, stat: str) -> list[GroupStat]:
    """Each group's members and their finite metric summaries."""
    assigned = groups.assign(grouping, [(run.key, run.name) for run in runs], state.configs)
    known = summaries(state, metric, stat)
    out = []
    for label, keys in assigned[: groups.MAX_GROUPS]:
        values = [known.get(key, math.nan) for key in keys]
        out.append(GroupStat(label, tuple(keys), tuple(v for v in values if math.isfinite(v))))
    return out
