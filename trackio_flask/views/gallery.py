"""Media & Tables: images, video, audio, HTML and tables logged with trackio's media types.

`GET /projects/<p>/media` is the page; `.../media/section?key=` redraws one key after a control
changed (and replaces the URL with the page's), `.../media/more?key=&offset=` is the next page
of a key's entries, `.../media/refresh?v=&iv=` the page's one poller. Every request carries the
page's whole state (the `#media-state` form), so each answer is cacheable by its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from flask import Blueprint, Response, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, NotFound

from .. import dashboard, gallery, polling, rich, selection, storage, traces
from ..encoded import cached_response
from ..extensions import cache, limiter, page_limit, refresh_limit
from ..live import ProjectState, RichRef, RunInfo
from ..params import parse_int, view_args
from ..rendering import VERSION_MEMORY_S, last_activity, page_view, tick_state
from ..trace_index import trace_index

bp = Blueprint("gallery", __name__)
limiter.limit(page_limit)(bp)


@dataclass(frozen=True)
class MediaRequest:
    """One parsed Media & Tables request: the project at this tick and what the URL asks."""

    project: str
    state: ProjectState
    view: dashboard.View
    chosen: gallery.GalleryView
    runs: list[RunInfo]
    groups: list[gallery.KeyGroup]  # the media and table keys the selected runs logged
    allotments: dict[str, gallery.Allotment]  # per media key id: its share of the cards
    selection_token: str  # the selection as a token, which the run chooser edits (controls.js)
    max_cards: ClassVar[int] = gallery.MAX_CARDS
    object3d_formats: ClassVar[tuple[str, ...]] = gallery.OBJECT3D_FORMATS

    def page_args(self, **changes: str) -> dict[str, Any]:
        """Query arguments that reopen this page, with `changes` applied ("" removes one)."""
        args = {**view_args(self.view), **self.chosen.args(), **changes}
        return {name: value for name, value in args.items() if value != ""}

    def global_args(self) -> dict[str, Any]:
        """The metrics page's settings besides the run selection, carried along unchanged."""
        return {name: value for name, value in view_args(self.view).items()
                if name not in ("run_ids", "sel")}

    @property
    def url_sel(self) -> str:
        """The selection as the URL says it ("" default, "all", a token)."""
        return self.view.sel if self.view.runs is None else self.selection_token

    @property
    def run_keys(self) -> set[str]:
        """Keys of the selected runs (the run chooser ticks these)."""
        return {run.key for run in self.runs}

    @property
    def capped(self) -> bool:
        """Whether some media key shows fewer cards than asked, to keep the response small."""
        return any(allotment.capped for allotment in self.allotments.values())

    def link(self, kid: str, **changes: str) -> str:
        """The page's URL with one key's controls changed, scrolled to that key."""
        args = self.page_args(**{f"{name}.{kid}": value for name, value in changes.items()})
        return url_for("gallery.media", project=self.project, **args) + f"#k-{kid}"

    def with_key(self, kid: str, key_view: gallery.KeyView) -> MediaRequest:
        """This request with one key's controls replaced (for the URL after "load more")."""
        return replace(self, chosen=self.chosen.with_key(kid, key_view))

    def cache_parts(self) -> tuple:
        """What a render of this request depends on: project, version and the page's state."""
        return (self.project, self.state.version, sorted(self.page_args().items()),
                request.script_root)


def _key_field(name: str, what: str, value: str, group: gallery.KeyGroup) -> dict[str, Any]:
    """One per-key parameter as a KeyView field; 400 naming the parameter when malformed."""
    if what == "at":
        negative = value.startswith("-")
        step = parse_int(value[negative:], name, 0, gallery.MAX_STEP)
        return {"at": -step if negative else step}
    if what == "n":
        shown = parse_int(value, name, 0, gallery.MAX_SHOWN)
        return {"shown": gallery.rounded_shown(shown, len(group.refs))}
    if what == "desc":
        if value not in ("0", "1"):
            raise BadRequest(f"{name} must be 1 or 0")
        return {"desc": value == "1"}
    if len(value) > gallery.MAX_TEXT:
        raise BadRequest(f"{name} is longer than {gallery.MAX_TEXT} characters")
    return {what: value}


