"""Parse the view settings a URL carries (ours and Trackio's share parameters) into a View."""

from __future__ import annotations

import math

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from . import selection
from .dashboard import CHROME, View, exact_names_pattern
from .groups import AGGREGATES, BANDS, GroupingError, parse_grouping
from .settings import parse_bool

MAX_PATTERN = 200
MAX_RUNS = 1000
MAX_DEVICES = 64
THEMES = ("light", "dark", "system")
MAX_RUN_NAME = 256  # the longest run name a URL may name, and the rename form takes
PLOTS_PER_ROW = range(1, 7)
# Every parameter parse_view reads: links to the project's other pages carry these from the
# address (page.js), so the run selection, theme and smoothing follow a tab click.
CARRIED = ("run_ids", "runs", "sel", "run_filter", "latest_only", "group_by", "metric_filter",
           "metrics", "x_axis", "x-axis", "log_y", "smoothing", "smoother", "__theme", "theme",
           "sidebar", "navbar", "accordion", "cols", "device")
# Parameters that are one setting: a bad one falls back together with its partners.
_ONE_SETTING = {"x_axis": ("x_axis", "x-axis"), "__theme": ("__theme", "theme"),
                "xmin": ("xmin", "xmax"), "xmax": ("xmin", "xmax")}


# Group bands (groups.py): the grouping and its line and band travel to every tab too.
CARRIED += ("group", "group_re", "agg", "band", "hide_group")
MAX_HIDDEN_GROUPS = 100
_ONE_SETTING["group"] = ("group", "group_re")


def _split(values: list[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part]


def _flag(args: MultiDict, name: str) -> bool:
    value = args.get(name, "")
    if not value:
        return False
    try:
        return parse_bool(value)
    except ValueError:
        raise BadRequest(f"{name} must be 1 or 0") from None


def _chrome(args: MultiDict, name: str) -> str:
    value = args.get(name, "")
    if value and value not in CHROME[name]:
        raise BadRequest(f"{name} must be one of: {', '.join(CHROME[name])}")
    return value


def _number(args: MultiDict, name: str) -> float | None:
    raw = args.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be finite")
    return value


def _pattern(args: MultiDict, *names: str) -> str:
    for name in names:
        value = args.get(name)
        if value:
            if len(value) > MAX_PATTERN:
                raise BadRequest(f"{name} is longer than {MAX_PATTERN} characters")
            return value
    return ""


def parse_int(raw: str, name: str, low: int, high: int) -> int:
    """A whole number written in ASCII digits within [low, high]; else 400 naming `name`.

    str.isdigit and int() also take "³", "٣", "1_0" and "+5": a value the page never wrote.
    """
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) \
            or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _plots_per_row(args: MultiDict) -> int:
    raw = args.get("cols", "")
    if not raw:
        return 0
    return parse_int(raw, "cols (plots per row)", min(PLOTS_PER_ROW), max(PLOTS_PER_ROW))


def _devices(args: MultiDict) -> tuple[str, ...] | None:
    """System devices to show (`device=gpu/0`, repeated), None when the URL names none."""
    listed = [value for value in args.getlist("device") if value]
    if not listed:
        return None
    if len(listed) > MAX_DEVICES or any(len(value) > MAX_PATTERN for value in listed):
        raise BadRequest(f"device lists more than {MAX_DEVICES} devices or an overlong one")
    # Sorted and deduplicated, like run_ids: permuted links share one cache entry.
    return tuple(sorted(set(listed)))


def _grouping(args: MultiDict, x_axis: str) -> tuple[str, str, str]:
    """(group, agg, band): `group=config:<key>|name:<regex>|trackio`; the controls send a name
    pattern as `group=name&group_re=<regex>` (no pattern yet: no grouping)."""
    spec = args.get("group", "")
    if spec == "name":
        pattern = args.get("group_re", "")
        spec = f"name:{pattern}" if pattern else ""
    try:
        grouping = parse_grouping(spec)
    except GroupingError as exc:
        raise BadRequest(str(exc)) from None
    if grouping is not None and x_axis not in ("step", "time"):
        raise BadRequest("group bands need the step or relative-time x-axis")
    agg = args.get("agg") or "mean"
    if agg not in AGGREGATES:
        raise BadRequest("agg must be mean or median")
    band = args.get("band") or "minmax"
    if band not in BANDS:
        raise BadRequest(f"band must be one of: {', '.join(BANDS)}")
    return (grouping.spec if grouping else ""), agg, band


def _hidden_groups(args: MultiDict) -> tuple[str, ...]:
    """Group labels the charts leave out (`hide_group`, repeated), sorted: one cache entry."""
    listed = [value for value in args.getlist("hide_group") if value]
    if len(listed) > MAX_HIDDEN_GROUPS or any(len(value) > MAX_PATTERN for value in listed):
        raise BadRequest(f"hide_group lists more than {MAX_HIDDEN_GROUPS} groups or an overlong one")
    return tuple(sorted(set(listed)))


