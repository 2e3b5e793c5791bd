"""Histograms logged with trackio.Histogram: parsing, resampling, percentiles and SVG geometry.

A stored value is `{"_type": "trackio.histogram", "bins": [edges…], "values": [counts…]}` with
one more edge than counts. Every drawn histogram of a key is resampled onto the key's common
edges (counts spread uniformly within a bin), so runs and steps share one x axis. Geometry is in
SVG user units of a fixed viewBox; templates place the path strings built here, which hold
numbers only (names and keys are escaped by the template).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dashboard import fingerprint
from .live import ProjectState, RichRef, RunInfo
from .rich import load_values, refs_of

KIND = "trackio.histogram"
MAX_BINS = 4096  # trackio caps at 512; anything far beyond is not a histogram we draw
CHART_BINS = 64  # every drawn histogram is resampled to this many bins
MAX_RIDGES = 40  # steps in one ridge plot; more are thinned evenly, oldest and newest kept
MAX_BAND_STEPS = 200  # steps in one percentile-band chart, thinned the same way
# TensorBoard's distribution bands: min, ±1.5σ, ±1σ, ±0.5σ of a normal, median, and max.
BAND_PERCENTILES = (0.0, 6.68, 15.87, 30.85, 50.0, 69.15, 84.13, 93.32, 100.0)
DISPLAYS = ("ridge", "bands")

WIDTH = 600.0  # viewBox width of every chart
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48.0, 64.0, 8.0, 22.0
OVERLAY_HEIGHT = 200.0
BANDS_HEIGHT = 200.0
RIDGE_PEAK = 70.0  # height of the tallest ridge
RIDGE_SPREAD = 140.0  # vertical room the offsets share; each step gets a slice of it…
RIDGE_GAP = (8.0, 28.0)  # …kept between these, so a few steps do not sit on top of each other


@dataclass(frozen=True)
class Frame:
    """Where every chart's plot area sits in its viewBox (heights vary per chart)."""

    width: float = WIDTH
    left: float = PAD_LEFT
    right: float = WIDTH - PAD_RIGHT
    top: float = PAD_TOP
    bottom_pad: float = PAD_BOTTOM


FRAME = Frame()


@dataclass(frozen=True)
class Hist:
    """One logged histogram: strictly increasing edges and non-negative counts."""

    edges: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> float:
        return float(self.counts.sum())


def parse(value: Any) -> Hist | None:
    """A stored trackio.Histogram as a Hist; None for an empty or malformed one."""
    if not isinstance(value, dict) or value.get("_type") != KIND:
        return None
    bins, counts = value.get("bins"), value.get("values")
    if not isinstance(bins, list) or not isinstance(counts, list):
        return None
    if not counts or len(bins) != len(counts) + 1 or len(counts) > MAX_BINS:
        return None
    try:
        edges = np.asarray(bins, dtype=float)
        weights = np.asarray(counts, dtype=float)
    except (TypeError, ValueError):
        return None
    if edges.ndim != 1 or weights.ndim != 1:
        return None
    # Edges far beyond any float range a chart can scale (their span would overflow) are refused.
    if not (np.isfinite(weights).all() and (np.abs(edges) < 1e300).all()):
        return None
    if (weights < 0).any() or not (np.diff(edges) > 0).all():
        return None
    with np.errstate(over="ignore"):
        total = weights.sum()
    if not 0 < total < np.inf:  # nothing to draw, or counts too large to add up
        return None
    return Hist(edges, weights)


def common_edges(hists: Iterable[Hist], bins: int = CHART_BINS) -> np.ndarray:
    """Evenly spaced edges spanning every histogram given."""
    listed = list(hists)
    lo = min(h.edges[0] for h in listed)
    hi = max(h.edges[-1] for h in listed)
    return np.linspace(lo, hi, bins + 1)