def _gallery_view(args: MultiDict, groups: list[gallery.KeyGroup]) -> gallery.GalleryView:
    """Read order and per-key controls (first value of each name). A parameter for a key the
    selected runs did not log, or one its kind of key does not use, is dropped: made-up ids
    never reach links, hidden inputs, the address bar or cache keys."""
    order = args.get("order") or "newest"
    if order not in gallery.ORDERS:
        raise BadRequest("order must be newest or oldest")
    by_id = {group.id: group for group in groups}
    fields: dict[str, dict[str, Any]] = {}
    for name, value in args.items():
        match = gallery.KEY_PARAM.fullmatch(name)
        if not match:
            continue
        what, kid = match.groups()
        if not gallery.KEY_ID.fullmatch(kid):
            raise BadRequest(f"{name} does not name a key (expected {what}.<10 hex digits>)")
        group = by_id.get(kid)
        if value == "" or group is None \
                or what not in (gallery.TABLE_FIELDS if group.table else gallery.MEDIA_FIELDS):
            continue
        fields.setdefault(kid, {}).update(_key_field(name, what, value, group))
    view = gallery.GalleryView(order=order)
    for kid, values in fields.items():
        view = view.with_key(kid, gallery.KeyView(**values))
    return view


def _parse(project: str) -> MediaRequest:
    storage.validate_project_name(project)
    state = tick_state(project)
    resolved = dashboard.resolve_selection(state, page_view())
    view = resolved.view
    # Oldest first, so side-by-side columns keep their places as runs are added.
    runs = dashboard.selected_by(dashboard.visible_runs(state, view), resolved.keys,
                                 view.latest_only)[::-1]
    groups = gallery.key_groups(state, runs)
    chosen = _gallery_view(request.args, groups)
    return MediaRequest(project, state, view, chosen, runs, groups,
                        gallery.allot(groups, chosen, len(runs)),
                        dashboard.concrete_token(state, resolved.keys))


def _group(req: MediaRequest, key: str | None) -> gallery.KeyGroup:
    if not key or len(key) > 1000:
        raise BadRequest("key names a logged media or table key")
    for group in req.groups:
        if group.key == key:
            return group
    raise NotFound("No media or table logged under this key for the selected runs.")


def _signatures_key(project: str, version: str) -> str:
    return f"tfg:{project}:{version}"


def _remember(req: MediaRequest) -> str:
    """Record which entries each key had at this version (polls diff against it); return it."""
    signatures = gallery.signatures(req.state)
    version = req.state.version
    cache.set(_signatures_key(req.project, version), signatures, timeout=VERSION_MEMORY_S)
    return version


def _poll_url(req: MediaRequest, interval: float) -> str:
    # The page's state rides on every poll from the #media-state form, not in this URL.
    return url_for("gallery.refresh", project=req.project, v=_remember(req), iv=interval)


def _runs_by_key(req: MediaRequest) -> dict[str, RunInfo]:
    return {run.key: run for run in req.runs}


def _section(req: MediaRequest, group: gallery.KeyGroup) -> dict[str, Any]:
    """What one key's section shows: the slider strip and, for media, the first page."""
    key_view = req.chosen.key(group.id)
    step = gallery.slider_step(group, key_view)
    strip = gallery.at_step(group.refs, req.runs, step)
    steps = group.steps
    section: dict[str, Any] = {"group": group, "key_view": key_view, "step": step,
                               "low": steps[0] if steps else None,
                               "high": steps[-1] if steps else None}
    if group.table:
        shown = [(run, ref) for run, ref in strip if ref is not None]
        values = rich.load_values(req.state.path, req.state.schema, [ref for _, ref in shown])
        section["table"] = gallery.table_view(
            [(run, ref, value) for (run, _), (ref, value) in zip(shown, values, strict=True)],
            key_view)
        return section
    allotment = req.allotments[group.id]
    entries, next_offset = gallery.page_of(group.refs, req.chosen.order, 0, allotment.grid)
    section["entries"] = _entries(req, entries)
    section["next_offset"] = next_offset
    section["wanted"] = gallery.shown_count(group, key_view)
    section["hidden_runs"] = len(strip) - allotment.strip
    strip = strip[:allotment.strip]
    strip_refs = [ref for _, ref in strip if ref is not None]
    loaded = dict(zip(strip_refs, _items(req, strip_refs), strict=True))
    section["strip"] = [(run, ref, loaded.get(ref, [])) for run, ref in strip]
    return section


def _items(req: MediaRequest, refs: list[RichRef]) -> list[list[dict[str, Any]]]:
    return [gallery.media_items(value)
            for _, value in rich.load_values(req.state.path, req.state.schema, refs)]


