"""An offline snapshot of a view: one self-contained HTML file (data, Vega and its CSP-safe
expression interpreter inline) that opens from disk with no server. Runs without an app (the
CLI's); the view is parsed by the pages' own parser, hence werkzeug's MultiDict.

Each chart is the chart image's spec (chart_image.py) plus a zoom bound to its scales (drag to
pan, wheel to zoom, double-click to reset), compiled to Vega here so the file needs no Vega-Lite.
Each chart holds the page's downsampled points, drawn while the whole range shows, and (while
the charts' logged points fit under `max_points` in all, chart by chart) every logged point,
drawn once the zoom is narrow; the file says which charts the cap left downsampled. The file
carries a Content-Security-Policy that allows only its own inline scripts, by hash: nothing in
it is evaluated from strings.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from pathlib import Path
from typing import Any

import orjson
from werkzeug.datastructures import MultiDict

from . import chart_image, dashboard
from .live import ProjectState, ProjectStore
from .params import parse_view

VEGA = "vendor/vega-6.2.0.min.js"
INTERPRETER = "vendor/vega-interpreter-2.3.2.js"
# About 5 MB of JSON, and what an SVG renderer still pans smoothly.
DEFAULT_MAX_POINTS = 250_000
FULL_RES_PLOT_WIDTH = 1 << 30  # no bucketing: every point of a series under the cap
FINE_SPAN = 0.5  # a zoom showing less than this share of the x range draws every point
# Vega's own expression (the zoom's x extent is the `zoom` signal once the user zooms): the
# overview until the zoom is narrow, then every logged point within a span of the view.
FINE_FILTER = ("(zoom && zoom.x && abs(zoom.x[1] - zoom.x[0]) < %(span)r) ? (datum.f === 1 && "
               "datum.x >= zoom.x[0] - abs(zoom.x[1] - zoom.x[0]) && "
               "datum.x <= zoom.x[1] + abs(zoom.x[1] - zoom.x[0])) : datum.f === 0")
VEGA_LITE_VERSION = "6.4"
BOOT = """
(function () {
  var island = document.getElementById("export-data");
  var charts = JSON.parse(island.textContent).charts;
  window.exportViews = [];
  charts.forEach(function (chart, index) {
    var box = document.getElementById("chart-" + index);
    var view = new vega.View(vega.parse(chart.spec, null, {ast: true}), {
      container: box, renderer: "svg", hover: true,
      expr: window.vegaInterpreter.expressionInterpreter
    });
    window.exportViews.push(view);
    view.runAsync().then(function () { box.setAttribute("data-drawn", "1"); });
  });
})();
"""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; background: %(bg)s; color: %(ink)s; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; } p { margin: .2rem 0 1rem; opacity: .8; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
.chart { min-width: 300px; }
"""


def _json_island(value: Any) -> str:
    """JSON that no `</script>` (or HTML comment) inside a logged name can end early."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _digest(script: str) -> str:
    """A script's CSP hash (base64 of its SHA-256)."""
    return base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def _logged_count(state: ProjectState, page: dashboard.Page, panel: dashboard.Panel) -> int:
    """How many logged points a chart holds (finite ones, in the view's x range)."""
    system = panel in page.system_panels
    return sum(int(dashboard.logged(source, page, system, None)[0].rows.size)
               for source in dashboard.sources(state, page, panel, system))


def _fine_budget(state: ProjectState, page: dashboard.Page, max_points: int) -> set[str]:
    """The line charts that carry every logged point: in page order while their points fit
    under `max_points` in all (a chart that does not fit is skipped, later smaller ones may)."""
    fine, left = set(), max_points
    for panel in page.panels + page.system_panels:
        if panel.shape.kind != "line":
            continue
        count = _logged_count(state, page, panel)
        if count <= left:
            fine.add(panel.id)
            left -= count
    return fine


