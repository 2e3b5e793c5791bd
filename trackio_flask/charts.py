"""Chart specs: built with Altair once per chart shape, compiled to Vega on the server.

The page runs Vega only (no Vega-Lite, no compile step in the browser). Every shape is compiled
in one short-lived child process (`python -m trackio_flask.charts`): Altair and vl-convert cost
a server about 65 MB it would hold for nothing once the specs exist. Data travels separately
as named datasets that the page script fills from the series wire format (see dashboard.py):
    pts   the lines, one row per drawn point      band  min/max per pixel column (downsampled)
    last  each run's latest point                 bad   NaN/±Inf markers on the x-axis
    hov   each line's point under the crosshair (the page script finds them; no hit-testing)
    cross the crosshair's x (one row), drawn as a rule on every chart of the same x axis
    hil   the rows of a run the legend highlights, drawn over the others (dimmed by `dim`)
    alrt  alert markers at their step (step x-axis only; the page script gives their tooltips)
Signals the page sets per panel: `ytitle` (the metric), `xtitle` (a metric chosen as x-axis),
`dim` (opacity factor of the lines while the legend highlights one run).
"""

from __future__ import annotations

import copy
import logging
import re
import subprocess
import sys
import threading
from itertools import product
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

if TYPE_CHECKING:
    import altair as alt

log = logging.getLogger(__name__)
VEGA_LITE_VERSION = "6.4"  # what Altair 6.3 emits; vl-convert compiles it to Vega 6
DATASETS = ("pts", "band", "last", "bad", "hov", "cross", "hil")  # every line chart's
ALERT_DATASET = "alrt"  # step-axis line charts only (Shape.alerts)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363")
X_TITLES = {"step": "step", "time": "seconds since start", "wall": "time", "metric": "x"}
MARKER_SHAPES = {"NaN": "diamond", "+Inf": "triangle-up", "-Inf": "triangle-down"}


class Shape(NamedTuple):
    """What a chart's spec depends on besides the theme; panels of one shape share one spec."""

    kind: str  # "line" or "bar"
    x_kind: str  # "step", "time", "wall" or "metric"
    log_y: bool
    smoothed: bool

    @property
    def key(self) -> str:
        """The name of this shape's specs in the page's `specs` island (an opaque id)."""
        return "-".join((self.kind, self.x_kind, "log" if self.log_y else "lin",
                         "s" if self.smoothed else "r"))

    @property
    def alerts(self) -> bool:
        """Alerts carry a step, so only line charts over steps can place them."""
        return self.kind == "line" and self.x_kind == "step"


THEMES = ("light", "dark")


def themes_for(theme: str) -> tuple[str, ...]:
    """The themes a page needs specs for: both when the browser decides (`system`)."""
    return THEMES if theme == "system" else (theme,)


def colour(rank: int) -> str:
    """Return a run's colour from its creation rank."""
    return PALETTE[rank % len(PALETTE)]


def _theme_config(theme: str) -> dict[str, Any]:
    ink, grid = ("#d4d4d8", "#3f3f46") if theme == "dark" else ("#3f3f46", "#e4e4e7")
    return {"background": None, "view": {"stroke": None},
            # Canvas output: ARIA descriptions would be one interpreted expression per point.
            "aria": False,
            "axis": {"labelColor": ink, "titleColor": ink, "gridColor": grid,
                     "domainColor": grid, "tickColor": grid}}


def all_shapes() -> list[Shape]:
    """Every shape a page can ask for (bars ignore smoothing)."""
    kinds = product(("line", "bar"), ("step", "time", "wall", "metric"), (False, True),
                    (False, True))
    return [Shape(*k) for k in kinds if not (k[0] == "bar" and k[3])]