def _entries(req: MediaRequest, refs: list[RichRef]) -> list[tuple[RichRef, RunInfo, list[dict]]]:
    """Each entry with its run and media items (a list of images is one entry)."""
    runs = _runs_by_key(req)
    return [(ref, runs[ref.run], items)
            for ref, items in zip(refs, _items(req, refs), strict=True)]


def _sections(req: MediaRequest) -> list[dict[str, Any]]:
    return [_section(req, group) for group in req.groups]


TRACE_LINKS = 5  # newest traces linked per key


def _trace_keys(req: MediaRequest) -> list[tuple[str, int, list[traces.Entry]]]:
    """Per key the selected runs logged trackio.Trace values under: how many, and the newest."""
    grouped = trace_index(req.project, req.state).keys_by_run(req.run_keys)
    return [(key, len(entries), entries[::-1][:TRACE_LINKS])
            for key, entries in sorted(grouped.items())]


@bp.get("/projects/<project>/media")
def media(project: str) -> Response:
    """Every media and table key of the selected runs, rendered once per view and version."""
    req = _parse(project)
    interval = polling.interval_for(last_activity(req.state))
    return cached_response(("media", *req.cache_parts(), interval), lambda: render_template(
        "media.html", req=req, sections=_sections(req),
        all_runs=req.state.derived(("newest-first",), ProjectState.runs_newest_first),
        listed_runs=dashboard.SIDEBAR_RUNS, run_index=selection.index(req.state),
        trace_keys=_trace_keys(req), poll=_poll_url(req, interval), interval=interval))


@bp.get("/projects/<project>/media/section")
def section(project: str) -> Response:
    """One key's section after one of its controls changed; the address bar follows."""
    req = _parse(project)
    group = _group(req, request.args.get("key"))
    response = cached_response(("media-section", *req.cache_parts(), group.key),
                               lambda: render_template("_partials/_media_section.html",
                                                       req=req, s=_section(req, group)))
    response.headers["HX-Replace-Url"] = url_for("gallery.media", project=project,
                                                 **req.page_args())
    return response


@bp.get("/projects/<project>/media/more")
def more(project: str) -> Response:
    """The next page of one key's entries, ending with the button for the page after it.
    The page's state (and address) then counts them, so a live redraw keeps them shown."""
    req = _parse(project)
    group = _group(req, request.args.get("key"))
    if group.table:
        raise NotFound("A table shows all its rows at once: it has no more entries to load.")
    # Only offsets a button could carry (within the key's entries): each is a cache entry.
    offset = parse_int(request.args.get("offset", ""), "offset", 0, len(group.refs) - 1)
    entries, next_offset = gallery.page_of(group.refs, req.chosen.order, offset)
    shown = gallery.rounded_shown(offset + len(entries), len(group.refs))
    after = req.with_key(group.id, replace(req.chosen.key(group.id), shown=shown))
    response = cached_response(
        ("media-more", *req.cache_parts(), group.key, offset),
        lambda: render_template("_partials/_media_more.html", req=after, group=group,
                                entries=_entries(req, entries), next_offset=next_offset))
    response.headers["HX-Replace-Url"] = url_for("gallery.media", project=project,
                                                 **after.page_args())
    return response


@bp.get("/projects/<project>/media/refresh")
@limiter.limit(refresh_limit)
def refresh(project: str) -> Response:
    """The page's poll: 204 at the same version, else the changed key sections (out of band)
    and the next poller. A version this server never rendered gets every section."""
    req = _parse(project)
    page_version = request.args.get("v", "")
    page_interval = polling.interval_arg()
    interval = polling.interval_for(last_activity(req.state))
    if req.state.version == page_version:
        if interval == page_interval:
            return polling.no_content()
        return polling.next_poller(_poll_url(req, interval), interval)
    before = None
    if 0 < len(page_version) <= 64:
        before = cache.get(_signatures_key(project, page_version))
    changed = None if before is None else gallery.changed_keys(before, gallery.signatures(
        req.state))
    # Only versions this server issued name a cache entry of their own.
    known = page_version if before is not None else None
    return cached_response(("media-refresh", *req.cache_parts(), known, interval),
                           lambda: _render_refresh(req, changed, interval))


def _render_refresh(req: MediaRequest, changed: set[str] | None, interval: float) -> str:
    groups = req.groups
    if changed is not None:
        groups = [group for group in groups if group.key in changed]
    return render_template("_partials/_media_refresh.html", req=req, trace_keys=_trace_keys(req),
                           sections=[_section(req, group) for group in groups],
                           redraw=changed is None, poll=_poll_url(req, interval),
                           interval=interval)
