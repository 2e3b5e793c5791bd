"""An offline snapshot of a view: one self-contained HTML file (data, Vega and its CSP-safe
expression interpreter inline) that opens from disk with no server. Runs without an app (the
CLI's); the view is parsed by the pages' own parser, hence werkzeug's MultiDict.

Each chart is the chart image's spec (chart_image.py) plus a zoom bound to its scales (drag to
pan, wheel to zoom, double-click to reset), compiled to Vega here so the file needs no Vega-Lite.
Data is every logged point while the view's charts hold at most `max_points` in all, else the
page's downsampled points (the file says which). The file carries a Content-Security-Policy
that allows only its own inline scripts, by hash: nothing in it is evaluated from strings.
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


def _point_count(state: ProjectState, page: dashboard.Page) -> int:
    """How many logged points the view's charts hold in all (finite ones, in its x range)."""
    total = 0
    for panel in page.panels + page.system_panels:
        system = panel in page.system_panels
        for source in dashboard.sources(state, page, panel, system):
            arrays, _ = dashboard.logged(source, page, system, None)
            total += int(arrays.rows.size)
    return total


def _spec(state: ProjectState, page: dashboard.Page, panel: dashboard.Panel, max_points: int,
          full: bool) -> dict[str, Any]:
    """A panel's Vega-Lite spec with its data and a zoom bound to the scales."""
    view = page.view
    system = panel in page.system_panels
    x_range = None
    if not system and view.xmin is not None and view.xmax is not None:
        x_range = (view.xmin, view.xmax)
    width = FULL_RES_PLOT_WIDTH if full else dashboard.PLOT_WIDTH
    series = dashboard.full_data(state, page, panel, max_points, system=system, x_range=x_range,
                                 plot_width=width)
    x_kind = "time" if system else view.x_kind
    spec = chart_image.panel_spec(
        panel.metric, series, kind=panel.shape.kind, x_kind=x_kind,
        x_title=view.x_axis[len("metric:"):] if x_kind == "metric" else "",
        log_y=panel.shape.log_y, smoothed=panel.shape.smoothed, x_range=x_range,
        width=520, height=260)
    if "layer" in spec:
        spec["layer"][0]["params"] = [{"name": "zoom", "select": "interval", "bind": "scales"}]
    return spec


def snapshot(data_dir: Path, project: str, query: str = "", max_points: int = DEFAULT_MAX_POINTS,
             plot_order: tuple[str, ...] = (), memory_bytes: int = 256 * 2**20) -> str:
    """The HTML file of `project` at the view that `query` (a page URL's query) describes."""
    from urllib.parse import parse_qsl

    import vl_convert

    state = ProjectStore(data_dir, memory_bytes).get(project)
    view = parse_view(MultiDict(parse_qsl(query, keep_blank_values=True)), state.metric_names)
    page = dashboard.build_page(project, state, view, max_points, plot_order)
    full = _point_count(state, page) <= max_points
    theme = "dark" if view.theme == "dark" else "light"
    charts = []
    for panel in page.panels + page.system_panels:
        spec = chart_image.themed(_spec(state, page, panel, max_points, full), theme)
        vega = vl_convert.vegalite_to_vega(spec, vl_version=VEGA_LITE_VERSION)
        charts.append({"id": panel.id, "metric": panel.metric, "spec": vega})
    static = Path(__file__).resolve().parent.parent / "static"
    if not static.is_dir():
        static = Path(__file__).resolve().parent / "static"
    scripts = [(static / VEGA).read_text(), (static / INTERPRETER).read_text(), BOOT]
    hashes = " ".join(f"'sha256-{_digest(script)}'" for script in scripts)
    background, ink, _ = chart_image.BACKGROUNDS[theme]
    runs = len(page.selected)
    resolution = ("every logged point" if full else
                  f"downsampled as on the dashboard (the view holds more than {max_points:,} "
                  "points)")
    boxes = "".join(f'<div class="chart" id="chart-{i}" role="img" aria-label="Chart of '
                    f'{html.escape(c["metric"])}"></div>' for i, c in enumerate(charts))
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
