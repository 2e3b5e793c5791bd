"""A min/max pyramid per series: per power-of-two block of rows (64, 128, … up to the file's
capacity) the smallest and largest finite value, how many values are finite, and how many are
markers (logged NaN, ±Inf). A chart of any range then reads O(buckets × log rows) values, not
the series whole.

Layout: each statistic of a series is one float64 array, its levels one after the other
(`levels(capacity)` gives each level's offset and block count). Level 0 block b covers rows
[64b, 64b + 64); block j of level l covers level 0 blocks [j·2^l, (j+1)·2^l).

Validity: only blocks lying wholly below `RunPyramid.length` are read; rows from there to the
columns' length are read raw. Updating rows [old, new) rewrites exactly the blocks that
intersect them, so blocks a reader uses (wholly below its own, older, length) never change
under it. Blocks are computed from the file's rows, which are written once and never changed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..series import LOGGED_NAN_BITS

SHIFT = 6
BLOCK = 1 << SHIFT  # rows per level 0 block
STATS = ("lo", "hi", "n", "odd")
# A run file smaller than this gets no pyramid: its charts read rows anyway (a range of a few
# thousand rows is under PYRAMID_MIN_ROWS_PER_BUCKET per pixel column), and every mapping holds
# a file descriptor, so 10,000 short runs with pyramids would pass the worker's open-file limit.
MIN_CAPACITY = 1 << 11
TAIL_ROWS = 1 << 18  # rows past the pyramid read raw at most; further, callers read whole


@functools.lru_cache(maxsize=256)  # asked per series read; capacities are few
def levels(capacity: int) -> tuple[tuple[int, int], ...]:
    """(offset, blocks) of each level, from 64-row blocks up to one block."""
    out, offset, size = [], 0, BLOCK
    while True:
        blocks = max(1, -(-capacity // size))
        out.append((offset, blocks))
        offset += blocks
        if blocks == 1:
            return tuple(out)
        size <<= 1


def size(capacity: int) -> int:
    offset, blocks = levels(capacity)[-1]
    return offset + blocks


@dataclass
class RunPyramid:
    """The pyramids of one run file's metrics, valid for rows below `length`."""

    capacity: int
    length: int
    series: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # metric -> stat

    @property
    def shape(self) -> tuple[tuple[int, int], ...]:
        return levels(self.capacity)


def empty(capacity: int) -> dict[str, np.ndarray]:
    total = size(capacity)
    return {"lo": np.full(total, np.inf), "hi": np.full(total, -np.inf),
            "n": np.zeros(total), "odd": np.zeros(total)}


def update(stats: dict[str, np.ndarray], values: np.ndarray, capacity: int, start: int,
           stop: int) -> None:
    """Recompute every block that intersects rows [start, stop) from `values` (the file's
    whole column of `capacity` rows): O(stop - start + levels)."""
    if stop <= start:
        return
    shape = levels(capacity)
    first, end = start >> SHIFT, ((stop - 1) >> SHIFT) + 1
    rows = values[first * BLOCK:end * BLOCK]
    if rows.size < (end - first) * BLOCK:
        rows = np.concatenate((rows, np.full((end - first) * BLOCK - rows.size, np.nan)))
    matrix = rows.reshape(-1, BLOCK)
    # Most blocks hold only finite values: their plain min and max are finite (a NaN or an
    # infinity would show in one of them), and only the other blocks need the masked pass.
    lo, hi = matrix.min(axis=1), matrix.max(axis=1)
    n, odd = np.full(lo.size, float(BLOCK)), np.zeros(lo.size)
    unclean = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
    if unclean.size:
        part = np.ascontiguousarray(matrix[unclean])
        finite = np.isfinite(part)
        lo[unclean] = np.where(finite, part, np.inf).min(axis=1)
        hi[unclean] = np.where(finite, part, -np.inf).max(axis=1)
        n[unclean] = finite.sum(axis=1)
        odd[unclean] = (np.isinf(part) | (part.view(np.uint64) == LOGGED_NAN_BITS)).sum(axis=1)
    offset = shape[0][0]
    stats["lo"][offset + first:offset + end] = lo
    stats["hi"][offset + first:offset + end] = hi
    stats["n"][offset + first:offset + end] = n
    stats["odd"][offset + first:offset + end] = odd
    for (child, children), (parent, _blocks) in zip(shape, shape[1:], strict=False):
        first, end = first >> 1, ((end - 1) >> 1) + 1
        low, high = 2 * first, min(2 * end, children)
        pad = 2 * end - high  # an odd last child has no sibling
        for name, reduce, fill in (("lo", np.minimum, np.inf), ("hi", np.maximum, -np.inf),
                                   ("n", np.add, 0.0), ("odd", np.add, 0.0)):
            part = stats[name][child + low:child + high]
            if pad:
                part = np.concatenate((part, [fill]))
            stats[name][parent + first:parent + end] = reduce(part[0::2], part[1::2])