def resample(hist: Hist, edges: np.ndarray) -> np.ndarray:
    """The histogram's counts on other edges, each bin's count spread evenly over its width."""
    cumulative = np.concatenate([[0.0], np.cumsum(hist.counts)])
    return np.diff(np.interp(edges, hist.edges, cumulative))


def percentiles(hist: Hist, qs: Sequence[float]) -> np.ndarray:
    """Values below which q percent of the counts lie (linear within a bin)."""
    counts, edges = hist.counts, hist.edges
    cumulative = np.cumsum(counts)
    targets = np.clip(np.asarray(qs, dtype=float), 0, 100) / 100 * cumulative[-1]
    index = np.searchsorted(cumulative, targets, side="left")
    # q = 0 lands on the first bin holding anything, not on empty bins before it.
    index = np.where(targets <= 0, np.flatnonzero(counts > 0)[0], index)
    index = np.clip(index, 0, len(counts) - 1)
    before = cumulative[index] - counts[index]
    inside = np.where(counts[index] > 0, (targets - before) / np.maximum(counts[index], 1e-300), 0)
    return edges[index] + np.clip(inside, 0, 1) * (edges[index + 1] - edges[index])


def thin(items: Sequence[Any], limit: int) -> list[Any]:
    """At most `limit` items, evenly spaced, always keeping the first and the last."""
    if len(items) <= limit:
        return list(items)
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, limit)).astype(int))
    return [items[i] for i in picks]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values (1, 2 or 5 × 10^k apart) inside [lo, hi], about `count` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)),
               key=lambda size: abs((hi - lo) / size - count))
    first = math.ceil(lo / step) * step
    ticks = []
    for index in range(3 * count + 3):  # bounded even where floats cannot resolve the step
        value = first + index * step
        if value > hi + step * 1e-9:
            break
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
    return ticks


def label(value: float) -> str:
    return f"{value:.4g}"


def _num(value: float) -> str:
    return f"{value:.1f}"


class Scale:
    """A linear map from data values onto an SVG coordinate range."""

    def __init__(self, lo: float, hi: float, start: float, end: float) -> None:
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        self.lo, self.hi, self.start, self.end = lo, hi, start, end

    def __call__(self, value: Any) -> Any:
        return self.start + (np.asarray(value, dtype=float) - self.lo) / (self.hi - self.lo) * (
            self.end - self.start)

    def ticks(self, count: int = 5) -> tuple[Tick, ...]:
        return tuple(Tick(float(self(v)), label(v)) for v in nice_ticks(self.lo, self.hi, count))


@dataclass(frozen=True)
class Tick:
    at: float  # SVG coordinate
    text: str


@dataclass(frozen=True)
class Line:
    """One run's latest histogram as a step outline."""

    run: str
    name: str
    colour: str
    step: float
    total: float
    path: str