def _spec(state: ProjectState, page: dashboard.Page, panel: dashboard.Panel, max_points: int,
          fine: bool) -> dict[str, Any]:
    """A panel's Vega-Lite spec with its data and a zoom bound to the scales.

    Its rows are the dashboard's downsampled points (`f` 0, drawn while the whole x range is
    shown) and, for a `fine` chart, every logged point too (`f` 1, drawn instead once the zoom
    shows less than FINE_SPAN of the range, only those near the visible range).
    """
    view = page.view
    system = panel in page.system_panels
    x_range = None
    if not system and view.xmin is not None and view.xmax is not None:
        x_range = (view.xmin, view.xmax)
    series = dashboard.full_data(state, page, panel, max_points, system=system, x_range=x_range)
    x_kind = "time" if system else view.x_kind
    options = dict(kind=panel.shape.kind, x_kind=x_kind,
                   x_title=view.x_axis[len("metric:"):] if x_kind == "metric" else "",
                   log_y=panel.shape.log_y, smoothed=panel.shape.smoothed, x_range=x_range,
                   width=520, height=260)
    spec = chart_image.panel_spec(panel.metric, series, **options)
    if "layer" not in spec:
        return spec
    values = spec["data"]["values"]
    for row in values:
        row["f"] = 0
    if fine:
        every = dashboard.full_data(state, page, panel, max_points, system=system,
                                    x_range=x_range, plot_width=FULL_RES_PLOT_WIDTH)
        labels = chart_image.unique_labels(series)
        by_run = {(s.get("r"), s.get("d")): label for s, label in zip(series, labels, strict=True)}
        overview = len(values)
        for s in every:
            label = by_run.get((s.get("r"), s.get("d")), chart_image.line_label(s))
            values.extend({**row, "l": label, "f": 1} for row in chart_image.rows([s], [label]))
        span = _span(values)
        if len(values) == 2 * overview:  # the overview already holds every point
            del values[overview:]
        elif span:
            fine_filter = FINE_FILTER % {"span": span * FINE_SPAN}
            for layer in spec["layer"]:
                layer["transform"] = [{"filter": fine_filter}]
    spec["layer"][0]["params"] = [{"name": "zoom", "select": "interval", "bind": "scales"}]
    return spec


def _span(values: list[dict[str, Any]]) -> float:
    """The x extent's width of a chart's rows (0 when it has none or is not numeric)."""
    xs = [row["x"] for row in values if isinstance(row.get("x"), int | float)]
    return float(max(xs) - min(xs)) if xs else 0.0


def snapshot(data_dir: Path, project: str, query: str = "", max_points: int = DEFAULT_MAX_POINTS,
             plot_order: tuple[str, ...] = (), memory_bytes: int = 256 * 2**20) -> str:
    """The HTML file of `project` at the view that `query` (a page URL's query) describes."""
    state = ProjectStore(data_dir, memory_bytes).get(project)
    return snapshot_of(state, query, max_points, plot_order)


def snapshot_of(state: ProjectState, query: str = "", max_points: int = DEFAULT_MAX_POINTS,
                plot_order: tuple[str, ...] = ()) -> str:
    """The HTML file of a project's state (local or read from a remote dashboard) at a view."""
    from urllib.parse import parse_qsl

    import vl_convert

    project = state.project
    view = parse_view(MultiDict(parse_qsl(query, keep_blank_values=True)), state.metric_names)
    page = dashboard.build_page(project, state, view, max_points, plot_order)
    fine = _fine_budget(state, page, max_points)
    theme = "dark" if view.theme == "dark" else "light"
    charts = []
    for panel in page.panels + page.system_panels:
        spec = chart_image.themed(_spec(state, page, panel, max_points, panel.id in fine), theme)
        vega = vl_convert.vegalite_to_vega(spec, vl_version=VEGA_LITE_VERSION)
        charts.append({"id": panel.id, "metric": panel.metric, "spec": vega,
                       "fine": panel.id in fine})
    static = Path(__file__).resolve().parent.parent / "static"
    if not static.is_dir():
        static = Path(__file__).resolve().parent / "static"
    scripts = [(static / VEGA).read_text(), (static / INTERPRETER).read_text(), BOOT]
    hashes = " ".join(f"'sha256-{_digest(script)}'" for script in scripts)
    background, ink, _ = chart_image.BACKGROUNDS[theme]
    runs = len(page.selected)
    lines = sum(1 for p in page.panels + page.system_panels if p.shape.kind == "line")
    resolution = ("downsampled as on the dashboard, every logged point once zoomed in"
                  if len(fine) == lines else
                  f"downsampled as on the dashboard; every logged point once zoomed in for "
                  f"{len(fine)} of {lines} line charts (the cap of {max_points:,} points cut "
                  "the others: zooming them shows the downsampled points)")
    boxes = "".join(f'<div class="chart" id="chart-{i}" data-fine="{int(c["fine"])}" role="img" '
                    f'aria-label="Chart of {html.escape(c["metric"])}"></div>'
                    for i, c in enumerate(charts))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        f"script-src {hashes}; style-src 'unsafe-inline'; img-src data:\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(project)} · trackio_flask snapshot</title>"
        f"<style>{STYLE % {'bg': background, 'ink': ink}}</style></head><body>"
        f"<h1>{html.escape(project)}</h1>"
        f"<p>{runs} run{'s' if runs != 1 else ''}, {len(charts)} chart"
        f"{'s' if len(charts) != 1 else ''}, {resolution}; snapshot of {stamp}. Drag to pan, "
        "wheel to zoom, double-click to reset.</p>"
        f"<div class=\"charts\">{boxes}</div>"
        f"<script type=\"application/json\" id=\"export-data\">{_json_island({'charts': charts})}"
        "</script>"
        + "".join(f"<script>{s}</script>" for s in scripts)
        + "</body></html>\n")