def build(values: np.ndarray, capacity: int, length: int) -> dict[str, np.ndarray]:
    """A series' pyramid over its first `length` rows (`values` holds `capacity` rows)."""
    stats = empty(capacity)
    # In slices, so the temporaries of a long series stay a few MB.
    step = BLOCK << 14
    for start in range(0, length, step):
        update(stats, values, capacity, start, min(length, start + step))
    return stats


class Stats(NamedTuple):
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray


class Reader:
    """Range queries over one series: its column and its pyramid, valid below `covered` rows."""

    def __init__(self, values: np.ndarray, length: int, stats: dict[str, np.ndarray],
                 capacity: int, covered: int) -> None:
        self.values, self.length, self.stats = values, length, stats
        self.shape = levels(capacity)
        self.covered = min(covered, length)
        self.reads = 0  # values read (pyramid and raw), for tests that count

    def ranges(self, starts: np.ndarray, ends: np.ndarray) -> Stats:
        """Min, max and finite count of the rows [starts[i], ends[i]), all at once."""
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        count = starts.size
        lo, hi, n = np.full(count, np.inf), np.full(count, -np.inf), np.zeros(count)
        first = (starts + BLOCK - 1) >> SHIFT
        last = np.minimum(ends, self.covered) >> SHIFT
        blocked = first < last
        # Raw rows: the head before the first whole block and the tail after the last.
        raw_starts = np.concatenate((starts, np.where(blocked, last * BLOCK, ends)))
        raw_ends = np.concatenate((np.where(blocked, first * BLOCK, ends), ends))
        owners = np.concatenate((np.arange(count), np.arange(count)))
        self._raw(raw_starts, raw_ends, owners, lo, hi, n)
        begin, stop = first[blocked], last[blocked]
        which = np.flatnonzero(blocked)
        stats = self.stats
        for offset, _blocks in self.shape:
            if not begin.size:
                break
            for take, index in (((begin < stop) & (begin & 1 == 1), None),
                                ((begin < stop) & (stop & 1 == 1), -1)):
                if not take.any():
                    continue
                blocks = offset + (begin[take] if index is None else stop[take] - 1)
                who = which[take]
                lo[who] = np.minimum(lo[who], stats["lo"][blocks])
                hi[who] = np.maximum(hi[who], stats["hi"][blocks])
                n[who] += stats["n"][blocks]
                self.reads += 3 * blocks.size
                if index is None:
                    begin[take] += 1
                else:
                    stop[take] -= 1
            alive = begin < stop
            begin, stop, which = begin[alive] >> 1, stop[alive] >> 1, which[alive]
        return Stats(lo, hi, n)

    def _raw(self, starts, ends, owners, lo, hi, n) -> None:
        sizes = np.maximum(ends - starts, 0)
        keep = sizes > 0
        starts, sizes, owners = starts[keep], sizes[keep], owners[keep]
        if not sizes.size:
            return
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        index = np.arange(int(sizes.sum())) + np.repeat(starts - offsets, sizes)
        values = self.values[index]
        self.reads += values.size
        finite = np.isfinite(values)
        np.minimum.at(lo, owners, np.minimum.reduceat(np.where(finite, values, np.inf), offsets))
        np.maximum.at(hi, owners,
                      np.maximum.reduceat(np.where(finite, values, -np.inf), offsets))
        np.add.at(n, owners, np.add.reduceat(finite, offsets))

    def finite_at(self, start: int, stop: int, last: bool) -> int:
        """The last (or first) row in [start, stop) holding a finite value; -1 when none."""
        if stop <= start:
            return -1
        first_block = (start + BLOCK - 1) >> SHIFT
        last_block = min(stop, self.covered) >> SHIFT
        if first_block >= last_block:
            return self._scan(start, stop, last)
        head, tail = (start, first_block * BLOCK), (last_block * BLOCK, stop)
        for part in ((tail,) if last else (head,)):
            found = self._scan(*part, last)
            if found >= 0:
                return found
        found = self._block_finite(first_block, last_block, last)
        if found >= 0:
            return found
        return self._scan(*(head if last else tail), last)

    def _scan(self, start: int, stop: int, last: bool) -> int:
        # Most series end (and start) on a finite value: look near the end before the whole.
        window = 64
        while True:
            low, high = (max(start, stop - window), stop) if last else \
                (start, min(stop, start + window))
            part = self.values[low:high]
            self.reads += part.size
            hits = np.flatnonzero(np.isfinite(part))
            if hits.size:
                return low + int(hits[-1] if last else hits[0])
            if (low == start) if last else (high == stop):
                return -1
            window *= 8

    def _block_finite(self, begin: int, stop: int, last: bool) -> int:
        """Descend from the segment tree's blocks over level 0 blocks [begin, stop)."""
        left, right, level = [], [], 0
        while begin < stop:
            if begin & 1:
                left.append((level, begin))
                begin += 1
            if stop & 1:
                stop -= 1
                right.append((level, stop))
            begin, stop, level = begin >> 1, stop >> 1, level + 1
        order = [*right, *reversed(left)] if last else [*left, *reversed(right)]
        counts = self.stats["n"]
        for level, block in order:
            self.reads += 1
            if counts[self.shape[level][0] + block] <= 0:
                continue
            while level > 0:
                level -= 1
                offset = self.shape[level][0]
                children = (2 * block + 1, 2 * block) if last else (2 * block, 2 * block + 1)
                self.reads += 1
                block = children[0] if counts[offset + children[0]] > 0 else children[1]
            return self._scan(block * BLOCK, min(block * BLOCK + BLOCK, self.covered), last)
        return -1

    def marked_rows(self) -> np.ndarray:
        """Rows holding a logged NaN or ±Inf, found by descending the blocks that hold some."""
        odd = self.stats["odd"]
        top = len(self.shape) - 1
        blocks = np.arange(self.shape[top][1])
        for level in range(top, -1, -1):
            offset = self.shape[level][0]
            blocks = blocks[odd[offset + blocks] > 0]
            self.reads += blocks.size
            if level:
                blocks = np.concatenate((2 * blocks, 2 * blocks + 1))
                blocks = np.sort(blocks[blocks < self.shape[level - 1][1]])
        whole = self.covered >> SHIFT
        blocks = blocks[blocks < whole]
        rows = (blocks[:, None] * BLOCK + np.arange(BLOCK)).ravel()
        rows = np.concatenate((rows, np.arange(whole * BLOCK, self.length)))
        values = self.values[rows]
        self.reads += values.size
        odd_rows = np.isinf(values) | (np.ascontiguousarray(values).view(np.uint64)
                                       == LOGGED_NAN_BITS)
        return rows[odd_rows]


