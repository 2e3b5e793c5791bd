"""What a grouped panel's refresh sends: per group whose line moved, its points from the first
step that can have changed (`k`) on, which the page puts in place of its own (app.js
`mergeSeries`). Only for pages whose epoch says they append (`dashboard.group_epoch`): steps on
the x axis and every member's steps only growing. No Flask here.

A member's values are interpolated between its logged points and NaN past its last, so its new
points change the group's aggregate only past its former last step (at it too when it logs that
step again); a centred average also moves the `reach` points before, and an EMA goes on from a
state kept before the change (group_ema.py). Those steps are aggregated from each member's rows
there and the finite row before (as a zoom is), which gives the whole line's numbers.

When that would read far back (a member catching up from behind, a page left polling for an
hour, an EMA with no kept state before the change), or start inside a line the page drew in
buckets (a bucket's point stands for steps before the change too), the group's whole line is
sent instead, as the page draws it (from the pyramids where it can), computed once per version
for every page that needs it: never more than the redraw it replaces.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from . import dashboard, group_ema, groups, mapped_pages
from .dashboard import Page, Panel, View
from .live import ProjectState, RunInfo
from .series import Columns, smooth, smoothing_reach

Members = list[tuple[RunInfo, Columns]]
EVERY_ROW = -groups.FLOAT_MAX  # a k (or a window's start) before any step


def panel_delta(state: ProjectState, page: Page, panel: Panel, since_id: int,
                max_points: int, plot_width: int = dashboard.PLOT_WIDTH) -> list[dict[str, Any]]:
    """The changed part of each group line of `panel` since metric row `since_id`."""
    view = page.view
    buckets = dashboard.buckets_per_series(len(page.grouped), max_points, plot_width)
    cursor = state.metric_cursor  # before reading rows: a kept EMA state claims only these
    result = []
    for label, colour, members in dashboard.group_members(state, page, panel):
        changed = _changed_from(members, panel.metric, since_id)
        if changed is None:
            continue
        limit = max(max_points, 2 * buckets) * len(members)  # rows a delta may read
        around = None
        if not _inside_buckets(members, panel.metric, since_id, changed, buckets):
            around = _line_around(state, members, view, panel.metric, changed, cursor, limit)
        if around is None:
            whole = state.derived(
                ("group-line", view, panel.id, label, buckets),
                lambda s, label=label, colour=colour, members=members: dashboard.group_line(
                    s, view, panel, label, colour, members, buckets))
            if whole is not None:
                result.append({**whole, "k": EVERY_ROW})
            continue
        agg, smoothed, first = around
        if first >= agg.x.size:
            continue
        result.append(_tail(label, colour, members, view, panel, agg, smoothed, first,
                            changed, buckets))
    return result


def _tail(label: str, colour: str, members: Members, view: View, panel: Panel,
          agg: groups.Aggregate, smoothed: np.ndarray | None, first: int, changed: float,
          buckets: int) -> dict[str, Any]:
    """The group's points from the first one that moved, at most ~a bucket per page pixel."""
    reach = smoothing_reach(view.smoother, view.smoothing)
    # A line shorter than the window averages over all of its points: each one moves.
    start = 0 if reach and first < view.smoothing else max(0, first - reach)
    part = groups.sliced(agg, start)
    smoothed = None if smoothed is None else smoothed[start:]
    # Points before the change whose average moved are replaced from the first of them.
    k = float(part.x[0]) if start < first else changed
    extent = float(agg.x[-1]) - min(float(columns.steps[0]) for _, columns in members)
    width = max(1, math.ceil(buckets * (float(part.x[-1]) - float(part.x[0])) / extent)) \
        if extent > 0 else 1
    if part.x.size > 2 * width:
        if smoothed is not None:
            smoothed = smoothed[groups.bucket_ends(part.x, width)]
        part = groups.downsample(part, width)
    return dashboard.group_wire(label, colour, len(members), part, smoothed, view,
                                panel.shape.log_y, buckets, k=k)