@dataclass(frozen=True)
class Overlay:
    """The latest histogram of every selected run on one pair of axes."""

    lines: tuple[Line, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    height: float = OVERLAY_HEIGHT


@dataclass(frozen=True)
class RidgeRow:
    step: float
    baseline: float
    path: str  # a closed area: baseline, bin centres, back to the baseline


@dataclass(frozen=True)
class Ridge:
    """One run's histograms over steps, oldest at the back (top), newest in front (bottom)."""

    run: str
    name: str
    colour: str
    rows: tuple[RidgeRow, ...]
    x_ticks: tuple[Tick, ...]
    height: float
    logged: int  # steps logged (rows may be fewer: thinned to MAX_RIDGES)


@dataclass(frozen=True)
class Band:
    path: str
    opacity: float


@dataclass(frozen=True)
class Bands:
    """One run's percentiles over steps: nested bands around the median line."""

    run: str
    name: str
    colour: str
    bands: tuple[Band, ...]
    median: str
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    logged: int
    height: float = BANDS_HEIGHT


@dataclass(frozen=True)
class KeyCharts:
    """Everything the page draws for one histogram key."""

    key: str
    overlay: Overlay
    ridges: tuple[Ridge, ...]
    bands: tuple[Bands, ...]
    unreadable: int  # logged values that were empty or malformed


def overlay(latest: Sequence[tuple[RunInfo, str, float, Hist]], edges: np.ndarray) -> Overlay:
    """Step outlines of each run's histogram on the shared edges."""
    resampled = [resample(h, edges) for _, _, _, h in latest]
    top = max(float(c.max()) for c in resampled)
    x = Scale(float(edges[0]), float(edges[-1]), PAD_LEFT, WIDTH - PAD_RIGHT)
    y = Scale(0.0, top, OVERLAY_HEIGHT - PAD_BOTTOM, PAD_TOP)
    xs, base = x(edges), float(y(0.0))
    lines = []
    for (run, colour, step, hist), counts in zip(latest, resampled, strict=True):
        ys = y(counts)
        parts = [f"M{_num(xs[0])} {_num(base)}"]
        for i, height in enumerate(ys):
            parts.append(f"L{_num(xs[i])} {_num(height)}L{_num(xs[i + 1])} {_num(height)}")
        parts.append(f"L{_num(xs[-1])} {_num(base)}")
        lines.append(Line(run.key, run.name, colour, step, hist.total, "".join(parts)))
    return Overlay(tuple(lines), x.ticks(), y.ticks(4))


def ridge(run: RunInfo, colour: str, steps: Sequence[tuple[float, Hist]], edges: np.ndarray,
          logged: int) -> Ridge:
    """A ridge per step on the shared edges, all scaled by the run's tallest bin."""
    resampled = [resample(h, edges) for _, h in steps]
    top = max(float(c.max()) for c in resampled)
    x = Scale(float(edges[0]), float(edges[-1]), PAD_LEFT, WIDTH - PAD_RIGHT)
    centres = x((edges[:-1] + edges[1:]) / 2)
    left, right = _num(float(x(edges[0]))), _num(float(x(edges[-1])))
    gap = min(max(RIDGE_SPREAD / len(steps), RIDGE_GAP[0]), RIDGE_GAP[1])
    rows = []
    for index, ((step, _), counts) in enumerate(zip(steps, resampled, strict=True)):
        baseline = PAD_TOP + RIDGE_PEAK + index * gap
        heights = baseline - counts / top * RIDGE_PEAK
        points = "".join(f"L{_num(cx)} {_num(cy)}" for cx, cy in zip(centres, heights, strict=True))
        rows.append(RidgeRow(step, baseline,
                             f"M{left} {_num(baseline)}{points}L{right} {_num(baseline)}Z"))
    height = PAD_TOP + RIDGE_PEAK + (len(steps) - 1) * gap + PAD_BOTTOM
    return Ridge(run.key, run.name, colour, tuple(rows), x.ticks(), height, logged)


def bands(run: RunInfo, colour: str, steps: Sequence[tuple[float, Hist]], logged: int) -> Bands:
    """Percentile bands over steps (TensorBoard's distributions view)."""
    at = np.asarray([step for step, _ in steps])
    values = np.asarray([percentiles(h, BAND_PERCENTILES) for _, h in steps])  # steps × 9
    x = Scale(float(at.min()), float(at.max()), PAD_LEFT, WIDTH - PAD_RIGHT)
    y = Scale(float(values.min()), float(values.max()), BANDS_HEIGHT - PAD_BOTTOM, PAD_TOP)
    xs = x(at)
    if len(at) == 1:
        # One step: a short horizontal stroke, so the bands are visible at all.
        xs = np.asarray([xs[0] - 4, xs[0] + 4])
        values = np.repeat(values, 2, axis=0)
    outer = len(BAND_PERCENTILES) - 1
    drawn = []
    for inner in range(outer // 2):
        upper, lower = y(values[:, outer - inner]), y(values[:, inner])
        forward = "".join(f"L{_num(px)} {_num(py)}" for px, py in zip(xs, upper, strict=True))
        back = "".join(f"L{_num(px)} {_num(py)}"
                       for px, py in zip(xs[::-1], lower[::-1], strict=True))
        drawn.append(Band("M" + forward[1:] + back + "Z", 0.12 + 0.08 * inner))
    middle = y(values[:, outer // 2])
    median = "M" + "".join(f"L{_num(px)} {_num(py)}"
                           for px, py in zip(xs, middle, strict=True))[1:]
    return Bands(run.key, run.name, colour, tuple(drawn), median, x.ticks(), y.ticks(4), logged)


def _by_step(refs: Sequence[RichRef]) -> list[RichRef]:
    """One ref per finite step (the last logged), in step order."""
    latest: dict[float, RichRef] = {}
    for ref in refs:
        if ref.step == ref.step:
            latest[ref.step] = ref
    return [latest[step] for step in sorted(latest)]


def key_charts(state: ProjectState, runs: Sequence[RunInfo], colours: dict[str, str],
               display: str = "ridge") -> list[KeyCharts]:
    """Charts per histogram key for these runs, reading only the values they draw."""
    per_key: dict[str, dict[str, list[RichRef]]] = {}
    for ref in refs_of(state, {KIND}, [run.key for run in runs]):
        per_key.setdefault(ref.key, {}).setdefault(ref.run, []).append(ref)
    limit = MAX_RIDGES if display == "ridge" else MAX_BAND_STEPS
    plan: dict[str, dict[str, tuple[list[RichRef], int]]] = {}
    wanted: list[RichRef] = []
    for key, by_run in per_key.items():
        plan[key] = {}
        for run_key, refs in by_run.items():
            stepped = _by_step(refs)
            shown = thin(stepped, limit) if stepped else [refs[-1]]
            plan[key][run_key] = (shown, max(len(stepped), len(shown)))
            wanted.extend(shown)
    loaded = {(ref.row_id, ref.key): parse(value)
              for ref, value in load_values(state.path, state.schema, wanted)}
    charts = []
    for key in sorted(plan):
        charts.append(_charts_of_key(key, plan[key], loaded, runs, colours, display))
    return [chart for chart in charts if chart is not None]


def _charts_of_key(key: str, plan: dict[str, tuple[list[RichRef], int]],
                   loaded: dict[tuple[int, str], Hist | None], runs: Sequence[RunInfo],
                   colours: dict[str, str], display: str) -> KeyCharts | None:
    unreadable = 0
    series: list[tuple[RunInfo, str, list[tuple[float, Hist]], int]] = []
    for run in runs:
        if run.key not in plan:
            continue
        refs, logged = plan[run.key]
        steps = []
        for ref in refs:
            hist = loaded.get((ref.row_id, ref.key))
            if hist is None:
                unreadable += 1
            else:
                steps.append((ref.step, hist))
        if steps:
            series.append((run, colours.get(run.key, "#888"), steps, logged))
    if not series:
        return None
    edges = common_edges(h for _, _, steps, _ in series for _, h in steps)
    latest = [(run, colour, *steps[-1]) for run, colour, steps, _ in series]
    ridges: tuple[Ridge, ...] = ()
    drawn_bands: tuple[Bands, ...] = ()
    if display == "ridge":
        ridges = tuple(ridge(run, colour, steps, edges, logged)
                       for run, colour, steps, logged in series)
    else:
        # Bands need a step for their x axis; a value logged without one has none.
        drawn_bands = tuple(bands(run, colour, steps, logged)
                            for run, colour, steps, logged in series
                            if all(step == step for step, _ in steps))
    return KeyCharts(key, overlay(latest, edges), ridges, drawn_bands, unreadable)


def content_fingerprint(state: ProjectState, runs: Sequence[RunInfo]) -> str:
    """Changes when a histogram of these runs is logged or the runs themselves change."""
    refs = refs_of(state, {KIND}, [run.key for run in runs])
    return fingerprint(len(refs), refs[-1].row_id if refs else 0,
                       [(run.key, run.name) for run in runs])
