"""Media & Tables: which logged media and table values a page shows, in what order, a page at a
time; the per-key URL state (step slider, table sort and filter); tables as rows of cells.

No Flask here: the view parses a request's query into a `GalleryView` (dropping parameters for
keys the selected runs did not log) and renders what these functions return.

URL parameters (besides the metrics page's run selection, `run_ids`):
    order        newest | oldest: the order of each key's entries (default newest)
    at.<id>      the step slider of one key (default: its newest step)
    sort.<id>    a table's sort column        desc.<id>  1 for descending
    q.<id>       a table's text filter (case-insensitive substring of any cell)
    n.<id>       how many of a key's entries are shown ("load more" raises it; default 48),
                 rounded up to whole pages and clamped to the key's entries (`rounded_shown`)
where <id> is `key_id(key)`, a short hash, so hostile key names never shape a parameter name.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .live import ProjectState, RichRef, RunInfo
from .rich import refs_of
from .series import step_text

MEDIA_KINDS = ("trackio.image", "trackio.video", "trackio.audio", "trackio.html", "trackio.object3d")
OBJECT3D_FORMATS = ("glb", "gltf", "obj", "stl", "ply")  # what the page's viewer draws
TABLE_KIND = "trackio.table"
PAGE_SIZE = 48
ORDERS = ("newest", "oldest")
MAX_TEXT = 200  # characters in a filter or sort column name
MAX_STEP = 2**53
MAX_SHOWN = 10**9  # bound of n.<id> as written; the key's entry count then clamps it
MAX_CARDS = 480  # media cards (strips and grids, all keys) in one response
MAX_TABLE_ROWS = 500  # rows rendered at once; the filter narrows the rest
CELL_PREVIEW = 120  # characters of a cell shown before "more"
KEY_ID = re.compile(r"[0-9a-f]{10}")
KEY_PARAM = re.compile(r"(at|sort|desc|q|n)\.(.*)")
MEDIA_FIELDS = ("at", "n")  # the per-key parameters each kind of key uses
TABLE_FIELDS = ("at", "sort", "desc", "q")


def key_id(key: str) -> str:
    """A short stable id for a key, safe in element ids and parameter names."""
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:10]


@dataclass(frozen=True)
class KeyView:
    """One key's controls: slider step (None = newest), table sort column and filter, and
    how many entries "load more" has brought in (0 = the first page)."""

    at: int | None = None
    sort: str = ""
    desc: bool = False
    q: str = ""
    shown: int = 0


@dataclass(frozen=True)
class GalleryView:
    """Everything a Media & Tables URL sets besides the run selection."""

    order: str = "newest"
    keys: tuple[tuple[str, KeyView], ...] = ()  # sorted by key id; defaults left out

    def key(self, kid: str) -> KeyView:
        """One key's controls (the defaults when the URL sets none)."""
        return dict(self.keys).get(kid, KeyView())

    def with_key(self, kid: str, view: KeyView) -> GalleryView:
        """This view with one key's controls replaced (defaults leave the URL)."""
        keys = {k: v for k, v in self.keys if k != kid}
        if view != KeyView():
            keys[kid] = view
        return replace(self, keys=tuple(sorted(keys.items())))

    def args(self) -> dict[str, str]:
        """The query arguments that reproduce this view (defaults left out)."""
        out: dict[str, str] = {}
        if self.order != "newest":
            out["order"] = self.order
        for kid, view in self.keys:
            if view.at is not None:
                out[f"at.{kid}"] = str(view.at)
            if view.sort:
                out[f"sort.{kid}"] = view.sort
            if view.desc:
                out[f"desc.{kid}"] = "1"
            if view.q:
                out[f"q.{kid}"] = view.q
            if view.shown:
                out[f"n.{kid}"] = str(view.shown)
        return out


def _finite_step(ref: RichRef) -> float:
    return ref.step if math.isfinite(ref.step) else -math.inf


@dataclass(frozen=True)
class KeyGroup:
    """One key's entries for the selected runs, in logging order."""

    key: str
    refs: tuple[RichRef, ...]
    table: bool
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", key_id(self.key))

    @cached_property
    def steps(self) -> list[int]:
        """The distinct finite steps this key was logged at, ascending."""
        return sorted({int(ref.step) for ref in self.refs if math.isfinite(ref.step)})