def _line_around(state: ProjectState, members: Members, view: View, metric: str,
                 changed: float, cursor: int, limit: int
                 ) -> tuple[groups.Aggregate, np.ndarray | None, int] | None:
    """The group's aggregate and smoothed line over the steps a delta needs around `changed`
    (its values there equal the whole line's), and the position of `changed` in them; None
    when that means reading more than `limit` rows, or an EMA has no kept state before."""
    if _rows_from(members, changed) > limit:
        return None
    if view.smoother == "ema" and view.smoothing:
        kept = state.group_ema.before(
            group_ema.line_key(metric, [run.key for run, _ in members], view.agg,
                               view.smoothing),
            changed, functools.partial(_unmoved, members, metric))
        if kept is None or _rows_from(members, kept.x) > limit:
            return None
        agg, _ = _aggregate_from(members, view, metric, np.nextafter(kept.x, math.inf), 0)
        smoothed = dashboard.smoothed_line(state, members, view, metric, agg, kept, cursor)
        return agg, smoothed, int(np.searchsorted(agg.x, changed, side="left"))
    reach = smoothing_reach(view.smoother, view.smoothing)
    agg, whole = _aggregate_from(members, view, metric, changed, 2 * reach + 2)
    first = int(np.searchsorted(agg.x, changed, side="left"))
    if reach and not whole and first <= 2 * reach:
        # Too few points before the change to average the first changed ones the way the
        # whole line does: read everything (a short or oddly logged group).
        agg, _ = _aggregate_from(members, view, metric, EVERY_ROW, 0)
        first = int(np.searchsorted(agg.x, changed, side="left"))
    return agg, smooth(agg.y, view.smoother, view.smoothing), first


def _inside_buckets(members: Members, metric: str, since_id: int, changed: float,
                    buckets: int) -> bool:
    """Whether the change starts inside a line the page drew in buckets (a member behind its
    group mates logged): the page's point for the bucket around `changed` stands for steps
    before it too, so replacing it from `changed` on would drop their band."""
    if sum(columns.finite.get(metric, 0) for _, columns in members) <= 2 * buckets:
        return False  # drawn point by point (the union of steps is at most this long)
    ends = [dashboard.finite_row(columns.column(metric), columns.index_after(since_id) - 1, -1)
            for _, columns in members]
    end = max((float(columns.steps[row]) for (_, columns), row in zip(members, ends, strict=True)
               if row >= 0), default=-math.inf)
    return changed < end


def _unmoved(members: Members, metric: str, mark: group_ema.Mark) -> bool:
    """Whether the group's aggregate up to the mark's x is what it was at the mark's cursor:
    what members logged since changed it only past that x."""
    changed = _changed_from(members, metric, mark.cursor)
    return changed is None or changed > mark.x


def _changed_from(members: Members, metric: str, since_id: int) -> float | None:
    """The first step at which the group's aggregate can differ from what it was at
    `since_id` (steps sorted); None when no member logged a finite value since."""
    changed = None
    for _run, columns in members:
        values = columns.column(metric)
        new_rows = columns.index_after(since_id)
        fresh = np.flatnonzero(np.isfinite(values[new_rows:]))
        mapped_pages.done_with(columns, (metric,))
        if not fresh.size:
            continue
        before = dashboard.finite_row(values, new_rows - 1, -1)
        if before < 0:
            return EVERY_ROW  # its first value: every row of the group's line
        last = float(columns.steps[before])
        # Logged at its last step again (a resumed run): that step's band moves too.
        again = float(columns.steps[new_rows + int(fresh[0])]) <= last
        at = last if again else float(np.nextafter(last, math.inf))
        changed = at if changed is None else min(changed, at)
    return changed


def _rows_from(members: Members, step: float) -> int:
    """How many rows the members logged at or after `step`."""
    return sum(columns.length - int(np.searchsorted(columns.steps[: columns.length], step))
               for _, columns in members)


def _aggregate_from(members: Members, view: View, metric: str, changed: float,
                    rows_before: int) -> tuple[groups.Aggregate, bool]:
    """The group's aggregate from `rows_before` rows (per member) before step `changed` on,
    and whether that is the whole of it."""
    low = changed
    if rows_before:
        starts = [float(columns.steps[max(0, int(np.searchsorted(
            columns.steps[: columns.length], changed, side="left")) - rows_before)])
            for _, columns in members if columns.length]
        low = min(starts, default=changed)
    whole = low <= min((float(columns.steps[0]) for _, columns in members if columns.length),
                       default=low)
    agg = groups.aggregate([dashboard.group_series(run, columns, view, metric, (low, math.inf))
                            for run, columns in members], view.agg, view.band)
    for _run, columns in members:
        mapped_pages.done_with(columns, (metric,))
    # The neighbour rows before the window give aggregates at steps before it, where other
    # members' values were not read: only steps from `low` on are the group's.
    return groups.sliced(agg, int(np.searchsorted(agg.x, low, side="left"))), whole