def parse_view(args: MultiDict, metric_names: set[str] | None = None) -> View:
    """Build a View from query arguments; bad values raise 400 with the parameter's name."""
    runs: tuple[str, ...] | None = None
    for name in ("run_ids", "runs"):
        if name in args:
            listed = _split(args.getlist(name))
            if len(listed) > MAX_RUNS:
                raise BadRequest(f"{name} lists more than {MAX_RUNS} runs")
            # Order and repeats do not change what is drawn; normalising them lets permuted
            # links share one cache entry.
            runs = tuple(sorted(set((runs or ()) + tuple(listed))))
    sel = args.get("sel", "")
    if sel == "all":
        # The controls form sends every checkbox; "all" keeps new runs auto-selected.
        runs = None
    elif sel in ("", "some") or runs is not None:
        # "some": an older page's form, whose ticked run_ids are the selection; listed runs
        # also win over a token (a form submitted without script sends both).
        sel = ""
    else:
        try:
            selection.parse(sel)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    metric_filter = _pattern(args, "metric_filter")
    if not metric_filter and args.get("metrics"):
        # Trackio's legacy embed parameter: an exact list of metric names.
        names = _split(args.getlist("metrics"))
        if sum(map(len, names)) > 20 * MAX_PATTERN:
            raise BadRequest("metrics lists too many names")
        metric_filter = exact_names_pattern(names)
    smoothing_raw = args.get("smoothing", "0") or "0"
    try:
        smoothing = int(smoothing_raw)
    except ValueError:
        raise BadRequest("smoothing must be a whole number from 0 to 100") from None
    if not 0 <= smoothing <= 100:
        raise BadRequest("smoothing must be a whole number from 0 to 100")
    smoother = args.get("smoother", "sma") or "sma"
    if smoother not in ("sma", "ema"):
        raise BadRequest("smoother must be sma or ema")
    x_axis = args.get("x_axis") or args.get("x-axis") or "step"
    if x_axis not in ("step", "time", "wall") and not x_axis.startswith("metric:"):
        # Trackio accepts a bare metric name.
        x_axis = f"metric:{x_axis}"
    if x_axis.startswith("metric:") and len(x_axis) > MAX_PATTERN:
        raise BadRequest("x_axis names an overlong metric")
    if metric_names is not None and x_axis.startswith("metric:") \
            and x_axis[len("metric:"):] not in metric_names:
        raise BadRequest("x_axis must be step, time, wall or a logged metric")
    theme = args.get("__theme") or args.get("theme") or "system"
    if theme not in THEMES:
        raise BadRequest("__theme must be light, dark or system")
    group, agg, band = _grouping(args, x_axis)
    return View(
        runs=runs,
        sel=sel,
        run_filter=_pattern(args, "run_filter"),
        latest_only=_flag(args, "latest_only"),
        group_by=_pattern(args, "group_by"),
        metric_filter=metric_filter,
        x_axis=x_axis,
        log_y=_flag(args, "log_y"),
        smoothing=smoothing,
        smoother=smoother,
        theme=theme,
        xmin=_number(args, "xmin"),
        xmax=_number(args, "xmax"),
        sidebar=_chrome(args, "sidebar"),
        navbar=_chrome(args, "navbar"),
        accordion=_chrome(args, "accordion"),
        plots_per_row=_plots_per_row(args),
        devices=_devices(args),
        group=group, agg=agg, band=band, hidden_groups=_hidden_groups(args) if group else (),
    )


def view_args(view: View) -> dict[str, str | list[str]]:
    """The query arguments that reproduce a view (defaults left out)."""
    args: dict[str, str | list[str]] = {}
    if view.runs is not None:
        args["run_ids"] = ",".join(view.runs)
    elif view.sel:
        args["sel"] = view.sel
    for name, value, default in (("run_filter", view.run_filter, ""),
                                 ("group_by", view.group_by, ""),
                                 ("metric_filter", view.metric_filter, ""),
                                 ("x_axis", view.x_axis, "step"),
                                 ("smoother", view.smoother, "sma"),
                                 ("__theme", view.theme, "system"),
                                 ("sidebar", view.sidebar, ""),
                                 ("navbar", view.navbar, ""),
                                 ("accordion", view.accordion, "")):
        if value != default:
            args[name] = value
    if view.smoothing:
        args["smoothing"] = str(view.smoothing)
    if view.latest_only:
        args["latest_only"] = "1"
    if view.log_y:
        args["log_y"] = "1"
    if view.plots_per_row:
        args["cols"] = str(view.plots_per_row)
    if view.devices is not None:
        args["device"] = list(view.devices)
    args.update(_group_args(view))
    return args


def _group_args(view: View) -> dict[str, str | list[str]]:
    """The grouping's arguments (defaults left out)."""
    return {name: value for name, value, default in (("group", view.group, ""),
                                                     ("agg", view.agg, "mean"),
                                                     ("band", view.band, "minmax"))
            if value != default} | ({"hide_group": list(view.hidden_groups)}
                                    if view.hidden_groups else {})


def page_args(view: View) -> dict[str, str | list[str]]:
    """`view_args` plus the zoom, for links that reopen the same page."""
    args = view_args(view)
    if view.xmin is not None and view.xmax is not None:
        args["xmin"], args["xmax"] = repr(view.xmin), repr(view.xmax)
    return args


def parse_view_or_default(args: MultiDict, metric_names: set[str] | None = None
                          ) -> tuple[View, tuple[str, ...]]:
    """Like parse_view, but a bad setting falls back to its default and says so in a notice.

    Full pages use this (a link with `smoothing=abc` still opens, saying what it ignored);
    the refresh, data and API endpoints stay strict. Every message of parse_view starts with
    the parameter's name, which is how the bad one is found; notices never repeat the value.
    """
    remaining = MultiDict(args)
    notices: list[str] = []
    while True:
        try:
            return parse_view(remaining, metric_names), tuple(notices)
        except BadRequest as exc:
            message = str(exc.description)
            first = message.split(" ", 1)[0]
            names = _ONE_SETTING.get(first, (first,))
            if not any(name in remaining for name in names):
                raise
            for name in names:
                remaining.poplist(name)
            notices.append(f"{message}: showing the default instead.")