def key_groups(state: ProjectState, runs: Iterable[RunInfo]) -> list[KeyGroup]:
    """Media keys then table keys, each alphabetical, with their refs for these runs (built
    once per version and selection: every viewer's poll asks for it)."""
    wanted = frozenset(run.key for run in runs)
    return state.derived(("gallery-groups", wanted), lambda s: _key_groups(s, wanted))


def _key_groups(state: ProjectState, wanted: frozenset[str]) -> list[KeyGroup]:
    by_key: dict[str, list[RichRef]] = {}
    tables: set[str] = set()
    for ref in refs_of(state, {*MEDIA_KINDS, TABLE_KIND}, wanted):
        by_key.setdefault(ref.key, []).append(ref)
        if ref.kind == TABLE_KIND:
            tables.add(ref.key)
    return [KeyGroup(key, tuple(refs), key in tables)
            for key, refs in sorted(by_key.items(), key=lambda item: (item[0] in tables, item[0]))]


def ordered(refs: Sequence[RichRef], order: str) -> list[RichRef]:
    """Entries by step (ties in logging order), newest or oldest first."""
    ranked = sorted(refs, key=lambda ref: (_finite_step(ref), ref.row_id))
    return ranked[::-1] if order == "newest" else ranked


def page_of(refs: Sequence[RichRef], order: str, offset: int, size: int = PAGE_SIZE
            ) -> tuple[list[RichRef], int | None]:
    """One page of entries and the offset of the next page (None when this is the last)."""
    if offset < 0:
        raise ValueError("offset must not be negative")
    chosen = ordered(refs, order)[offset:offset + size]
    following = offset + size
    return chosen, following if following < len(refs) else None


