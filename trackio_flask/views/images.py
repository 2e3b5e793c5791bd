"""Chart images and badges. A chart (`chart.svg|png?panel=`) or a whole view (`view.svg|png`)
is drawn on the server for the page's own view parameters, cached per project version and view;
a badge (`badge.svg`) is a shields-style box of one run's metric, built without a renderer.

The ETag names the project version, the view and the format, so a revalidation is answered
304 before anything is read or drawn; a draw runs in a renderer child (image_render.py) with a
deadline, and only draws count against the client's image budget (RATELIMIT_IMAGES).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import BadRequest, NotFound

from .. import badges, chart_image, dashboard, storage
from ..caching import cached
from ..dashboard import fingerprint
from ..extensions import limiter, page_limit, store
from ..image_render import FORMATS, Renderer, RenderError
from ..live import ProjectState
from ..params import page_args
from ..render_budget import DrawUnavailable, draw_limit, drew, mark_drawn, unavailable
from ..rendering import load_page, max_points
from ..shared_cache import not_modified, share

bp = Blueprint("images", __name__)
log = logging.getLogger(__name__)
MIMETYPES = {"svg": "image/svg+xml", "png": "image/png"}
_renderer_lock = threading.Lock()


def renderer() -> Renderer:
    """The app's renderer (children start on the first image, not with the server)."""
    with _renderer_lock:
        if "trackio_images" not in current_app.extensions:
            current_app.extensions["trackio_images"] = Renderer(
                slots=int(current_app.config["IMAGE_SLOTS"]),
                wall_s=float(current_app.config["IMAGE_TIMEOUT_S"]))
        return current_app.extensions["trackio_images"]


def image_theme(view: dashboard.View) -> str:
    """Images have one theme: the view's, light when the browser would decide."""
    return "dark" if view.theme == "dark" else "light"


def _scale(fmt: str) -> int:
    """The PNG's pixel ratio (1 or 2; SVGs ignore it), checked before any key is made of it."""
    raw = request.args.get("scale", "1")
    if raw not in ("1", "2"):
        raise BadRequest("scale must be 1 or 2")
    return int(raw) if fmt == "png" else 1


def panel_chart(state: ProjectState, page: dashboard.Page, panel: dashboard.Panel,
                width: int = chart_image.WIDTH, height: int = chart_image.HEIGHT) -> dict[str, Any]:
    """The image spec of one panel at the view's settings and zoom (system charts: no zoom)."""
    view = page.view
    system = panel in page.system_panels
    x_range = None
    if not system and view.xmin is not None and view.xmax is not None:
        x_range = (view.xmin, view.xmax)
    series = dashboard.full_data(state, page, panel, max_points(), system=system,
                                 x_range=x_range)
    x_kind = "time" if system else view.x_kind
    x_title = view.x_axis[len("metric:"):] if x_kind == "metric" else ""
    return chart_image.panel_spec(
        panel.metric, series, kind=panel.shape.kind, x_kind=x_kind, x_title=x_title,
        log_y=panel.shape.log_y, smoothed=panel.shape.smoothed, x_range=x_range, width=width,
        height=height)


def subtitle(page: dashboard.Page, project: bool = True) -> str:
    """What the image shows besides the chart: project, runs, smoothing."""
    runs = len(page.selected)
    text = f"{page.project} · " if project else ""
    text += f"{runs} run{'s' if runs != 1 else ''}"
    if page.view.smoothing:
        text += f" · smoothing {page.view.smoothing}"
    return text


def _answer(fmt: str, scale: int, etag: str, draw: Any) -> Response:
    """304 when the client holds `etag`; else the cached image, drawn once per etag."""
    if not_modified(etag):
        return share(Response(status=304), etag=etag)

    def render() -> bytes:
        mark_drawn()
        try:
            return renderer().render(draw(), fmt, scale=scale)
        except RenderError as exc:
            log.warning("503 chart image not drawn for %s: %s", request.path, exc)
            raise DrawUnavailable(str(exc)) from None

    body = cached(("image", etag), render, len)
    response = Response(body, mimetype=MIMETYPES[fmt])
    return share(response, etag=etag)


