"""A zoomed x range of every metric panel at full resolution (one request per zoom gesture),
and one panel's points as CSV (a download on request).

`GET /projects/<p>/series?<view parameters>&xmin=&xmax=` answers JSON
    {"xmin": lo, "xmax": hi, "panels": {panel id: [series, …]}}
in the series wire format of dashboard.py, for line panels only.
`…&panel=<panel id>&width=<px>` asks for one panel (a system panel too) bucketed for a chart
that wide (full screen): the range is optional then (none: the whole x range; system panels
have their own time axis and ignore it), and the width is snapped up to a multiple of
WIDTH_STEP px within [PLOT_WIDTH, MAX_WIDTH], so a client mints few cache entries with it.

`GET /projects/<p>/series.csv?panel=<panel id>&<view parameters>[&xmin=&xmax=][&raw=1]`
answers the panel's lines as CSV (run, [device,] step, time, value): the points the chart
draws (downsampled as drawn), or with `raw=1` every logged point (series_csv.py). The range is clamped to the
data's x extent and snapped outward to 3 significant digits of its width (as the page snaps a
brush), so a client can mint cache entries only by asking for different ranges, and the answer
is cached per (project version, view, range) like every other shared computation.
"""

from __future__ import annotations

import math

import orjson
from flask import Blueprint, Response, request
from werkzeug.exceptions import BadRequest

from .. import dashboard, series_csv, storage
from ..encoded import cached_response
from ..extensions import limiter, page_limit, refresh_limit
from ..params import view_args
from ..rendering import load_page, max_points
from ..shared_cache import share

bp = Blueprint("series", __name__)
SIGNIFICANT = 3
WIDTH_STEP = 128
MAX_WIDTH = 4096


def snap(low: float, high: float) -> tuple[float, float]:
    """Widen [low, high] outward to multiples of 10^(floor(log10(width)) - 2)."""
    unit = 10.0 ** (math.floor(math.log10(high - low)) - (SIGNIFICANT - 1))
    # The nudge makes snapping idempotent despite float error (9990.3 / 0.1 = 99902.99…).
    return (float(f"{math.floor(low / unit + 1e-9) * unit:.12g}"),
            float(f"{math.ceil(high / unit - 1e-9) * unit:.12g}"))


def _range(extent: tuple[float, float] | None) -> tuple[float, float] | None:
    """The request's range, validated, clamped to the data and snapped; None when empty."""
    try:
        low, high = float(request.args["xmin"]), float(request.args["xmax"])
    except (KeyError, ValueError):
        raise BadRequest("xmin and xmax must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise BadRequest("xmin must be less than xmax, both finite")
    if extent is None:
        return None
    low, high = max(low, extent[0]), min(high, extent[1])
    if not low < high:
        return None
    # Too narrow to tell apart from a point (or from its neighbours in float): a point's width.
    width = max(high - low, (abs(low) + abs(high)) * 1e-12, 1e-300)
    return snap(low, low + width)


def _json(body: bytes) -> Response:
    return share(Response(body, mimetype="application/json"))


def _cached_json(key: tuple, compute) -> Response:
    """A zoom's answer, computed and compressed once per key and encoding (not per viewer)."""
    return cached_response(key, compute, "application/json", fast=True)


def _width() -> int:
    """The chart width a full-screen panel asks for, snapped (see the module docstring)."""
    raw = request.args.get("width", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 5):
        raise BadRequest("width must be a whole number of pixels")
    steps = -(-max(int(raw), dashboard.PLOT_WIDTH) // WIDTH_STEP)
    return min(MAX_WIDTH, steps * WIDTH_STEP)


@bp.get("/projects/<project>/series")
@limiter.limit(refresh_limit)
def zoom(project: str) -> Response:
    """Every line panel's points inside the requested x range, or one panel's for its width."""
    storage.validate_project_name(project)
    state, page = load_page(project)
    if "panel" in request.args:
        return _one_panel(state, page)
    panels = [p for p in page.panels if p.shape.kind == "line"]
    x_range = _range(dashboard.x_extent(state, page))
    if x_range is None or not panels:
        return _json(orjson.dumps({"xmin": None, "xmax": None, "panels": {}}))
    limit = max_points()

    def compute() -> bytes:
        data = {p.id: dashboard.full_data(state, page, p, limit, x_range=x_range) for p in panels}
        return orjson.dumps({"xmin": x_range[0], "xmax": x_range[1], "panels": data})

    key = ("zoom", project, state.version, tuple(sorted(view_args(page.view).items())), x_range)
    return _cached_json(key, compute)


def _one_panel(state, page: dashboard.Page) -> Response:
    """One line panel at a full-screen width (and the zoom's range, for a metric panel)."""
    panel = page.panel(request.args.get("panel", ""))
    if panel is None or panel.shape.kind != "line":
        raise BadRequest("panel must name a line chart of this view")
    width = _width()
    system = panel in page.system_panels
    x_range = None
    if not system and ("xmin" in request.args or "xmax" in request.args):
        x_range = _range(dashboard.x_extent(state, page))
        if x_range is None:
            return _json(orjson.dumps({"xmin": None, "xmax": None, "panels": {}}))
    limit = max_points()

    def compute() -> bytes:
        data = dashboard.full_data(state, page, panel, limit, system=system, x_range=x_range,
                                   plot_width=width)
        low, high = x_range if x_range is not None else (None, None)
        return orjson.dumps({"xmin": low, "xmax": high, "width": width, "panels": {panel.id: data}})

    key = ("panel", page.project, state.version, tuple(sorted(view_args(page.view).items())),
           panel.id, x_range, width)
    return _cached_json(key, compute)


@bp.get("/projects/<project>/series.csv")
@limiter.limit(page_limit)  # a download is a visitor's action, like opening a page
def csv_download(project: str) -> Response:
    """One panel's drawn points (or with raw=1 every logged point) as a CSV file."""
    storage.validate_project_name(project)
    raw = request.args.get("raw", "") == "1"
    if request.args.get("raw", "") not in ("", "0", "1"):
        raise BadRequest("raw must be 1 or 0")
    state, page = load_page(project)
    panel = page.panel(request.args.get("panel", ""))
    if panel is None:
        raise BadRequest("panel must name a chart of this view")
    system = panel in page.system_panels
    x_range = None
    # A zoom is a range of the metric charts' x; system charts keep their whole time range.
    if not system and ("xmin" in request.args or "xmax" in request.args):
        x_range = _range(dashboard.x_extent(state, page))
    lines = series_csv.panel_csv(state, page, panel, system, x_range, None if raw else max_points())
    response = Response(lines, mimetype="text/csv")  # streamed: a raw download can be large
    response.headers["Content-Disposition"] = \
        f'attachment; filename="{series_csv.filename(panel.metric, raw)}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