class Reduced(NamedTuple):
    """A series bucketed per pixel column, as `series.bucket_by_x` gives it (see `reduce`)."""

    rows: np.ndarray  # the rows drawn: each bucket's last finite point (and the first point)
    lo: np.ndarray
    hi: np.ndarray
    count: int  # finite points it stands for (with the zoom's two neighbours)
    marked: np.ndarray  # rows of logged NaN or ±Inf in range


def reduce(reader: Reader, steps: np.ndarray, buckets: int, raw_limit: int,
           x_range: tuple[float, float] | None = None, min_rows: int = 0) -> Reduced | None:
    """What `bucket_by_x` (plus a zoom's neighbours) gives for the finite points of a series
    whose steps are sorted, read from the pyramid; None when the range holds `raw_limit`
    points or fewer (they are sent as they are: the caller reads them), or `min_rows` rows or
    fewer (reading them costs less than the pyramid's walk)."""
    length = reader.length
    steps = steps[:length]
    if x_range is None:
        start, stop = 0, length
    else:
        start = int(np.searchsorted(steps, x_range[0], side="left"))
        stop = int(np.searchsorted(steps, x_range[1], side="right"))
    if stop - start <= min_rows:
        return None
    first = reader.finite_at(start, stop, last=False)
    if first < 0:
        return None
    if x_range is None:
        low, high = float(steps[first]), float(steps[reader.finite_at(start, stop, last=True)])
    else:
        low, high = x_range
    width = (high - low) / buckets
    if width > 0:
        bounds = row_bounds(steps, start, stop, low, width, buckets)
    else:
        bounds = np.array([start, stop], dtype=np.int64)
    stats = reader.ranges(bounds[:-1], bounds[1:])
    before = reader.finite_at(0, start, last=True) if x_range is not None else -1
    after = reader.finite_at(stop, length, last=False) if x_range is not None else -1
    count = int(stats.n.sum()) + (before >= 0) + (after >= 0)
    if count <= raw_limit:
        return None
    used = np.flatnonzero(stats.n > 0)
    lo, hi = stats.lo[used], stats.hi[used]
    values = reader.values
    # Each bucket's last row is nearly always finite: one gather, a search for the others.
    picked = bounds[used + 1] - 1
    reader.reads += picked.size
    for at in np.flatnonzero(~np.isfinite(values[picked])):
        picked[at] = reader.finite_at(int(bounds[used[at]]), int(picked[at]) + 1, last=True)
    if picked[0] != first:
        picked = np.concatenate(([first], picked))
        lo, hi = np.concatenate(([values[first]], lo)), np.concatenate(([values[first]], hi))
    for row, at_end in ((before, False), (after, True)):
        if row < 0:
            continue
        single = values[row:row + 1]
        picked = np.concatenate((picked, [row]) if at_end else ([row], picked))
        lo = np.concatenate((lo, single) if at_end else (single, lo))
        hi = np.concatenate((hi, single) if at_end else (single, hi))
    marked = reader.marked_rows()
    marked = marked[(marked >= start) & (marked < stop)]
    return Reduced(picked, lo, hi, count, marked)


def row_bounds(steps: np.ndarray, start: int, stop: int, low: float, width: float,
            buckets: int) -> np.ndarray:
    """Row boundaries of the pixel columns over rows [start, stop): bucket k starts at the
    first row whose column (computed as `bucket_by_x` does, so float rounding agrees) is k."""
    def column(rows: np.ndarray) -> np.ndarray:
        return np.clip(((steps[rows] - low) / width).astype(np.int64), 0, buckets - 1)

    part = steps[start:stop]
    wanted = np.arange(1, buckets)
    bounds = start + np.searchsorted(part, low + wanted * width, side="left")
    # The threshold is a float guess: move each bound over whole runs of equal steps until
    # the row before it is in an earlier column and the row at it in this one or later.
    for _ in range(64):
        down = (bounds > start) & (column(np.maximum(bounds - 1, start)) >= wanted)
        up = (bounds < stop) & (column(np.minimum(bounds, stop - 1)) < wanted)
        if not down.any() and not up.any():
            break
        bounds[down] = start + np.searchsorted(part, steps[bounds[down] - 1], side="left")
        bounds[up] = start + np.searchsorted(part, steps[bounds[up]], side="right")
    return np.concatenate(([start], bounds, [stop])).astype(np.int64)
