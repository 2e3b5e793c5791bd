"""A group's aggregate line and min–max band per pixel column, read from its members' min/max
pyramids: O(members × buckets × log rows) values instead of every logged point. Pure; no Flask.

It gives what `groups.downsample(groups.aggregate(members, agg, "minmax"), buckets)` gives,
without aligning every step of every member. Per equal-width x bucket (the same buckets
`downsample` cuts the aligned x into):
- x is the last aligned x in the bucket: the largest of the members' last finite steps in it;
- the line is the mean (or median) of the members' values at that x, each logged there or
  interpolated between its neighbours, NaN outside a member's own range (as `groups.align`);
- the band is the smallest and largest member value over the bucket. A member's logged values
  in it come from its pyramid; its interpolated ones lie on straight segments, so their extremes
  are at the bucket's first and last aligned x, which are computed and folded in.
- the count is how many members have a value at that x.
Only the min–max band decomposes this way: a std or CI band needs every aligned x (the caller
reads rows for those, and for smoothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .groups import AGGREGATES, Aggregate
from .series import overflow_scale
from .store import pyramid


@dataclass(frozen=True)
class Member:
    """One run's series: its steps (sorted, finite), its pyramid reader and how many of its
    values are finite."""

    steps: np.ndarray
    reader: pyramid.Reader
    finite: int


def reduce_group(members: list[Member], agg: str, buckets: int) -> Aggregate | None:
    """The group's downsampled min–max aggregate (see the module docstring); None when the
    members hold no finite value, or so few that `downsample` would keep every point."""
    if agg not in AGGREGATES or buckets < 1:
        raise ValueError("agg must be mean or median and buckets positive")
    ends = []
    for member in members:
        reader = member.reader
        first = reader.finite_at(0, reader.length, last=False)
        if first >= 0:
            ends.append((member, first, reader.finite_at(0, reader.length, last=True)))
    if not ends:
        return None
    # The union of x values holds at least the longest member's: past 2 × buckets of those,
    # `downsample` would reduce; below it, the caller aggregates rows as they are.
    if max(member.finite for member, _, _ in ends) <= 2 * buckets:
        return None
    low = min(float(member.steps[first]) for member, first, _ in ends)
    high = max(float(member.steps[last]) for member, _, last in ends)
    width = (high - low) / buckets
    if not width > 0:
        return None
    lo, hi = np.full(buckets, np.inf), np.full(buckets, -np.inf)
    x_first, x_last = np.full(buckets, np.inf), np.full(buckets, -np.inf)
    for member, first, last in ends:
        bounds = pyramid.row_bounds(member.steps, first, last + 1, low, width, buckets)
        stats = member.reader.ranges(bounds[:-1], bounds[1:])
        np.minimum(lo, stats.lo, out=lo)
        np.maximum(hi, stats.hi, out=hi)
        held = np.flatnonzero(stats.n > 0)
        x_first[held] = np.minimum(x_first[held], _edge_steps(member, bounds, held, last=False))
        x_last[held] = np.maximum(x_last[held], _edge_steps(member, bounds, held, last=True))
    used = np.flatnonzero(np.isfinite(x_last))
    x_first, x_last, lo, hi = x_first[used], x_last[used], lo[used], hi[used]
    at_last = np.vstack([_values_at(member, first, last, x_last) for member, first, last in ends])
    at_first = np.vstack([_values_at(member, first, last, x_first)
                          for member, first, last in ends])
    # fmin/fmax pass over NaN (a member with no value there) without a warning.
    lo = np.fmin.reduce(np.vstack((lo[None], at_first, at_last)), axis=0)
    hi = np.fmax.reduce(np.vstack((hi[None], at_first, at_last)), axis=0)
    count = np.sum(np.isfinite(at_last), axis=0)
    scale = overflow_scale(at_last)
    scaled = at_last / scale if scale != 1.0 else at_last
    centre = np.nanmean(scaled, axis=0) if agg == "mean" else np.nanmedian(scaled, axis=0)
    if scale != 1.0:
        centre = centre * scale
    return Aggregate(x_last, centre, lo, hi, count)


def _edge_steps(member: Member, bounds: np.ndarray, held: np.ndarray, last: bool
                ) -> np.ndarray:
    """The step of each held bucket's first (or last) finite row."""
    reader, values = member.reader, member.reader.values
    rows = bounds[held + 1] - 1 if last else bounds[held].copy()
    reader.reads += rows.size
    # Nearly every bucket starts and ends on a finite value: one gather, a search for the rest.
    for at in np.flatnonzero(~np.isfinite(values[rows])):
        start, stop = int(bounds[held[at]]), int(bounds[held[at] + 1])
        rows[at] = reader.finite_at(start, stop, last=last)
    return member.steps[rows]


def _values_at(member: Member, first: int, last: int, xs: np.ndarray) -> np.ndarray:
    """The member's value at each x: logged there, else interpolated between its finite
    neighbours; NaN outside its first and last finite step (as `groups.align`)."""
    steps, reader = member.steps, member.reader
    values = reader.values
    out = np.full(xs.size, np.nan)
    inside = np.flatnonzero((xs >= steps[first]) & (xs <= steps[last]))
    if not inside.size:
        return out
    x = xs[inside]
    # The last row at or before x, and the one after it (past x, unless x is the last step).
    left = np.searchsorted(steps[first:last + 1], x, side="right") - 1 + first
    right = np.minimum(left + 1, last)
    reader.reads += 2 * x.size
    left_value, right_value = values[left], values[right]
    # Rows next to a logged NaN or ±Inf: step to the nearest finite row on each side.
    for at in np.flatnonzero(~np.isfinite(right_value)):
        right[at] = reader.finite_at(int(left[at]) + 1, last + 1, last=False)
        right_value[at] = values[right[at]]
    for at in np.flatnonzero(~np.isfinite(left_value)):
        left[at] = reader.finite_at(first, int(left[at]) + 1, last=True)
        left_value[at] = values[left[at]]
    exact = steps[left] == x
    span = steps[right] - steps[left]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        slope = (right_value - left_value) / span
        between = slope * (x - steps[left]) + left_value
    out[inside] = np.where(exact | (span <= 0), left_value, between)
    return out