bp.register_error_handler(DrawUnavailable, unavailable)


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise NotFound("Images are .svg or .png.")
    return fmt


def _drawing(project: str, fmt: str) -> tuple[str, int, ProjectState, dashboard.Page]:
    """What every image starts from: its format, scale and the request's view of the project."""
    storage.validate_project_name(project)
    fmt = _format(fmt)
    return fmt, _scale(fmt), *load_page(project)


def _key(kind: str, page: dashboard.Page, state: ProjectState, fmt: str, scale: int,
         *more: Any) -> str:
    return fingerprint(kind, page.project, state.version, sorted(page_args(page.view).items()),
                       fmt, scale, request.script_root, *more)


@bp.get("/projects/<project>/chart.<fmt>")
@limiter.limit(page_limit)
@limiter.limit(draw_limit, deduct_when=drew)
def chart(project: str, fmt: str) -> Response:
    """One chart of the view (`panel=` its id, as in the page) as SVG or PNG."""
    fmt, scale, state, page = _drawing(project, fmt)
    panel = page.panel(request.args.get("panel", ""))
    if panel is None:
        raise BadRequest("panel must name a chart of this view")
    etag = _key("chart", page, state, fmt, scale, panel.id)
    return _answer(fmt, scale, etag, lambda: chart_image.themed(
        panel_chart(state, page, panel), image_theme(page.view), subtitle(page)))


@bp.get("/projects/<project>/view.<fmt>")
@limiter.limit(page_limit)
@limiter.limit(draw_limit, deduct_when=drew)
def view_image(project: str, fmt: str) -> Response:
    """The view's first charts in a grid (the page's link preview)."""
    fmt, scale, state, page = _drawing(project, fmt)
    panels = list(page.panels or page.system_panels)[:chart_image.MAX_VIEW_CHARTS]
    if not panels:
        raise NotFound("This view has no charts.")
    etag = _key("view", page, state, fmt, scale)

    def draw() -> dict[str, Any]:
        charts = [panel_chart(state, page, p, width=chart_image.WIDTH,
                              height=chart_image.HEIGHT * 2 // 3) for p in panels]
        return chart_image.themed(chart_image.view_spec(page.project, charts),
                                  image_theme(page.view), subtitle(page, project=False))

    return _answer(fmt, scale, etag, draw)


@bp.get("/projects/<project>/badge.svg")
@limiter.limit(page_limit)
def badge(project: str) -> Response:
    """A shields-style badge of one run's metric: `run`, `metric`, `stat` (latest, min, max,
    best), optional `label` and `color`."""
    storage.validate_project_name(project)
    run_name, metric = request.args.get("run", ""), request.args.get("metric", "")
    stat = request.args.get("stat", "latest")
    if stat not in badges.STATS:
        raise BadRequest("stat must be one of " + ", ".join(badges.STATS))
    try:
        fill = badges.colour(request.args.get("color"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    state = store().get(project, max_age=float(current_app.config["TICK_S"]))
    run = state.runs.get(run_name) or next(
        (r for r in state.runs.values() if r.name == run_name), None)
    if run is None:
        raise NotFound("No such run in this project (run= takes its name or id).")
    columns = state.metrics.get(run.key)
    if columns is None or metric not in columns.metrics:
        raise NotFound("This run logged no such metric.")
    label = request.args.get("label") or (metric if stat == "latest" else f"{metric} ({stat})")
    etag = fingerprint("badge", project, state.version, run.key, metric, stat, label, fill)
    if not_modified(etag):
        return share(Response(status=304), etag=etag)
    value = badges.format_value(badges.summary(columns.column(metric), metric, stat))
    response = Response(badges.badge_svg(label, value, fill), mimetype=MIMETYPES["svg"])
    return share(response, etag=etag)
