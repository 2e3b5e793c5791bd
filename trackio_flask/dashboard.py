"""What a project page shows: a frozen page model built once per view, and the data panels draw.

No Flask here. `build_page(state, view)` computes the run selection, panels and fingerprints
once; the page, the refresh fragment and the panel data all read that one model.

Series wire format (each chart's dataset: JSON islands, refresh deltas, zoom answers). A panel's
data is a list of series, one per run, each an object of parallel arrays (columns, not rows):
    r  run key             n  run name            c  the run's colour (#rrggbb)
    d  merged device panels only: the device (`GPU 0`); r is then the run key and the device
    x  x values: integers when whole (steps; wall time in ms); relative time and system charts
       in seconds to the millisecond; a metric as x to 10 significant digits
    i  row indices of the points (deltas replace by them); left out when equal to x, as when
       steps are logged 0, 1, 2, …
    y  values, rounded to 1/100,000 of the series' range (7 significant digits when it is flat
       or has few points, 6 on a log axis); s  smoothed values, same rounding (if smoothing)
    lo, hi  only when downsampled: per point, the min and max of every value in its x bucket
       (about a pixel column); the point itself is the bucket's last sample
    t  only when downsampled: how many finite points the series has (in the range asked for)
    nan, inf, ninf  x positions of values logged as NaN, +Inf, -Inf (at most one per bucket)
    k  deltas only: the first row index replaced: drop rows i >= k of run r, then append.
Grouped views (`group=`): one series per group instead of per run: `r` the group's key, `n`
"label (n=size)", `g` its size, `y` the aggregate, `lo`/`hi` its band (see `group_data`); a
grouped series' rows are numbered by x (no `i`), so its delta's `k` is a step (group_delta.py).
Deltas carry new rows as they are (no buckets), unless a grouped one reaches far back. Rows
whose x or y is not finite are left out of x/i/y: the line joins their neighbours, and
NaN/±Inf values show as markers instead.

Point budget: the server cannot see a chart's width, so it assumes PLOT_WIDTH px, the plot of one
grid column at a 1400 px wide window. A series longer than two points per assumed pixel is cut
into one bucket per pixel, and the runs of one chart share CHART_POINTS buckets (never fewer
than MIN_BUCKETS per run, never more than MAX_POINTS), so 200 runs cost little more than 16.
Zooming asks for the range again (views/series.py) and gets the same budget over that range:
every point once the range holds few enough.

Line budget: a chart draws at most MAX_LINES runs as lines (the newest selected ones); the
rest of the selection is one more series, r = BAND_KEY: per x bucket the mean of those runs
(y), their min and max (lo, hi) and how many points it stands for (t), so 10,000 selected runs
cost what 51 lines cost on the wire and on screen. A delta carries the band again, whole
(k = 0), when one of its runs logged since the page's version.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, NamedTuple

import numpy as np
import re2

from . import charts, group_ema, group_pyramid, groups, mapped_pages, selection
from .live import ProjectState, RunInfo
from .series import (
    EMA_START,
    Columns,
    bucket_by_x,
    downsample_indices,
    ema_continued,
    json_values,
    logged_nan,
    quantise,
    round_significant,
    smooth,
    smoothing_reach,
    thin_positions,
)
from .store import pyramid

# Assumed plot width in px: at a 1400 px window the grid has 3 columns of ~360 px; less the
# panel's padding, the y axis and the chart menu, ~260 px are plot.
PLOT_WIDTH = 256
CHART_POINTS = 16 * PLOT_WIDTH  # buckets per chart, shared by its runs
MIN_BUCKETS = 32
PYRAMID_MIN_ROWS_PER_BUCKET = 32  # a shorter range is read row by row, not from the pyramid
MAX_LINES = 50  # runs a chart draws as lines; the rest of the selection is one band
BAND_KEY = "\x1eothers"  # the band's `r`: no run key starts with a control character
BAND_COLOUR = "#8c8c8c"
CHROME = {"sidebar": ("hidden", "collapsed"), "navbar": ("hidden",), "accordion": ("hidden",)}


@dataclass(frozen=True)
class View:
    """Every setting a page URL can carry (validated by `params.parse_view`)."""

    runs: tuple[str, ...] | None = None  # run keys or names; None = see `sel`
    sel: str = ""  # "" default (selection.default_keys) | "all" | a selection token
    run_filter: str = ""
    latest_only: bool = False
    group_by: str = ""
    metric_filter: str = ""
    x_axis: str = "step"  # step | time | wall | metric:<name>
    log_y: bool = False
    smoothing: int = 0
    smoother: str = "sma"
    theme: str = "system"  # light | dark | system
    xmin: float | None = None
    xmax: float | None = None
    sidebar: str = ""  # "" | hidden | collapsed
    navbar: str = ""  # "" | hidden
    accordion: str = ""  # "" | hidden
    plots_per_row: int = 0  # `cols` in the URL: 1-6; 0 = as many as fit
    devices: tuple[str, ...] | None = None  # system devices shown ("gpu/0"); None = all
    group: str = ""  # band grouping of the metric charts (groups.parse_grouping); "" = none
    agg: str = "mean"  # a group's line: mean | median
    band: str = "minmax"  # a group's band: groups.BANDS
    hidden_groups: tuple[str, ...] = ()  # group labels whose line and band are not drawn

    @property
    def x_kind(self) -> str:
        return "metric" if self.x_axis.startswith("metric:") else self.x_axis


@dataclass(frozen=True)
class Panel:
    id: str
    metric: str  # the logged name; for a merged device panel, its metric suffix
    title: str
    section: str
    shape: charts.Shape
    subsection: str = ""  # `b` of `a/b/c`
    sources: tuple[tuple[str, str], ...] = ()  # merged device panel: (device, logged name)


@dataclass(frozen=True)
class Section:
    """A collapsible group of panels: its direct panels, then one sub-section per `a/b/…`."""

    name: str
    panels: tuple[Panel, ...]
    subsections: tuple[tuple[str, tuple[Panel, ...]], ...]

    @property
    def count(self) -> int:
        return len(self.panels) + sum(len(items) for _, items in self.subsections)


@dataclass(frozen=True)
class Device:
    """One system device (Trackio's `gpu/<n>/<metric>` naming): id `gpu/0`, label `GPU 0`."""

    id: str
    label: str


def compile_filter(pattern: str) -> Any:
    """Case-insensitive RE2 regex (linear time, whatever the pattern); an invalid one matches
    as a literal substring, like Trackio's filter."""
    if not pattern:
        return None
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = 8 << 20  # a pattern whose automaton needs more is refused, not built
    try:
        return re2.compile(pattern, options)
    except re2.error:
        options.literal = True
        return re2.compile(pattern, options)


def exact_names_pattern(names: list[str]) -> str:
    """A filter matching exactly these names (Trackio's `metrics=a,b` embed parameter)."""
    return "|".join(f"^{re2.escape(name)}$" for name in names)


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


def section_of(metric: str) -> tuple[str, str, str]:
    """Split `train/loss` into section `train` and title `loss`, and `train/sub/grad` into
    section `train`, sub-section `sub` and title `grad` (Trackio's grouping); no prefix →
    section `charts`."""
    parts = metric.split("/")
    if len(parts) == 1:
        return "charts", "", metric
    if len(parts) == 2:
        return parts[0], "", parts[1]
    return parts[0], parts[1], "/".join(parts[2:])


def device_of(metric: str) -> tuple[Device, str] | None:
    """A system metric named `group/sub/name` belongs to device `group/sub` (Trackio labels it
    `GPU sub` for gpu, `GROUP sub` otherwise); None for two-part names like `cpu/percent`."""
    parts = metric.split("/")
    if len(parts) < 3 or not all(parts[:3]):
        return None
    group, sub = parts[0], parts[1]
    label = f"GPU {sub}" if group == "gpu" else f"{group.upper()} {sub}"
    return Device(f"{group}/{sub}", label), "/".join(parts[2:])


def _device_order(device_id: str) -> tuple[str, int, float, str]:
    # Trackio sorts a group's devices numerically when their names are numbers.
    group, _, sub = device_id.partition("/")
    try:
        return group, 0, float(sub), ""
    except ValueError:
        return group, 1, 0.0, sub


def devices_of(names: set[str]) -> tuple[Device, ...]:
    """Every device that system metrics name, in Trackio's order (GPU 0, GPU 1, …, GPU 10)."""
    found = {device.id: device for device, _ in filter(None, map(device_of, names))}
    return tuple(found[key] for key in sorted(found, key=_device_order))


def plot_group(pattern: str) -> str:
    """The section a TRACKIO_PLOT_ORDER pattern speaks for (`train/*` → `train`)."""
    return pattern.split("/")[0] if "/" in pattern else "charts"


@functools.lru_cache(maxsize=64)
def _glob(pattern: str) -> Any:
    """Trackio reads `*` in a plot-order pattern as `.*` of a whole-name regex; RE2 keeps
    that linear, and a pattern it refuses matches nothing."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 1 << 20
    try:
        return re2.compile("^(?:" + pattern.replace("*", ".*") + ")$", options)
    except re2.error:
        return None


def matches_plot_pattern(metric: str, pattern: str) -> bool:
    """Trackio's plot-order match: the exact name, a `prefix/*`, or a `*` wildcard pattern."""
    if pattern == metric:
        return True
    if pattern.endswith("/*") and metric.startswith(pattern[:-1]):
        return True
    if "*" in pattern:
        compiled = _glob(pattern)
        return compiled is not None and compiled.search(metric) is not None
    return False


def order_metrics(names: list[str], plot_order: tuple[str, ...]) -> list[str]:
    """Names matching the first pattern first, then the second's, …; the rest by name."""
    remaining = sorted(names)
    ordered = []
    for pattern in plot_order:
        taken = [name for name in remaining if matches_plot_pattern(name, pattern)]
        ordered += taken
        taken_set = set(taken)
        remaining = [name for name in remaining if name not in taken_set]
    return ordered + remaining


def _section_rank(name: str, plot_order: tuple[str, ...]) -> tuple[float, str]:
    """Sections a pattern names come in pattern order; `charts` (unprefixed metrics) leads
    the rest, which follow by name, as in Trackio."""
    rank = next((at for at, pattern in enumerate(plot_order) if plot_group(pattern) == name),
                math.inf)
    if rank == math.inf and name == "charts":
        rank = -1
    return rank, name


def fingerprint(*parts: Any) -> str:
    """A short hash of what a page shows (run list, panel list) to tell when to re-render it."""
    digest = hashlib.blake2b(digest_size=6)
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def sections(panels: tuple[Panel, ...]) -> list[Section]:
    """Panels (already in display order) grouped into sections and nested sub-sections."""
    direct: dict[str, list[Panel]] = {}
    nested: dict[str, dict[str, list[Panel]]] = {}
    for panel in panels:
        direct.setdefault(panel.section, [])
        if panel.subsection:
            nested.setdefault(panel.section, {}).setdefault(panel.subsection, []).append(panel)
        else:
            direct[panel.section].append(panel)
    return [Section(name, tuple(items),
                    tuple((sub, tuple(subitems)) for sub, subitems in nested.get(name, {}).items()))
            for name, items in direct.items()]


@dataclass(frozen=True, eq=False)
class Page:
    """What one project page shows for one view; built once, read by page, fragment and data."""

    project: str
    view: View
    visible: tuple[RunInfo, ...]  # sidebar runs after the run filter, newest first
    selected: tuple[RunInfo, ...]  # runs whose lines are drawn
    groups: tuple[tuple[str, tuple[RunInfo, ...]], ...]
    group_keys: tuple[str, ...]
    colours: dict[str, str]
    panels: tuple[Panel, ...]
    system_panels: tuple[Panel, ...]
    epoch: int
    x_choices: tuple[str, ...]
    run_count: int
    devices: tuple[Device, ...] = ()  # every device system metrics name
    selection_token: str = ""  # the selection as a token, whatever the URL said (controls.js)
    selection_note: str = ""  # why the URL's selection was not used, if it was not
    run_index: dict[str, int] = dataclasses.field(default_factory=dict)  # token numbering
    selection_default: bool = False  # showing a big project's latest runs by default
    runs_fp: str = ""  # the project's run keys and names
    shown_devices: frozenset[str] = frozenset()  # the devices whose lines are drawn
    # With view.group: per group of the selected runs, (label, run keys, colour); the metric
    # charts draw one aggregate line and band per group instead of a line per run.
    grouped: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    group_choices: tuple[str, ...] = ()  # groupings the control offers (config:…, trackio)
    group_total: int = 0  # groups the selected runs form (only the largest MAX_GROUPS drawn)

    @cached_property
    def selected_keys(self) -> frozenset[str]:
        return frozenset(run.key for run in self.selected)

    default_above: ClassVar[int] = selection.DEFAULT_ABOVE

    @property
    def line_runs(self) -> tuple[RunInfo, ...]:
        """The selected runs each chart draws as a line (the newest MAX_LINES)."""
        return self.selected[:MAX_LINES]

    @property
    def band_runs(self) -> tuple[RunInfo, ...]:
        """The selected runs past MAX_LINES, drawn together as one band."""
        return self.selected[MAX_LINES:]

    @property
    def lines_caption(self) -> str:
        """What a chart shows when it does not draw every selected run as a line."""
        if not self.band_runs:
            return ""
        return (f"{MAX_LINES} newest of {len(self.selected):,} runs as lines; the other "
                f"{len(self.band_runs):,} as one grey band (mean, min–max)")

    @property
    def system_lines_caption(self) -> str:
        """System charts draw the same lines and no band."""
        if not self.band_runs:
            return ""
        return f"the {MAX_LINES} newest of {len(self.selected):,} runs"

    @property
    def groups_listed(self) -> int:
        return min(len(self.visible), SIDEBAR_RUNS)

    @property
    def unlisted_selected(self) -> int:
        listed = {run.key for _, runs in self.groups for run in runs}
        return len(self.selected_keys - listed)

    @property
    def sections(self) -> list[Section]:
        return sections(self.panels)

    @property
    def system_sections(self) -> list[Section]:
        return sections(self.system_panels)

    def panel(self, panel_id: str) -> Panel | None:
        """The metric or system panel with this id."""
        return next((p for p in self.panels + self.system_panels if p.id == panel_id), None)

    @cached_property
    def sidebar_fp(self) -> str:
        # The selection token names the selected runs compactly (a filter and "latest only"
        # narrow it, and are in the view); the run list's keys and names are the project's.
        view = self.view
        return fingerprint(self.runs_fp, view.run_filter, view.latest_only, view.sel,
                           self.selection_token)

    @cached_property
    def panels_fp(self) -> str:
        return fingerprint([(p.id, p.shape) for p in self.panels],
                           [(p.id, p.shape, p.sources) for p in self.system_panels])

    @cached_property
    def structure_fp(self) -> str:
        """Everything but the points: a page with the same structure can be served from cache
        and brought up to date by its first poll."""
        return fingerprint(self.sidebar_fp, self.panels_fp, self.epoch, self.run_count,
                           self.x_choices, self.group_keys, self.devices)

    @property
    def shapes(self) -> set[charts.Shape]:
        return {p.shape for p in self.panels + self.system_panels}


def visible_runs(state: ProjectState, view: View) -> list[RunInfo]:
    """Runs listed in the sidebar after the run filter, newest first."""
    pattern = compile_filter(view.run_filter)
    # Sorted once per project version: 10,000 runs cost a sort a viewer should not pay.
    runs = state.derived(("newest-first",), ProjectState.runs_newest_first)
    if pattern is not None:
        runs = [run for run in runs if pattern.search(run.name)]
    return runs


class Selection(NamedTuple):
    """A view's run selection resolved against the project: the canonical view, the run keys
    it selects (None: every visible run) and why it fell back, if it did."""

    view: View
    keys: frozenset[str] | None
    note: str = ""
    default: bool = False  # the latest runs of a big project, for want of a selection


STALE_SELECTION = ("This link's run selection was made before runs were deleted: showing "
                   "the default selection instead.")


def resolve_selection(state: ProjectState, view: View) -> Selection:
    """Resolve `runs`/`run_ids` lists, `sel` tokens and the default (see selection.py); a long
    list is re-written as a token so every link the page makes stays short."""
    big = len(state.runs) > selection.DEFAULT_ABOVE
    if view.runs is not None:
        wanted = set(view.runs)
        keys = frozenset(run.key for run in state.runs.values()
                         if run.key in wanted or run.name in wanted)
        if sum(map(len, view.runs)) + len(view.runs) > selection.LONG_LIST:
            view = dataclasses.replace(view, runs=None, sel=selection.token_for(state, keys))
        return Selection(view, keys)
    if view.sel == "all":
        # In a small project "all" is the default: one URL, one cache entry.
        return Selection(view if big else dataclasses.replace(view, sel=""), None)
    note = ""
    if view.sel:
        keys = selection.resolve(state, selection.parse(view.sel))
        if keys is not None:
            return Selection(view, keys)
        view, note = dataclasses.replace(view, sel=""), STALE_SELECTION
    if not big:
        return Selection(view, None, note)
    return Selection(view, selection.default_keys(visible_runs(state, view)), note, True)


def selected_runs(state: ProjectState, visible: list[RunInfo], view: View) -> list[RunInfo]:
    """The visible runs the view selects: its selection (see resolve_selection), then
    "latest only"."""
    return selected_by(visible, resolve_selection(state, view).keys, view.latest_only)


def selected_by(visible: list[RunInfo], keys: frozenset[str] | None,
              latest_only: bool) -> list[RunInfo]:
    runs = visible if keys is None else [run for run in visible if run.key in keys]
    return runs[:1] if latest_only else runs


SIDEBAR_RUNS = 200  # the run list shows the newest this many visible runs; a filter finds others


def concrete_token(state: ProjectState, keys: frozenset[str] | None) -> str:
    """The token of the selection (every run for None), which the page's run boxes edit."""
    if keys is None:
        return state.derived(("token-all",), lambda s: selection.token_for(s, s.runs))
    return selection.token_for(state, keys)


def run_groups(state: ProjectState, runs: list[RunInfo],
               key: str) -> tuple[tuple[str, tuple[RunInfo, ...]], ...]:
    """Group runs by a config value (`_Group` and friends included); one group when no key."""
    if not key:
        return (("", tuple(runs)),)
    groups: dict[str, list[RunInfo]] = {}
    for run in runs:
        value = state.configs.get(run.key, {}).get(key)
        groups.setdefault("(none)" if value is None else str(value), []).append(run)
    return tuple((name, tuple(members)) for name, members in sorted(groups.items()))


def group_keys(state: ProjectState) -> tuple[str, ...]:
    """Config keys worth grouping by: scalar values that differ between runs."""
    seen: dict[str, set[str]] = {}
    for config in state.configs.values():
        for key, value in config.items():
            if isinstance(value, str | int | float | bool) or value is None:
                seen.setdefault(key, set()).add(repr(value))
    return tuple(sorted(key for key, values in seen.items() if len(values) > 1))


def _panels(state: ProjectState, view: View, selected: list[RunInfo],
            plot_order: tuple[str, ...]) -> tuple[Panel, ...]:
    """One panel per scalar metric matching the filter, in plot order within its section."""
    pattern = compile_filter(view.metric_filter)
    names = [m for m in state.metric_names if pattern is None or pattern.search(m)]
    by_section: dict[str, list[str]] = {}
    for metric in names:
        by_section.setdefault(section_of(metric)[0], []).append(metric)
    panels = []
    for section in sorted(by_section, key=lambda name: _section_rank(name, plot_order)):
        for metric in order_metrics(by_section[section], plot_order):
            _, subsection, title = section_of(metric)
            # A bar chart when every run logged it at most once; the first longer run decides.
            counts = (state.metrics[run.key].finite.get(metric, 0) for run in selected
                      if run.key in state.metrics)
            first = next(counts, None)
            kind = "line" if first is None or first > 1 or any(n > 1 for n in counts) else "bar"
            shape = charts.Shape(kind, view.x_kind, view.log_y,
                                 view.smoothing > 0 and kind == "line")
            panels.append(Panel(panel_id("m", metric), metric, title, section, shape,
                                subsection))
    return tuple(panels)


def _titled(name: str) -> str:
    unit = unit_of(name)
    return f"{name} ({unit})" if unit else name


def _system_panels(state: ProjectState, shown: frozenset[str],
                   metric_filter: str = "") -> tuple[Panel, ...]:
    """System metrics as Trackio shows them: two-part names one panel each, and per-device
    names (`gpu/0/utilization`, `gpu/1/utilization`) merged into one panel per metric with a
    line per shown device and run. The metric filter applies to their logged names too."""
    shape = charts.Shape("line", "time", False, False)
    direct: dict[str, list[Panel]] = {}
    merged: dict[tuple[str, str], list[tuple[str, str]]] = {}
    pattern = compile_filter(metric_filter)
    for metric in sorted(state.system_names):
        if pattern is not None and not pattern.search(metric):
            continue
        found = device_of(metric)
        if found is None:
            section, _, title = section_of(metric)
            direct.setdefault(section, []).append(
                Panel(panel_id("s", metric), metric, _titled(title), section, shape))
        elif found[0].id in shown:
            device, suffix = found
            group = device.id.partition("/")[0]
            merged.setdefault((group, suffix), []).append((device.id, metric))
    for (group, suffix), logged_names in merged.items():
        logged_names.sort(key=lambda pair: _device_order(pair[0]))
        direct.setdefault(group, []).append(
            Panel(panel_id("d", f"{group}\x00{suffix}"), suffix, _titled(f"{group} {suffix}"),
                  group, shape, sources=tuple(logged_names)))
    return tuple(panel for section in sorted(direct) for panel in direct[section])


def epoch(state: ProjectState, selected: list[RunInfo], max_points: int) -> int:
    """Deltas are appended until the longest selected series outgrows its downsampled slack.

    While every series fits in max_points the page only ever appends (epoch 0); past that,
    every max_points new rows start a new epoch, and a page from an older epoch is redrawn, so
    a page holds at most about twice max_points per series. The number depends only on the
    data, so viewers at one version share one computation.
    """
    longest = max((state.metrics[run.key].length for run in selected if run.key in state.metrics),
                  default=0)
    if longest <= max_points:
        return 0
    return 1 + (longest - max_points) // max_points


def group_epoch(state: ProjectState, view: View, selected: list[RunInfo],
                grouped: tuple[tuple[str, tuple[str, ...], str], ...], concrete: str,
                max_points: int) -> int:
    """A grouped page's epoch. Its charts take deltas (group_delta.py) while the groups keep
    their members and colours and every member's steps only grow, on the step axis: a new
    version then changes a group's aggregate only past its members' former last steps.
    Otherwise each new version redraws them."""
    if view.x_axis != "step" or (view.log_y and view.band not in ("minmax", "none")):
        # A band edge at or below 0 on a log axis sits at a floor each answer picks from its
        # own values: a delta would draw it elsewhere than the page.
        return state.metric_cursor

    def compute(s: ProjectState) -> int:
        ordered = all(columns.steps_sorted() for run in selected
                      if (columns := s.metrics.get(run.key)) is not None)
        base = epoch(s, selected, max_points) if ordered else ("version", s.metric_cursor)
        digest = hashlib.blake2b(repr((base, grouped)).encode(), digest_size=7).digest()
        return int.from_bytes(digest, "big")

    return state.derived(("group-epoch", concrete, view.run_filter, view.latest_only,
                          max_points, view.group), compute)


def build_page(project: str, state: ProjectState, view: View, max_points: int,
               plot_order: tuple[str, ...] = ()) -> Page:
    """Compute what a page shows for this view, once (`plot_order`: TRACKIO_PLOT_ORDER)."""
    devices = devices_of(state.system_names)
    known = frozenset(device.id for device in devices)
    if view.devices is not None and known <= set(view.devices):
        # Every device ticked is the default view: one cache entry, one URL.
        view = dataclasses.replace(view, devices=None)
    # Like Trackio, a checklist with nothing (known) ticked shows every device.
    shown = known.intersection(view.devices or ()) or known
    resolved = resolve_selection(state, view)
    if view.group and resolved.default:
        # Groups cost one line and band each, however many runs they hold: a grouped view
        # covers every run unless the URL names a selection (not a big project's latest few).
        resolved = Selection(resolved.view, None, resolved.note)
    view = resolved.view
    visible = visible_runs(state, view)
    selected = selected_by(visible, resolved.keys, view.latest_only)
    concrete = concrete_token(state, resolved.keys)
    grouped, group_total = band_groups(state, view, selected)
    return Page(
        project=project, view=view, visible=tuple(visible), selected=tuple(selected),
        groups=run_groups(state, visible[:SIDEBAR_RUNS], view.group_by),
        group_keys=state.derived(("group-keys",), group_keys),
        selection_token=concrete,
        selection_note=resolved.note, run_index=selection.index(state),
        selection_default=resolved.default,
        runs_fp=state.derived(("runs-fp",), lambda s: fingerprint(
            [(r.key, r.name) for r in s.runs.values()])),
        colours=state.derived(("colours",), lambda s: {
            key: charts.colour(rank) for key, rank in s.colour_rank().items()}),
        panels=_panels(state, view, selected, plot_order),
        system_panels=_system_panels(state, shown, view.metric_filter),
        # Per selection, once per version: a later viewer of 10,000 runs skips the scan.
        epoch=group_epoch(state, view, selected, grouped, concrete, max_points) if view.group
        else state.derived(("epoch", concrete, view.run_filter, view.latest_only, max_points),
                           lambda s: epoch(s, selected, max_points)),
        x_choices=("step", "time", "wall", *(f"metric:{m}" for m in sorted(state.metric_names))),
        run_count=len(state.runs),
        devices=devices, shown_devices=shown,
        grouped=grouped, group_choices=group_choices(state), group_total=group_total,
    )


def group_choices(state: ProjectState) -> tuple[str, ...]:
    """The groupings a project offers: Trackio's group when runs have one, then every public
    config key (nested ones dotted) that takes more than one value."""
    def compute(s: ProjectState) -> tuple[str, ...]:
        configs = list(s.configs.values())
        lead = ("trackio",) if groups.has_trackio_groups(configs) else ()
        return lead + tuple(f"config:{key}" for key in groups.config_keys(configs))

    return state.derived("group-choices", compute)


def band_groups(state: ProjectState, view: View, selected: list[RunInfo]
                ) -> tuple[tuple[tuple[str, tuple[str, ...], str], ...], int]:
    """The selected runs in the view's groups, the largest MAX_GROUPS, each with its colour;
    and how many groups there are in all."""
    grouping = groups.parse_grouping(view.group)
    if grouping is None:
        return (), 0
    assigned = groups.assign(grouping, [(run.key, run.name) for run in selected], state.configs)
    total = len(assigned)
    if total > groups.MAX_GROUPS:
        keep = {label for label, _ in sorted(assigned, key=lambda g: -len(g[1]))[:groups.MAX_GROUPS]}
        assigned = [(label, keys) for label, keys in assigned if label in keep]
    return tuple((label, tuple(keys), charts.colour(index))
                 for index, (label, keys) in enumerate(assigned)), total


def group_members(state: ProjectState, page: Page, panel: Panel
                  ) -> Iterator[tuple[str, str, list[tuple[RunInfo, Columns]]]]:
    """Per shown group with a member that logged the panel's metric: its label, colour and
    such members."""
    hidden = set(page.view.hidden_groups)
    for label, keys, colour in page.grouped:
        if label in hidden:
            continue
        members = [(state.runs[key], columns) for key in keys
                   if (columns := state.metrics.get(key)) is not None
                   and panel.metric in columns.metrics]
        if members:
            yield label, colour, members


def group_aggregates(state: ProjectState, page: Page, panel: Panel
                     ) -> Iterator[tuple[str, str, int, groups.Aggregate]]:
    """Per group with a member that logged the panel's metric: its label, colour, number of
    such members and its aggregate over every logged point."""
    view = page.view
    for label, colour, members in group_members(state, page, panel):
        series = [(_x_values(columns, run, view, False), columns.column(panel.metric))
                  for run, columns in members]
        yield label, colour, len(members), groups.aggregate(series, view.agg, view.band)


def group_data(state: ProjectState, page: Page, panel: Panel, max_points: int,
               x_range: tuple[float, float] | None = None, plot_width: int = PLOT_WIDTH
               ) -> list[dict[str, Any]]:
    """A grouped metric panel: per group, its aggregate line (`y`, smoothed `s`) and band
    (`lo`, `hi`) over the members' aligned x, computed on every logged point and only then
    downsampled; `n` names the group with its size, `g` is that size, `r` the group's key.

    A long min–max view on the step axis reads the members' pyramids instead (same answer,
    O(buckets) values per member: group_pyramid), and a zoom on steps aggregates only the
    rows around its range."""
    buckets = buckets_per_series(len(page.grouped), max_points, plot_width)
    return [line for label, colour, members in group_members(state, page, panel)
            if (line := group_line(state, page.view, panel, label, colour, members, buckets,
                                   x_range)) is not None]


def group_line(state: ProjectState, view: View, panel: Panel, label: str, colour: str,
               members: list[tuple[RunInfo, Columns]], buckets: int,
               x_range: tuple[float, float] | None = None) -> dict[str, Any] | None:
    """One group's series of a grouped panel (see `group_data`); None when it has no point."""
    cursor = state.metric_cursor
    small = None if x_range is not None else \
        _group_from_pyramids(members, view, panel.metric, buckets)
    smoothed = None
    if small is None:
        agg = groups.aggregate([group_series(run, columns, view, panel.metric, x_range)
                                for run, columns in members], view.agg, view.band)
        for _run, columns in members:
            mapped_pages.done_with(columns, (panel.metric,))
        if x_range is not None:
            first = max(0, int(np.searchsorted(agg.x, x_range[0], side="left")) - 1)
            end = int(np.searchsorted(agg.x, x_range[1], side="right")) + 1
            agg = groups.sliced(agg, first, end)
        if agg.x.size == 0:
            return None
        smoothed = smoothed_line(state, members, view, panel.metric, agg, None, cursor) \
            if x_range is None else smooth(agg.y, view.smoother, view.smoothing)
        if smoothed is not None:
            smoothed = smoothed[groups.bucket_ends(agg.x, buckets)]
        small = groups.downsample(agg, buckets)
    return group_wire(label, colour, len(members), small, smoothed, view, panel.shape.log_y,
                      buckets)


def group_wire(label: str, colour: str, size: int, small: groups.Aggregate,
               smoothed: np.ndarray | None, view: View, log_y: bool, buckets: int,
               **fields: Any) -> dict[str, Any]:
    """One group's series on the wire (see the module docstring)."""
    arrays = Arrays(small.x, small.x, small.y, smoothed, {})
    key = "group:" + hashlib.blake2b(label.encode(), digest_size=6).hexdigest()
    return {"r": key, "n": f"{label} (n={size})", "c": colour, "g": size, **fields,
            **_encode(arrays, view, False, log_y, _Band(small.lo, small.hi), 0, buckets)}


def smoothed_line(state: ProjectState, members: list[tuple[RunInfo, Columns]], view: View,
                  metric: str, agg: groups.Aggregate, kept: group_ema.Mark | None,
                  cursor: int) -> np.ndarray | None:
    """A group line smoothed (`agg` is the whole line, or all of it past `kept`); on the step
    axis an EMA's state at the line's end is kept for the next refresh, as of metric cursor
    `cursor` (read before the rows were)."""
    if not (view.smoother == "ema" and view.smoothing) or agg.x.size == 0:
        return smooth(agg.y, view.smoother, view.smoothing)
    smoothed, after = ema_continued(agg.y, min(view.smoothing, 99.9) / 100.0,
                                    EMA_START if kept is None else kept.state)
    if view.x_axis == "step":  # only step-axis pages take deltas (group_epoch)
        state.group_ema.keep(group_ema.line_key(metric, [run.key for run, _ in members],
                                                view.agg, view.smoothing),
                             group_ema.Mark(float(agg.x[-1]), cursor, after))
    return smoothed


def _group_from_pyramids(members: list[tuple[RunInfo, Columns]], view: View, metric: str,
                         buckets: int) -> groups.Aggregate | None:
    """A group's downsampled min–max aggregate read from its members' pyramids; None when a
    member has none (or a raw tail too long), the view smooths, uses another x axis or band,
    or the members are short enough to read whole."""
    if view.x_axis != "step" or view.smoothing or view.band != "minmax":
        return None
    readers, rows = [], 0
    for _run, columns in members:
        held = columns.pyramid
        if held is None or metric not in held.series \
                or columns.length - held.length > pyramid.TAIL_ROWS or not columns.steps_sorted():
            return None
        reader = pyramid.Reader(columns.metrics[metric], columns.length, held.series[metric],
                                held.capacity, held.length)
        readers.append(group_pyramid.Member(columns.steps[: columns.length], reader,
                                            columns.finite.get(metric, 0)))
        rows += columns.length
    if rows <= PYRAMID_MIN_ROWS_PER_BUCKET * buckets:
        return None
    small = group_pyramid.reduce_group(readers, view.agg, buckets)
    for _run, columns in members:
        mapped_pages.done_with(columns, (metric,), pyramid=True)
    return small


def group_series(run: RunInfo, columns: Columns, view: View, metric: str,
                 x_range: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """One member's (x, values) for its group's aggregate: every row, or for a zoom on sorted
    steps the rows of the range and the finite neighbours the aggregate there depends on."""
    values = columns.column(metric)
    if x_range is None or view.x_axis != "step" or not columns.steps_sorted():
        return _x_values(columns, run, view, False), values
    steps = columns.steps[: columns.length]
    low = finite_row(values, int(np.searchsorted(steps, x_range[0], side="left")) - 1, -1)
    high = finite_row(values, int(np.searchsorted(steps, x_range[1], side="right")), 1)
    start = 0 if low < 0 else low
    stop = columns.length if high < 0 else high + 1
    return steps[start:stop], values[start:stop]


def finite_row(values: np.ndarray, row: int, direction: int) -> int:
    """The nearest row at or past `row` (towards lower rows for direction -1) holding a finite
    value; -1 when there is none. Looks a few rows away first: most values are finite."""
    window = 64
    while 0 <= row < values.size:
        low, high = (max(0, row - window + 1), row + 1) if direction < 0 else \
            (row, min(values.size, row + window))
        hits = np.flatnonzero(np.isfinite(values[low:high]))
        if hits.size:
            return low + int(hits[-1] if direction < 0 else hits[0])
        row = low - 1 if direction < 0 else high
        window *= 8
    return -1
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


class Arrays(NamedTuple):
    """One run's drawable points (finite x and y) and where its non-finite values sit."""

    rows: np.ndarray
    x: np.ndarray
    y: np.ndarray
    s: np.ndarray | None
    marks: dict[str, np.ndarray]  # "nan" | "inf" | "ninf" -> x positions


def _series_arrays(columns: Columns, run: RunInfo, metric: str, view: View, system: bool,
                   start: int) -> Arrays:
    """Rows >= start where x and y are finite, and the x of values logged as NaN or ±Inf."""
    values = columns.column(metric)
    smoothed = None if system else smooth(values, view.smoother, view.smoothing, start,
                                          columns.memo(metric))
    x = _x_values(columns, run, view, system)
    tail, x_tail = values[start:], x[start:]
    x_ok = np.isfinite(x_tail)
    finite = np.isfinite(tail)
    keep = np.flatnonzero(finite & x_ok)
    rows = keep + start
    marks: dict[str, np.ndarray] = {}
    if not finite.all():
        for name, mask in (("nan", logged_nan(tail)), ("inf", tail == np.inf),
                           ("ninf", tail == -np.inf)):
            positions = x_tail[mask & x_ok]
            if positions.size:
                marks[name] = positions
    return Arrays(rows, x[rows], values[rows], None if smoothed is None else smoothed[keep], marks)


def _x_json(x: np.ndarray, view: View, system: bool) -> list[Any]:
    if system or view.x_axis == "time":
        return json_values(np.round(x, 3))  # seconds, to the millisecond
    if view.x_axis == "wall":
        return json_values(np.round(x))  # epoch milliseconds
    return json_values(x if view.x_axis == "step" and np.array_equal(x, np.round(x))
                       else round_significant(x, 10))


def _y_json(values: np.ndarray, span: float | None, log_y: bool) -> list[Any]:
    if log_y:
        return json_values(round_significant(values, 6))
    if span is None:
        return json_values(round_significant(values))
    return json_values(quantise(values, span))


def _encode(a: Arrays, view: View, system: bool, log_y: bool, reduced: Any = None,
            total: int = 0, buckets: int = PLOT_WIDTH) -> dict[str, Any]:
    """The wire fields of one series (see the module docstring)."""
    y, s = a.y, a.s
    lo = hi = None
    if reduced is not None:
        lo, hi = reduced.lo, reduced.hi
    if log_y:
        # A log axis cannot place values <= 0; draw them at a floor below the smallest positive
        # value instead of dropping them silently.
        positive = y[y > 0]
        floor = float(positive.min()) / 10 if positive.size else 1e-12
        y = np.maximum(y, floor)
        s = None if s is None else np.maximum(s, floor)
        if lo is not None:
            lo, hi = np.maximum(lo, floor), np.maximum(hi, floor)
    span = None
    if y.size > 8:
        # Values of both signs near 1e308 span more than a float holds: the span is then inf,
        # which quantise already takes as "no usable range" (7 significant digits instead).
        with np.errstate(over="ignore"):
            span = float((hi.max() - lo.min()) if lo is not None else np.ptp(y))
    encoded: dict[str, Any] = {"x": _x_json(a.x, view, system)}
    if not np.array_equal(a.rows, a.x):
        encoded["i"] = a.rows.tolist()
    encoded["y"] = _y_json(y, span, log_y)
    if s is not None:
        encoded["s"] = _y_json(s, span, log_y)
    if lo is not None:
        encoded["lo"] = _y_json(lo, span, log_y)
        encoded["hi"] = _y_json(hi, span, log_y)
    if total:
        encoded["t"] = total
    for name, positions in a.marks.items():
        encoded[name] = _x_json(thin_positions(positions, buckets), view, system)
    return encoded


class Source(NamedTuple):
    """One line of a panel: a run's columns and the logged name it draws."""

    run: RunInfo
    columns: Columns
    metric: str
    fields: dict[str, str]  # what every series of this line carries on the wire


def sources(state: ProjectState, page: Page, panel: Panel, system: bool) -> Iterator[Source]:
    """The lines of a panel: per run that logged the metric (per shown device and run for a
    merged device panel: `r` then names the run and the device, `d` is the device's label)."""
    table = state.system if system else state.metrics
    labels = {device.id: device.label for device in page.devices}
    for run in page.line_runs:
        columns = table.get(run.key)
        if columns is None:
            continue
        fields = {"r": run.key, "n": run.name, "c": page.colours[run.key]}
        if not panel.sources:
            if panel.metric in columns.metrics:
                yield Source(run, columns, panel.metric, fields)
            continue
        for device, metric in panel.sources:
            if metric in columns.metrics:
                label = labels.get(device, device)
                yield Source(run, columns, metric,
                             {**fields, "r": f"{run.key}\x1f{device}", "d": label})


def buckets_per_series(runs: int, max_points: int, plot_width: int = PLOT_WIDTH) -> int:
    """How many x buckets each of a chart's `runs` series gets (see the module docstring); a
    chart known to be wider (full screen) asks with its `plot_width`."""
    share = CHART_POINTS * plot_width // PLOT_WIDTH // max(runs, 1)
    return max(1, min(max_points, plot_width, max(MIN_BUCKETS, share)))


def _in_range(a: Arrays, x_range: tuple[float, float]) -> tuple[Arrays, slice | None]:
    """The points inside [lo, hi] plus one neighbour on each side (lines run to the edges)."""
    low, high = x_range
    marks = {name: xs[(xs >= low) & (xs <= high)] for name, xs in a.marks.items()}
    marks = {name: xs for name, xs in marks.items() if xs.size}
    if a.x.size and np.all(a.x[1:] >= a.x[:-1]):
        first = int(np.searchsorted(a.x, low, side="left"))
        end = int(np.searchsorted(a.x, high, side="right"))
        keep = np.arange(max(0, first - 1), min(a.x.size, end + 1))
        core = slice(first - keep[0], end - keep[0]) if keep.size else None
    else:
        keep = np.flatnonzero((a.x >= low) & (a.x <= high))
        core = None
    picked = Arrays(a.rows[keep], a.x[keep], a.y[keep],
                    None if a.s is None else a.s[keep], marks)
    return picked, core


def _reduce(a: Arrays, buckets: int, core: slice | None,
            x_range: tuple[float, float] | None) -> tuple[Arrays, Any]:
    """Bucket a long series by x (sorted x) or keep its extremes (MinMaxLTTB, unsorted x)."""
    sorted_x = a.x.size < 2 or bool(np.all(a.x[1:] >= a.x[:-1]))
    if not sorted_x:
        keep = downsample_indices(a.y, 2 * buckets)
        return Arrays(a.rows[keep], a.x[keep], a.y[keep],
                      None if a.s is None else a.s[keep], a.marks), None
    inner = core if core is not None else slice(0, a.x.size)
    span = x_range if x_range is not None else None
    reduced = bucket_by_x(a.x[inner], a.y[inner], buckets, span)
    picked = reduced.picked + inner.start
    lo, hi = reduced.lo, reduced.hi
    # Neighbours outside a zoomed range stay single points (their own min and max).
    before = np.arange(0, inner.start)
    after = np.arange(inner.stop, a.x.size)
    picked = np.concatenate((before, picked, after))
    lo = np.concatenate((a.y[before], lo, a.y[after]))
    hi = np.concatenate((a.y[before], hi, a.y[after]))
    return Arrays(a.rows[picked], a.x[picked], a.y[picked],
                  None if a.s is None else a.s[picked], a.marks), _Band(lo, hi)


class _Band(NamedTuple):
    lo: np.ndarray
    hi: np.ndarray


def drawn(state: ProjectState, page: Page, panel: Panel, max_points: int, system: bool = False,
          x_range: tuple[float, float] | None = None, plot_width: int = PLOT_WIDTH
          ) -> Iterator[tuple[Source, Arrays, Any, int, int]]:
    """Per line, the points a panel draws (reduced to the point budget) with their band, the
    count of points they stand for (0 when all are drawn) and the bucket count."""
    found = list(sources(state, page, panel, system))
    buckets = buckets_per_series(len(found), max_points, plot_width)
    # Up to two points per assumed pixel column are sent as they are.
    raw_limit = min(max_points, 2 * buckets)
    for source in found:
        if panel.shape.kind == "line":
            read = _from_pyramid(source, page.view, system, x_range, buckets, raw_limit)
            if read is not None:
                yield source, *read, buckets
                continue
        a, core = logged(source, page, system, x_range)
        if a.rows.size == 0 and not a.marks:
            mapped_pages.done_with(source.columns, (source.metric,))
            continue
        count = a.rows.size
        reduced = None
        if count > raw_limit and panel.shape.kind == "line":
            a, reduced = _reduce(a, buckets, core, x_range)
        elif count > raw_limit:
            keep = downsample_indices(a.y, raw_limit)
            a = Arrays(a.rows[keep], a.x[keep], a.y[keep], None if a.s is None else a.s[keep],
                       a.marks)
        # Smoothing, other x axes, system charts and zooms read rows: the folios they touched
        # (2 MB each, whatever was read of them) would otherwise stay in this worker's RSS.
        mapped_pages.done_with(source.columns, (source.metric,))
        yield source, a, reduced, count if a.rows.size != count else 0, buckets


def _from_pyramid(source: Source, view: View, system: bool,
                  x_range: tuple[float, float] | None, buckets: int, raw_limit: int
                  ) -> tuple[Arrays, _Band, int] | None:
    """What `_reduce` gives for a long series on a step axis, read from the store's min/max
    pyramid: O(buckets × log rows) values instead of every row. None when the pyramid cannot
    answer (no store, smoothing, another x axis, unsorted steps) or few points are in range."""
    columns = source.columns
    held = columns.pyramid
    if held is None or system or view.x_axis != "step" or view.smoothing \
            or source.metric not in held.series \
            or columns.length - held.length > pyramid.TAIL_ROWS or not columns.steps_sorted():
        return None
    reader = pyramid.Reader(columns.metrics[source.metric], columns.length,
                            held.series[source.metric], held.capacity, held.length)
    # A window of a few thousand rows is cheaper to read than to walk the levels for.
    reduced = pyramid.reduce(reader, columns.steps, buckets, raw_limit, x_range,
                             min_rows=PYRAMID_MIN_ROWS_PER_BUCKET * buckets)
    if reduced is None:
        return None
    rows, values, steps = reduced.rows, reader.values, columns.steps
    marks = {}
    for name, mask in (("nan", logged_nan), ("inf", lambda v: v == np.inf),
                       ("ninf", lambda v: v == -np.inf)):
        hits = reduced.marked[mask(values[reduced.marked])]
        if hits.size:
            marks[name] = steps[hits]
    arrays = Arrays(rows, steps[rows], values[rows], None, marks)
    total = reduced.count if rows.size != reduced.count else 0
    # The walk read a few values at every pixel column's edges, but the kernel maps whole
    # (2 MB) folios: without this a full view left every column of the store in the worker's
    # RSS. The values above are copies; the next read maps the page cache back cheaply.
    mapped_pages.done_with(columns, (source.metric,), pyramid=True)
    return arrays, _Band(reduced.lo, reduced.hi), total


def logged(source: Source, page: Page, system: bool,
           x_range: tuple[float, float] | None = None) -> tuple[Arrays, slice | None]:
    """Every finite point of one line (in x_range plus a neighbour each side, when given)."""
    if x_range is not None:
        zoomed = _zoomed(source, page.view, system, x_range)
        if zoomed is not None:
            return zoomed
    a = _series_arrays(source.columns, source.run, source.metric, page.view, system, 0)
    if x_range is None:
        return a, None
    return _in_range(a, x_range)


def _zoomed(source: Source, view: View, system: bool,
            x_range: tuple[float, float]) -> tuple[Arrays, slice | None] | None:
    """A step range read from its rows only (O(window), not O(run)): rows found by binary
    search on sorted steps, with a margin for the centred smoothing. None when that cannot give
    the same answer as the whole series: EMA smoothing (it depends on every earlier point), or
    a metric too sparse for the margin to hold a neighbour on each side."""
    columns = source.columns
    if system or view.x_axis != "step" or (view.smoother == "ema" and view.smoothing > 0) \
            or not columns.steps_sorted():
        return None
    steps = columns.steps[: columns.length]
    margin = 2 + (max(3, view.smoothing) if view.smoothing > 1 else 0)
    low = max(0, int(np.searchsorted(steps, x_range[0], side="left")) - margin)
    high = min(columns.length, int(np.searchsorted(steps, x_range[1], side="right")) + margin)
    if high - low >= columns.length:
        return None
    a = _series_arrays(columns.window(low, high, (source.metric,)), source.run, source.metric,
                       view, system, 0)
    a = a._replace(rows=a.rows + low)
    # The line runs to the edges through the nearest point outside: it must be in the window.
    if (low > 0 and not (a.x < x_range[0]).any()) or \
            (high < columns.length and not (a.x > x_range[1]).any()):
        return None
    return _in_range(a, x_range)


def full_data(state: ProjectState, page: Page, panel: Panel, max_points: int,
              system: bool = False, x_range: tuple[float, float] | None = None,
              plot_width: int = PLOT_WIDTH) -> list[dict[str, Any]]:
    """Everything a panel draws: one series per selected run, reduced to the point budget.

    With `x_range`, only that x range (plus one point each side), with the same budget: what
    a zoom shows at full resolution once the range holds few enough points. `plot_width`: the
    chart's width in px when known (full screen), for a bucket per pixel column.
    """
    if page.view.group and not system:
        return group_data(state, page, panel, max_points, x_range, plot_width)
    series = [{**source.fields, **_encode(a, page.view, system, panel.shape.log_y, reduced,
                                          total, buckets)}
              for source, a, reduced, total, buckets in drawn(state, page, panel, max_points,
                                                              system, x_range, plot_width)]
    band = None if system else band_series(state, page, panel, x_range, plot_width)
    return series if band is None else [*series, band]


def band_series(state: ProjectState, page: Page, panel: Panel,
                x_range: tuple[float, float] | None = None,
                plot_width: int = PLOT_WIDTH) -> dict[str, Any] | None:
    """The selected runs past MAX_LINES as one series: per x bucket (a pixel column) their
    mean (y), min (lo) and max (hi); None when every selected run is a line."""
    if not page.band_runs or panel.shape.kind != "line" or panel.sources:
        return None
    parts, runs = band_points(state, page.band_runs, panel.metric, page.view)
    if x_range is not None:
        parts = [(x[inside], y[inside]) for x, y in parts
                 if (inside := (x >= x_range[0]) & (x <= x_range[1])).any()]
    if not runs or not parts:
        return None
    low, high = x_range if x_range is not None else (
        min(float(x.min()) for x, _ in parts), max(float(x.max()) for x, _ in parts))
    width = (high - low) / plot_width
    counts = np.zeros(plot_width, dtype=np.int64)
    sum_x, sum_y = np.zeros(plot_width), np.zeros(plot_width)
    lo = np.full(plot_width, np.inf)
    hi = np.full(plot_width, -np.inf)
    # Chunk by chunk into the pixel columns: the points of every run are never one array.
    for x, y in parts:
        if not width > 0:
            column = np.zeros(x.size, dtype=np.int64)
        else:
            column = ((x - low) / width).astype(np.int64)
            np.clip(column, 0, plot_width - 1, out=column)
        counts += np.bincount(column, minlength=plot_width)
        sum_x += np.bincount(column, weights=x, minlength=plot_width)
        sum_y += np.bincount(column, weights=y, minlength=plot_width)
        np.minimum.at(lo, column, y)
        np.maximum.at(hi, column, y)
    used = counts > 0
    mean_x = sum_x[used] / counts[used]
    mean_y = sum_y[used] / counts[used]
    if page.view.x_axis == "step":
        mean_x = np.round(mean_x)
    rows = np.arange(mean_x.size)
    arrays = Arrays(rows, mean_x, mean_y, None, {})
    fields = {"r": BAND_KEY, "n": f"{runs:,} more runs (mean, min–max)", "c": BAND_COLOUR}
    return {**fields, **_encode(arrays, page.view, False, panel.shape.log_y,
                                _Band(lo[used], hi[used]), int(counts.sum()), plot_width)}


BAND_CHUNK = 512  # runs gathered before their mapped pages are let go (mapped_pages)
RELEASE_ABOVE = 1000  # bands over fewer runs keep their pages: little memory, no re-reads


def band_points(state: ProjectState, runs: tuple[RunInfo, ...], metric: str, view: View
                ) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Every finite (x, y) point of `metric` over `runs`, as one pair of arrays per chunk of
    runs, and how many of the runs logged it.

    One concatenation of views per chunk instead of a filtered copy per run (10,000 runs cost
    a few milliseconds of Python); each chunk's store pages are then let go, so a band over
    every run of a big project does not leave the whole store in the worker's RSS.
    """
    parts, logged_by = [], 0
    for first in range(0, len(runs), BAND_CHUNK):
        xs, ys, read = [], [], []
        for run in runs[first:first + BAND_CHUNK]:
            columns = state.metrics.get(run.key)
            if columns is None:
                continue
            values = columns.metrics.get(metric)
            if values is None:
                continue
            ys.append(values[: columns.length])
            xs.append(_x_values(columns, run, view, False))
            read.append(columns)
        if not ys:
            continue
        x, y = np.concatenate(xs), np.concatenate(ys)
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.any():
            parts.append((x[keep], y[keep]))
        logged_by += len(ys)
        if len(runs) > RELEASE_ABOVE:
            for columns in read:
                mapped_pages.release(columns)
    return parts, logged_by


def delta_data(state: ProjectState, page: Page, panel: Panel, since_id: int,
               system: bool = False) -> list[dict[str, Any]]:
    """Points a page of runs lacks: per run, replace rows from index `k` on (k covers smoothing
    reach). A grouped panel's are its groups' (group_delta.panel_delta)."""
    view = page.view
    reach = 0 if system else smoothing_reach(view.smoother, view.smoothing)
    result = []
    for source in sources(state, page, panel, system):
        first_new = source.columns.index_after(since_id)
        if first_new >= source.columns.length:
            mapped_pages.done_with(source.columns)  # the search mapped folios of its ids
            continue
        start = max(0, first_new - reach)
        a = _series_arrays(source.columns, source.run, source.metric, view, system, start)
        if a.rows.size == 0 and reach == 0 and not a.marks:
            mapped_pages.done_with(source.columns)
            continue
        result.append({**source.fields, "k": start,
                       **_encode(a, view, system, panel.shape.log_y)})
        # A poll reads a run's tail, but maps the whole folio of every column it touches.
        mapped_pages.done_with(source.columns)
    band = None if system else band_delta(state, page, panel, since_id)
    return result if band is None else [*result, band]


def band_delta(state: ProjectState, page: Page, panel: Panel,
               since_id: int) -> dict[str, Any] | None:
    """The grey band again, whole (`k` 0: every row replaced), when a run in it logged a
    value of the panel's metric after `since_id`: a new point can move its mean and extremes
    at any bucket, and the band is one series of at most PLOT_WIDTH points, so resending it
    costs less than a redraw."""
    if not page.band_runs or panel.shape.kind != "line" or panel.sources:
        return None
    if not any(_logged_since(state.metrics.get(run.key), panel.metric, since_id)
               for run in page.band_runs):
        return None
    band = band_series(state, page, panel)
    return None if band is None else {**band, "k": 0}


def _logged_since(columns: Columns | None, metric: str, since_id: int) -> bool:
    """Whether a run's rows after `since_id` hold a finite value of `metric` (the last id is
    checked first: a run that logged nothing new costs no search)."""
    if columns is None or not columns.length or int(columns.ids[columns.length - 1]) <= since_id:
        return False
    values = columns.metrics.get(metric)
    return values is not None and bool(
        np.isfinite(values[columns.index_after(since_id):columns.length]).any())


MAX_ALERT_MARKS = 500  # only the newest past this: charts stay readable, the payload small
ALERT_TITLE_CHARS = 200


def alert_marks(state: ProjectState, page: Page) -> list[dict[str, Any]]:
    """The selected runs' alerts that have a step, as markers for step x-axis charts:
    `r` run key, `n` run name, `c` its colour, `x` step, `title` (cut short), `level`."""
    if page.view.x_axis != "step":
        return []
    keys = page.selected_keys
    marks = [{"r": alert.run, "n": state.runs[alert.run].name, "c": page.colours[alert.run],
              "x": alert.step, "title": alert.title[:ALERT_TITLE_CHARS], "level": alert.level}
             for alert in state.alerts if alert.run in keys and math.isfinite(alert.step)]
    return marks[-MAX_ALERT_MARKS:]


def x_extent(state: ProjectState, page: Page) -> tuple[float, float] | None:
    """The smallest and largest finite x of the selected runs' metric rows (None: no rows)."""
    low, high = math.inf, -math.inf
    for run in page.selected:
        columns = state.metrics.get(run.key)
        if columns is None or not columns.length:
            continue
        x = _x_values(columns, run, page.view, False)
        if page.view.x_axis == "step" and columns.steps_sorted() \
                and math.isfinite(x[0]) and math.isfinite(x[-1]):
            # Sorted steps: the ends are the extent. Scanning a 500,000-step run took ms per
            # zoom and mapped its whole step column into the worker.
            low, high = min(low, float(x[0])), max(high, float(x[-1]))
            continue
        x = x[np.isfinite(x)]
        mapped_pages.done_with(columns)  # the scan mapped the whole x column
        if x.size:
            low, high = min(low, float(x.min())), max(high, float(x.max()))
    return (low, high) if low <= high else None