def rounded_shown(shown: int, entries: int) -> int:
    """`n.<id>` as "load more" could have reached it: whole pages, at most the key's entries,
    0 for the first page, so URLs that differ only by how far they overshoot share a render."""
    pages = -(-shown // PAGE_SIZE)
    shown = min(pages * PAGE_SIZE, entries)
    return shown if shown > PAGE_SIZE else 0


def shown_count(group: KeyGroup, view: KeyView) -> int:
    """How many of a media key's entries its grid asks for: one page, or what "load more" reached."""
    return min(len(group.refs), max(PAGE_SIZE, view.shown))


@dataclass(frozen=True)
class Allotment:
    """A media key's share of a response's cards: runs in its strip, entries in its grid."""

    strip: int
    grid: int
    capped: bool  # fewer than the key asked for


def allot(groups: Sequence[KeyGroup], view: GalleryView, runs: int,
          budget: int = MAX_CARDS) -> dict[str, Allotment]:
    """Share `budget` cards among the media keys: first each key's strip (one card per run) and
    first page in key order, then the extra pages "load more" asked for, so one key that
    loaded many pages does not hide the others."""
    media = [group for group in groups if not group.table]
    left = budget
    strip: dict[str, int] = {}
    grid: dict[str, int] = {}
    for group in media:
        strip[group.id] = min(runs, left)
        left -= strip[group.id]
        grid[group.id] = min(PAGE_SIZE, len(group.refs), left)
        left -= grid[group.id]
    for group in media:
        extra = min(shown_count(group, view.key(group.id)) - grid[group.id], left)
        grid[group.id] += extra
        left -= extra
    return {group.id: Allotment(strip[group.id], grid[group.id],
                                strip[group.id] < runs
                                or grid[group.id] < shown_count(group, view.key(group.id)))
            for group in media}


def slider_step(group: KeyGroup, view: KeyView) -> int | None:
    """The step the slider shows: the key's newest, or the logged step at or before the URL's
    (the first one when it asks for less), so the slider always reads a step that was logged
    (None if the key has none)."""
    steps = group.steps
    if not steps:
        return None
    if view.at is None:
        return steps[-1]
    at = bisect.bisect_right(steps, view.at)
    return steps[max(0, at - 1)]


def at_step(refs: Sequence[RichRef], runs: Sequence[RunInfo], step: int | None
            ) -> list[tuple[RunInfo, RichRef | None]]:
    """Per run, its entry logged at the nearest step at or before `step` (last logged wins)."""
    best: dict[str, RichRef] = {}
    if step is not None:
        for ref in refs:
            if not math.isfinite(ref.step) or ref.step > step:
                continue
            seen = best.get(ref.run)
            if seen is None or (ref.step, ref.row_id) >= (seen.step, seen.row_id):
                best[ref.run] = ref
    return [(run, best.get(run.key)) for run in runs]


def media_items(value: Any) -> list[dict[str, Any]]:
    """The media dicts of a logged value (one, or a list of them); malformed parts dropped."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)
            and isinstance(item.get("file_path"), str) and item.get("_type") in MEDIA_KINDS]


def caption_of(item: dict[str, Any]) -> str:
    """A media item's caption, or "" when it has none (or a non-text one)."""
    caption = item.get("caption")
    return caption if isinstance(caption, str) else ""


@dataclass(frozen=True)
class Cell:
    """One table cell: its text (shown escaped), images it holds, and how it sorts."""

    text: str
    images: tuple[dict[str, Any], ...] = ()
    number: float | None = None

    @property
    def long(self) -> bool:
        return len(self.text) > CELL_PREVIEW

    @property
    def preview(self) -> str:
        return self.text[:CELL_PREVIEW] + "…" if self.long else self.text

    @property
    def sort_key(self) -> tuple:
        # Numbers before text, empty cells last, whatever the direction is reversed to.
        if self.number is not None and not math.isnan(self.number):
            return (0, self.number, "")
        if self.text == "" and not self.images:
            return (2, 0.0, "")
        return (1, 0.0, self.text.casefold())


def cell_of(value: Any) -> Cell:
    """A cell for one logged table value: numbers, text, images, anything else as JSON."""
    if value is None:
        return Cell("")
    if isinstance(value, bool):
        return Cell(str(value).lower())
    if isinstance(value, int):
        return Cell(str(value), number=float(value))
    if isinstance(value, float):
        return Cell(f"{value:.6g}", number=value)
    if isinstance(value, str):
        return Cell(value)
    images = media_items(value)
    if images:
        return Cell(" ".join(caption_of(item) for item in images), images=tuple(images))
    return Cell(json.dumps(value, default=str, ensure_ascii=False))


@dataclass(frozen=True)
class TableView:
    """Rows of the selected runs' tables at one step, filtered and sorted."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    matched: int  # rows that pass the filter (at most MAX_TABLE_ROWS of them are in `rows`)
    total: int  # rows before the filter


def table_view(tables: Sequence[tuple[RunInfo, RichRef, Any]], view: KeyView) -> TableView:
    """Join each run's table (trackio's `_value`: a list of row dicts) under run and step
    columns, keep the rows whose text contains the filter, sort by the chosen column."""
    columns: dict[str, None] = {"run": None, "step": None}
    records: list[tuple[RunInfo, RichRef, dict[str, Any]]] = []
    for run, ref, value in tables:
        rows = value.get("_value") if isinstance(value, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict):
                records.append((run, ref, row))
                columns.update((str(name), None) for name in row)
    names = tuple(columns)
    rows = []
    for run, ref, row in records:
        values = {str(name): value for name, value in row.items()}
        step = Cell(step_text(ref.step), number=ref.step if math.isfinite(ref.step) else None)
        rows.append((Cell(run.name), step, *(cell_of(values.get(name)) for name in names[2:])))
    needle = view.q.casefold()
    matched = [row for row in rows if not needle or any(needle in cell.text.casefold()
                                                          for cell in row)]
    if view.sort in names:
        index = names.index(view.sort)
        present = [row for row in matched if row[index].sort_key[0] < 2]
        empty = [row for row in matched if row[index].sort_key[0] == 2]
        present.sort(key=lambda row: row[index].sort_key, reverse=view.desc)
        matched = present + empty
    return TableView(names, tuple(matched[:MAX_TABLE_ROWS]), len(matched), len(rows))


def signatures(state: ProjectState) -> dict[str, tuple[int, int]]:
    """Per media or table key: how many entries it has and the last one's row id. A key whose
    signature differs between two versions needs redrawing."""
    return state.derived("gallery-signatures", _signatures)


def _signatures(state: ProjectState) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for ref in refs_of(state, {*MEDIA_KINDS, TABLE_KIND}):
        count, last = out.get(ref.key, (0, 0))
        out[ref.key] = (count + 1, max(last, ref.row_id))
    return out


def changed_keys(before: Mapping[str, Sequence[int]], after: Mapping[str, tuple[int, int]]
                 ) -> set[str] | None:
    """Keys whose entries changed, or None when keys appeared or vanished (redraw all)."""
    if set(before) != set(after):
        return None
    return {key for key, signature in after.items() if tuple(before[key]) != signature}