def compile_shape(shape: Shape) -> dict[str, Any]:
    """Build one shape with Altair and compile it to Vega (~150 ms in vl-convert)."""
    import vl_convert

    chart = _bar_chart() if shape.kind == "bar" else _line_chart(shape)
    spec = chart.properties(width="container", height=200).to_dict()
    spec["config"] = {**spec.get("config", {}), **_theme_config("light")}
    # Re-fit axes and labels whenever new data arrives, not only at first render.
    spec["autosize"] = {"type": "fit-x", "contains": "padding", "resize": True}
    if shape.kind == "line" and shape.x_kind != "metric":
        # Rows arrive in x order; Vega-Lite's default sort would add a per-row toNumber.
        for layer in spec["layer"]:
            if layer.get("mark", {}).get("type") in ("line", "area"):
                layer["encoding"]["order"] = {"value": None}
    vega = strip_per_row_work(vl_convert.vegalite_to_vega(spec, vl_version=VEGA_LITE_VERSION))
    return _titled_axes(_dimmable_lines(vega), shape) if shape.kind == "line" else vega


def _titled_axes(vega: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """Axis titles from signals: one spec serves every metric (`ytitle`), and a metric chosen
    as x-axis names itself (`xtitle`)."""
    vega["signals"] = [*vega.get("signals", []), {"name": "ytitle", "value": ""},
                       {"name": "xtitle", "value": X_TITLES[shape.x_kind]}]
    for axis in vega.get("axes", []):
        if axis.get("grid"):
            continue
        if axis.get("scale") == "y":
            axis["title"] = {"signal": "ytitle"}
            axis["titleLimit"] = 180
        elif axis.get("scale") == "x":
            axis["title"] = {"signal": "xtitle"}
    return vega


def _dimmable_lines(vega: dict[str, Any]) -> dict[str, Any]:
    """Lines and bands fade by the `dim` signal while the legend highlights one run (a mark
    property, evaluated per line, not an expression per point)."""
    vega["signals"] = [*vega.get("signals", []), {"name": "dim", "value": 1}]
    # The highlight's own line (dataset hil, or a dataset derived from it, such as the sort
    # a metric x-axis adds) stays at full opacity.
    highlight = {"hil"}
    for data in vega.get("data", []):
        if data.get("source") in highlight:
            highlight.add(data["name"])

    def visit(marks: list[dict[str, Any]], source: str) -> None:
        for mark in marks:
            if mark.get("type") == "group":
                visit(mark.get("marks", []), mark.get("from", {}).get("facet", {}).get("data", ""))
            elif mark.get("type") in ("line", "area") and source not in highlight:
                update = mark.setdefault("encode", {}).setdefault("update", {})
                opacity = update.get("opacity", {"value": 1})
                if "signal" in opacity:
                    update["opacity"] = {"signal": f"({opacity['signal']}) * dim"}
                else:
                    update["opacity"] = {"signal": f"{opacity.get('value', 1)} * dim"}

    visit(vega.get("marks", []), "")
    return vega


_specs: dict[Shape, dict[str, Any]] = {}
_specs_lock = threading.Lock()


def _compile_all() -> dict[Shape, dict[str, Any]]:
    """Every shape, compiled in a child process; in this one if no child can be started."""
    shapes = all_shapes()
    try:
        done = subprocess.run([sys.executable, "-m", "trackio_flask.charts"], capture_output=True,
                              check=True, timeout=600)
        by_key = orjson.loads(done.stdout)
        return {shape: by_key[shape.key] for shape in shapes}
    except (OSError, subprocess.SubprocessError, orjson.JSONDecodeError, KeyError) as exc:
        log.warning("compiling chart specs in a child process failed (%s); compiling here", exc)
        return {shape: compile_shape(shape) for shape in shapes}


def _compiled(shape: Shape) -> dict[str, Any]:
    if shape not in _specs:
        with _specs_lock:
            if shape not in _specs:
                _specs.update(_compile_all())
    return _specs[shape]


def warm() -> None:
    """Compile every shape now, so the first page does not wait (~4 s in a child process)."""
    _compiled(Shape("line", "step", False, False))


def spec_for(shape: Shape, theme: str) -> dict[str, Any]:
    """The Vega spec (not Vega-Lite) of one panel shape in one theme."""
    spec = copy.deepcopy(_compiled(shape))
    spec["config"]["axis"] = _theme_config(theme)["axis"]
    return spec


def _bar_chart() -> alt.Chart:
    import altair as alt

    return alt.Chart(alt.Data(name="pts")).mark_bar().encode(
        x=alt.X("n:N", title=None, axis=alt.Axis(labelLimit=120)),
        y=alt.Y("y:Q", title=None),
        color=alt.Color("c:N", scale=None),
        tooltip=[alt.Tooltip("n:N", title="run"), alt.Tooltip("y:Q", title="value")],
    )


def _line_chart(shape: Shape) -> alt.LayerChart:
    import altair as alt

    x_type = "T" if shape.x_kind == "wall" else "Q"
    x_title = X_TITLES[shape.x_kind]
    # Domains are signals the page script computes from its columns once per change: Vega's
    # own data-driven domains scan every row of every layer again on each change (and warn
    # about empty layers). Zoom sets xmin/xmax, which override the x domain (no row filter).
    x_extent = alt.param(name="xext", value=[0, 1])
    y_extent = alt.param(name="yext", value=[1, 10] if shape.log_y else [0, 1])
    xmin = alt.param(name="xmin", value=None)
    xmax = alt.param(name="xmax", value=None)
    band_opacity = alt.param(name="bandop", value=0.2)
    x_scale = alt.Scale(zero=False, nice=False, domain=alt.ExprRef("xext"), domainRaw=alt.ExprRef(
        "isValid(xmin) && isValid(xmax) ? [xmin, xmax] : null"))
    # No nice rounding: the page pads the data's range itself (a log axis would otherwise
    # widen to whole decades and squeeze the lines into a third of the plot).
    y_scale = alt.Scale(type="log", domain=alt.ExprRef("yext"), nice=False) if shape.log_y else \
        alt.Scale(zero=False, domain=alt.ExprRef("yext"), nice=False)
    base = alt.Chart().encode(
        x=alt.X(f"x:{x_type}", title=x_title, scale=x_scale,
                axis=alt.Axis(tickCount=6, labelFlush=True)),
        color=alt.Color("c:N", scale=None),
        detail="r:N",
    )
    band = base.mark_area(opacity=alt.ExprRef("bandop"), clip=True).encode(
        y=alt.Y("lo:Q", title=None, scale=y_scale), y2="hi:Q",
    ).properties(data=alt.Data(name="band"))
    raw = base.mark_line(strokeWidth=1, opacity=0.3 if shape.smoothed else 1, clip=True).encode(
        y=alt.Y("y:Q", title=None, scale=y_scale)).properties(data=alt.Data(name="pts"))
    if shape.x_kind == "time":
        # System charts merge a run's devices: one dash pattern per device (the page script
        # puts it in the rows; rows without one are solid), as Trackio draws them.
        raw = raw.encode(strokeDash=alt.StrokeDash("dash:N", scale=None, legend=None))
    # Brushing to zoom is the page script's too (an interval selection is a third of a spec
    # that every chart would parse).
    layers: list[alt.Chart] = [band, raw]
    if shape.smoothed:
        layers.append(base.mark_line(strokeWidth=2, clip=True).encode(
            y=alt.Y("s:Q", scale=y_scale)).properties(data=alt.Data(name="pts")))
    value_field = "s" if shape.smoothed else "y"
    markers = alt.Chart(alt.Data(name="bad")).mark_point(
        filled=True, size=40, opacity=0.9, clip=True, yOffset=-5).encode(
        x=alt.X(f"x:{x_type}", scale=x_scale), y=alt.YValue("height"),
        color=alt.Color("c:N", scale=None),
        shape=alt.Shape("v:N", legend=None, scale=alt.Scale(
            domain=list(MARKER_SHAPES), range=list(MARKER_SHAPES.values()))),
    )
    # Hover and tooltips are the page script's: it finds the nearest point (or marker) in the
    # columns it holds, with no hit-test marks, and puts just that point in `hov`. `last`
    # marks where each run's line ends.
    last = base.mark_point(filled=True, size=16, clip=True).encode(
        y=alt.Y(f"{value_field}:Q", scale=y_scale)).properties(data=alt.Data(name="last"))
    marker = base.mark_point(filled=True, size=60, clip=True, stroke="white", strokeWidth=1).encode(
        y=alt.Y(f"{value_field}:Q", scale=y_scale)).properties(data=alt.Data(name="hov"))
    # The crosshair: a rule at the x the pointer (or the keyboard) points at, on every chart.
    cross = alt.Chart(alt.Data(name="cross")).mark_rule(
        strokeWidth=1, opacity=0.6, clip=True, color="#71717a").encode(x=alt.X(f"x:{x_type}", scale=x_scale))
    highlighted = base.mark_line(strokeWidth=2.5, clip=True).encode(
        y=alt.Y(f"{value_field}:Q", scale=y_scale)).properties(data=alt.Data(name="hil"))
    if shape.x_kind == "time":
        highlighted = highlighted.encode(strokeDash=alt.StrokeDash("dash:N", scale=None, legend=None))
    layers += [markers, cross, highlighted, last, marker]
    if shape.alerts:
        # A dashed rule per alert and a triangle at the top, in the run's colour.
        alert_x = alt.X("x:Q", scale=x_scale)
        layers.append(alt.Chart(alt.Data(name=ALERT_DATASET)).mark_rule(
            strokeDash=[4, 3], strokeWidth=1, opacity=0.8, clip=True).encode(
            x=alert_x, color=alt.Color("c:N", scale=None)))
        layers.append(alt.Chart(alt.Data(name=ALERT_DATASET)).mark_point(
            shape="triangle-down", filled=True, size=70, opacity=1, clip=True, yOffset=5).encode(
            x=alert_x, y=alt.YValue(0), color=alt.Color("c:N", scale=None)))
    return alt.layer(*layers).add_params(x_extent, y_extent, xmin, xmax, band_opacity)


_INVALID_TEST = re.compile(r"^!isValid\(datum\[\"\w+\"\]\) \|\| !isFinite\(\+datum\[\"\w+\"\]\)$")
_PARSE = re.compile(r"^to(Number|Date)\(datum\[\"(\w+)\"\]\)$")


def strip_per_row_work(vega: dict[str, Any]) -> dict[str, Any]:
    """Drop the per-row expressions Vega-Lite adds for values our data never holds.

    The series wire format carries finite numbers only (non-finite values travel as markers),
    so Vega-Lite's invalid-value filters, `defined` tests, encode-time validity tests and
    parse formulas are pure cost: each is one interpreted expression per row under CSP.
    """

    def visit(node: Any) -> Any:
        if isinstance(node, list):
            return [visit(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "transform" and isinstance(value, list):
                value = [t for t in value if not _per_row_transform(t)]
                if not value:
                    continue
            elif key == "defined" and isinstance(value, dict) and "isValid(" in value.get(
                    "signal", ""):
                continue
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value) \
                    and _INVALID_TEST.match(str(value[0].get("test", ""))):
                rest = [v for v in value if not _INVALID_TEST.match(str(v.get("test", "")))]
                value = rest[0] if len(rest) == 1 else rest
            out[key] = visit(value)
        return out

    return visit(vega)


def _per_row_transform(transform: Any) -> bool:
    if not isinstance(transform, dict):
        return False
    expr = str(transform.get("expr", ""))
    if transform.get("type") == "filter" and "isValid(" in expr and "vlSelection" not in expr:
        return True
    match = _PARSE.match(expr)
    return transform.get("type") == "formula" and match is not None \
        and transform.get("as") == match.group(2)


if __name__ == "__main__":
    # The child process of _compile_all: every shape's Vega spec as JSON on stdout.
    sys.stdout.buffer.write(orjson.dumps({s.key: compile_shape(s) for s in all_shapes()}))
