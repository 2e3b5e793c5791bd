"""Vega-Lite specs of chart images: a panel's series (wire format) with data inline, a title,
a legend of run names and a solid background, drawn by vl-convert with no browser. No Flask.

The page's specs (charts.py) are filled by the page script and draw nothing on their own, so an
image gets its own small spec: lines (the smoothed line over a faint raw one when smoothing),
the run legend in the runs' own colours, the zoom's x range, a log y axis when asked.
"""

from __future__ import annotations

from typing import Any

from .charts import X_TITLES

WIDTH, HEIGHT = 560, 300  # the plot area of one chart image (px)
VIEW_COLUMNS = 2  # charts per row in a whole-view image
MAX_VIEW_CHARTS = 6
MAX_LEGEND_RUNS = 20
BACKGROUNDS = {"light": ("#ffffff", "#27272a", "#e4e4e7"), "dark": ("#18181b", "#e4e4e7", "#3f3f46")}
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v6.json"


def line_label(series: dict[str, Any]) -> str:
    """A line's legend label: the run's name, with its device on merged system charts."""
    return f"{series['n']} · {series['d']}" if series.get("d") else str(series["n"])


def unique_labels(all_series: list[dict[str, Any]]) -> list[str]:
    """Legend labels, made unique (two runs may share a name; the legend must tell them apart)."""
    seen: dict[str, int] = {}
    labels = []
    for series in all_series:
        label = line_label(series)
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return labels


def rows(all_series: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    """One row per drawn point: x, y, the smoothed value when there is one, and the line."""
    out: list[dict[str, Any]] = []
    for series, label in zip(all_series, labels, strict=True):
        smoothed = series.get("s")
        for index, (x, y) in enumerate(zip(series.get("x", []), series.get("y", []),
                                           strict=False)):
            row = {"x": x, "y": y, "l": label}
            if smoothed is not None and index < len(smoothed):
                row["s"] = smoothed[index]
            out.append(row)
    return out


def panel_spec(title: str, all_series: list[dict[str, Any]], *, kind: str, x_kind: str,
               x_title: str = "", y_title: str = "", log_y: bool = False, smoothed: bool = False,
               x_range: tuple[float, float] | None = None, width: int = WIDTH,
               height: int = HEIGHT) -> dict[str, Any]:
    """One chart (no theme, no top-level keys): a layer of lines, or bars of each run's last value."""
    labels = unique_labels(all_series)
    colours = [str(series.get("c", "#1f77b4")) for series in all_series]
    shown = labels[:MAX_LEGEND_RUNS]
    colour = {"field": "l", "type": "nominal", "title": None,
              "scale": {"domain": labels, "range": colours},
              "legend": {"values": shown, "labelLimit": 240, "orient": "bottom",
                         "columns": 2, "symbolType": "stroke"}}
    y_scale: dict[str, Any] = {"type": "log"} if log_y else {"zero": False}
    if kind == "bar":
        last = [{"l": label, "y": series["y"][-1]}
                for series, label in zip(all_series, labels, strict=True) if series.get("y")]
        if not last:
            return _nothing_drawn(title, width, height)
        return {"title": title, "width": width, "height": height, "data": {"values": last},
                "mark": {"type": "bar"},
                "encoding": {"x": {"field": "l", "type": "nominal", "title": None, "sort": None,
                                   "axis": {"labelLimit": 120}},
                             "y": {"field": "y", "type": "quantitative", "title": y_title or None,
                                   "scale": y_scale},
                             "color": {**colour, "legend": None}}}
    x_type = "temporal" if x_kind == "wall" else "quantitative"
    x_scale: dict[str, Any] = {"zero": False, "nice": False}
    if x_range is not None:
        x_scale["domain"] = list(x_range)
    x = {"field": "x", "type": x_type, "title": x_title or X_TITLES.get(x_kind, "x"),
         "scale": x_scale}
    y = {"field": "y", "type": "quantitative", "title": y_title or None, "scale": y_scale}
    layers: list[dict[str, Any]] = [
        {"mark": {"type": "line", "clip": True, "strokeWidth": 1.5,
                  "opacity": 0.3 if smoothed else 1},
         "encoding": {"x": x, "y": y, "color": colour, "detail": {"field": "l"}}}]
    if smoothed:
        layers.append({"mark": {"type": "line", "clip": True, "strokeWidth": 2},
                       "encoding": {"x": x, "y": {**y, "field": "s"}, "color": colour,
                                    "detail": {"field": "l"}}})
    if x_kind != "metric":
        # Rows arrive in x order per line; Vega-Lite would otherwise sort them again.
        for layer in layers:
            layer["encoding"]["order"] = {"value": None}
    values = rows(all_series, labels)
    if not values:
        return _nothing_drawn(title, width, height)
    return {"title": title, "width": width, "height": height,
            "data": {"values": values}, "layer": layers}


def _nothing_drawn(title: str, width: int, height: int) -> dict[str, Any]:
    """A chart of the selected runs with no point: the same size, saying so (a layer of lines
    over no data has no bounds, and Vega draws it infinitely large)."""
    return {"title": title, "width": width, "height": height,
            "data": {"values": [{"t": "The selected runs logged no point of this metric."}]},
            "mark": {"type": "text", "fontSize": 14},
            "encoding": {"text": {"field": "t"}, "x": {"value": width / 2},
                         "y": {"value": height / 2}}}


def themed(spec: dict[str, Any], theme: str, subtitle: str = "") -> dict[str, Any]:
    """A complete spec: schema, solid background and the theme's ink (light or dark)."""
    background, ink, grid = BACKGROUNDS["dark" if theme == "dark" else "light"]
    out = {"$schema": VEGA_LITE, **spec, "background": background, "padding": 12,
           "config": {"font": "sans-serif", "view": {"stroke": grid},
                      "title": {"color": ink, "subtitleColor": ink, "fontSize": 15,
                                "anchor": "start", "limit": 900},
                      "axis": {"labelColor": ink, "titleColor": ink, "gridColor": grid,
                               "domainColor": grid, "tickColor": grid},
                      "legend": {"labelColor": ink, "titleColor": ink}}}
    if subtitle:
        title = out.get("title", "")
        out["title"] = {"text": title, "subtitle": subtitle}
    return out


def view_spec(title: str, charts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several charts (panel_spec results) in a grid under one title."""
    return {"title": title, "concat": charts[:MAX_VIEW_CHARTS], "columns": VIEW_COLUMNS,
            "resolve": {"scale": {"color": "independent"}}}
