"""Vega-Lite specs built with Altair once per chart shape; data travels separately as dataset `pts`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import altair as alt

DATASET = "pts"
# Filled by the page script; a zoom sets both on every chart of the page.
NO_LIMIT = 1e300
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363")
X_TITLES = {"step": "step", "time": "seconds since start", "wall": "time", "metric": "x"}


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
            "axis": {"labelColor": ink, "titleColor": ink, "gridColor": grid,
                     "domainColor": grid, "tickColor": grid}}


@lru_cache(maxsize=128)
def spec_for(shape: Shape, theme: str) -> dict[str, Any]:
    """Build (once per shape) the Vega-Lite spec of one panel."""
    data = alt.Data(name=DATASET)
    if shape.kind == "bar":
        chart = alt.Chart(data).mark_bar().encode(
            x=alt.X("n:N", title=None, axis=alt.Axis(labelLimit=120)),
            y=alt.Y("y:Q", title=None),
            color=alt.Color("c:N", scale=None),
            tooltip=[alt.Tooltip("n:N", title="run"), alt.Tooltip("y:Q", title="value")],
        )
        spec = chart.properties(width="container", height=200).to_dict()
    else:
        spec = _line_spec(shape, data)
    spec["config"] = {**spec.get("config", {}), **_theme_config(theme)}
    # Re-fit axes and labels whenever new data arrives, not only at first render.
    spec["autosize"] = {"type": "fit-x", "contains": "padding", "resize": True}
    spec.pop("$schema", None)
    return spec


def _line_spec(shape: Shape, data: alt.Data) -> dict[str, Any]:
    x_type = "T" if shape.x_kind == "wall" else "Q"
    xmin = alt.param(name="xmin", value=-NO_LIMIT)
    xmax = alt.param(name="xmax", value=NO_LIMIT)
    brush = alt.selection_interval(name="brush", encodings=["x"])
    hover = alt.selection_point(name="hover", on="pointerover", nearest=True, fields=["r", "i"],
                                empty=False, clear="pointerout")
    y_scale = alt.Scale(type="log") if shape.log_y else alt.Scale(zero=False)
    base = alt.Chart().encode(
        x=alt.X(f"x:{x_type}", title=X_TITLES[shape.x_kind], scale=alt.Scale(zero=False),
                axis=alt.Axis(tickCount=6, labelFlush=True)),
        color=alt.Color("c:N", scale=None),
        detail="r:N",
    )
    raw = base.mark_line(strokeWidth=1, opacity=0.3 if shape.smoothed else 1,
                         clip=True).encode(y=alt.Y("y:Q", title=None, scale=y_scale))
    value_field = "s" if shape.smoothed else "y"
    # No d3 formats: each would be one more interpreted expression per point (values arrive
    # rounded to 7 significant digits already).
    tooltip = [alt.Tooltip("n:N", title="run"), alt.Tooltip(f"x:{x_type}", title="x"),
               alt.Tooltip("y:Q", title="value")]
    if shape.smoothed:
        tooltip.append(alt.Tooltip("s:Q", title="smoothed"))
    # Hover and brushing use an invisible layer of at most ~120 points per series (`h`, set by
    # the page script): thousands of hit-test symbols per chart cost seconds to draw.
    targets = base.transform_filter("datum.h").mark_point(size=36, opacity=0, clip=True).encode(
        y=alt.Y(f"{value_field}:Q", scale=y_scale), tooltip=tooltip,
    ).add_params(hover, brush)
    marker = base.transform_filter("datum.h").transform_filter(hover).mark_point(
        filled=True, size=48, clip=True).encode(
        y=alt.Y(f"{value_field}:Q", scale=y_scale))
    layers = [raw]
    if shape.smoothed:
        layers.append(base.mark_line(strokeWidth=2, clip=True).encode(
            y=alt.Y("s:Q", scale=y_scale)))
    layers += [targets, marker]
    # Layers share one data flow: the zoom filter runs once per row, not once per layer.
    chart = alt.layer(*layers, data=data).transform_filter(
        "datum.x >= xmin && datum.x <= xmax").add_params(xmin, xmax)
    return chart.properties(width="container", height=200).to_dict()
