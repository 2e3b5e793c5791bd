"""Turn stored rows into arrays, and arrays into what a chart shows. Pure functions; no SQL, no Flask."""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Sequence
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import orjson
from tsdownsample import MinMaxLTTBDownsampler

# A logged NaN is kept apart from "not logged at this row" (plain NaN) by its payload bits, so
# charts can mark it; arithmetic never sees the difference.
LOGGED_NAN_BITS = 0x7FF8_0000_0000_0BAD
LOGGED_NAN: float = struct.unpack("<d", struct.pack("<Q", LOGGED_NAN_BITS))[0]
NON_FINITE = {"NaN": LOGGED_NAN, "Infinity": math.inf, "-Infinity": -math.inf}
NUMBER_TYPES = frozenset({int, float})  # exact types: bool is not a metric value
RESERVED = frozenset({"project", "run", "timestamp", "step", "time", "metrics"})


def decode_payload(payload: bytes | str | None) -> dict[str, Any]:
    """Decode a metrics/config JSON column stored as orjson bytes or text; {} when unreadable."""
    if payload is None:
        return {}
    try:
        value = orjson.loads(payload)
    except (orjson.JSONDecodeError, TypeError):  # TypeError: an integer or NULL-ish column
        return {}
    return value if isinstance(value, dict) else {}


def decode_payloads(payloads: Sequence[bytes | str | None]) -> list[dict[str, Any]]:
    """`decode_payload` of each, in one C-level pass when every payload is a readable object."""
    try:
        decoded = list(map(orjson.loads, payloads))
    except (orjson.JSONDecodeError, TypeError):
        return [decode_payload(payload) for payload in payloads]
    if set(map(type, decoded)) <= {dict}:
        return decoded
    return [value if isinstance(value, dict) else {} for value in decoded]


def only_numbers(rows: list[dict[str, Any]]) -> bool:
    """Whether every value of these rows is an int or a float (so each row is its own
    `scalar_metrics`): one C-level pass over the values."""
    return set(map(type, chain.from_iterable(map(dict.values, rows)))) <= NUMBER_TYPES


def offsets_by(keys: Sequence[Any]) -> dict[Any, list[int]]:
    """The offsets of each distinct key, keys in order of first appearance; one C-level pass
    when all are equal (a chunk of one run, a run logging the same names)."""
    if len(set(keys)) == 1:
        return {keys[0]: list(range(len(keys)))}
    groups: dict[Any, list[int]] = {}
    for offset, key in enumerate(keys):
        group = groups.get(key)
        if group is None:
            groups[key] = [offset]
        else:
            group.append(offset)
    return groups


def scalar_metrics(values: dict[str, Any], prefix: str = "",
                   rich: list[tuple[str, str]] | None = None) -> dict[str, float]:
    """Flatten nested dicts to `a/b` keys and keep plottable numbers (NaN/inf strings included).

    Media and other rich objects (dicts with `_type`) and booleans are not line-chart values;
    when `rich` is given, each rich object's (`a/b` key, `_type`) is appended to it.
    """
    if not prefix:
        # Most rows hold only numbers: hand the decoded dict back instead of copying it.
        for value in values.values():
            kind = type(value)
            if kind is not float and kind is not int:
                break
        else:
            return values
    out: dict[str, float] = {}
    for key, value in values.items():
        # Exact type checks: this runs once per stored value on a cold load, and bool is not int.
        kind = type(value)
        if kind is float or kind is int:
            out[prefix + key if prefix else key] = value
        elif kind is str:
            if value in NON_FINITE:
                out[prefix + key if prefix else key] = NON_FINITE[value]
        elif kind is dict:
            if "_type" not in value:
                out.update(scalar_metrics(value, f"{prefix}{key}/", rich))
            elif rich is not None and type(value["_type"]) is str:
                rich.append((prefix + key, value["_type"]))
        elif kind is list and rich is not None and value and type(value[0]) is dict \
                and type(value[0].get("_type")) is str:
            rich.append((prefix + key, value[0]["_type"]))  # a list of media, e.g. images
    return out


class Columns:
    """Growable columnar storage: ids, steps, times and one float array per metric (NaN = absent)."""

    def __init__(self) -> None:
        self.length = 0
        self._capacity = 0
        self.ids = np.empty(0, dtype=np.int64)
        self.steps = np.empty(0, dtype=np.float64)
        self.times = np.empty(0, dtype=np.float64)
        self.metrics: dict[str, np.ndarray] = {}
        self.finite: dict[str, int] = {}  # finite values per metric, kept as rows arrive
        self.shared = False  # arrays are views of a series store file, mapped by every worker
        self.source = ""  # that file's name
        self._private: set[str] = set()  # metrics added in memory while shared
        self._sorted = (0, True)  # (rows checked, steps sorted so far)
        self.pyramid: Any = None  # a store file's min/max pyramid (store/pyramid.RunPyramid)
        self.memos: dict[str, dict[Any, Any]] = {}  # per metric: what smoothing carries on

    @classmethod
    def from_arrays(cls, ids: np.ndarray, steps: np.ndarray, times: np.ndarray,
                    metrics: dict[str, np.ndarray], finite: dict[str, int], length: int,
                    source: str = "") -> Columns:
        """Columns over existing arrays of equal size (their capacity), `length` of them used.
        With a `source` they are a store file's shared mapping: new rows are written into its
        room; past it they are copied into private memory."""
        columns = cls()
        columns.length, columns._capacity = length, int(ids.size)
        columns.ids, columns.steps, columns.times = ids, steps, times
        columns.metrics, columns.finite = metrics, dict(finite)
        columns.shared, columns.source = bool(source), source
        return columns

    @property
    def private_metrics(self) -> frozenset[str]:
        return frozenset(self._private)

    def _grow(self, needed: int) -> None:
        if needed <= self._capacity:
            return
        capacity = max(needed, self._capacity + self._capacity // 2, 64)

        def grown(array: np.ndarray, fill: float) -> np.ndarray:
            new = np.full(capacity, fill, dtype=array.dtype)
            new[: self.length] = array[: self.length]
            return new

        self.ids = grown(self.ids, 0)
        self.steps = grown(self.steps, math.nan)
        self.times = grown(self.times, math.nan)
        self.metrics = {name: grown(column, math.nan) for name, column in self.metrics.items()}
        self._capacity = capacity
        self.shared, self.source = False, ""
        self._private.clear()

    def append(self, row_id: int, step: float, time: float, values: dict[str, float]) -> None:
        """Append one row."""
        self._grow(self.length + 1)
        index = self.length
        self.ids[index] = row_id
        self.steps[index] = step
        self.times[index] = time
        for name, value in values.items():
            column = self.metrics.get(name)
            if column is None:
                column = np.full(self._capacity, math.nan)
                self.metrics[name] = column
                if self.shared:
                    self._private.add(name)
            column[index] = value
            if math.isfinite(value):
                self.finite[name] = self.finite.get(name, 0) + 1
        self.length += 1

    def extend(self, ids: list[int], steps: list[float], times: list[float],
               rows: list[dict[str, float]]) -> None:
        """Append many rows at once (one numpy assignment per metric, not per value)."""
        count = len(ids)
        if not count:
            return
        start = self.length
        self._grow(start + count)
        self.ids[start:start + count] = ids
        self.steps[start:start + count] = steps
        self.times[start:start + count] = times
        # Rows logging the same names in the same order (nearly all of a run) become one
        # matrix: numpy converts the values, Python never touches them one by one.
        for names, offsets in offsets_by(list(map(tuple, rows))).items():
            if not names:
                continue
            whole = len(offsets) == count
            members = rows if whole else [rows[o] for o in offsets]
            # One C-level pass over every value (no tuple per row): half np.array's cost.
            matrix = np.fromiter(chain.from_iterable(map(dict.values, members)), np.float64,
                                 count=len(members) * len(names)).reshape(len(members),
                                                                          len(names))
            positions = None if whole else start + np.asarray(offsets)
            for index, name in enumerate(names):
                column = self.metrics.get(name)
                if column is None:
                    column = self.metrics[name] = np.full(self._capacity, math.nan)
                    if self.shared:
                        self._private.add(name)
                array = matrix[:, index]
                if whole:
                    column[start:start + count] = array
                else:
                    column[positions] = array
                self.finite[name] = self.finite.get(name, 0) + int(np.isfinite(array).sum())
        self.length += count

    def steps_sorted(self) -> bool:
        """Whether steps never decrease (NaN-free), checked only over rows added since last time."""
        checked, answer = self._sorted
        if checked < self.length and answer:
            low = max(0, checked - 1)
            part = self.steps[low:self.length]
            answer = bool(np.all(part[1:] >= part[:-1]) and not np.isnan(part).any())
        self._sorted = (self.length, answer)
        return answer

    def window(self, start: int, stop: int, names: tuple[str, ...] | None = None) -> Columns:
        """Rows [start, stop) as views (no copy), of every metric or only `names`: for reading
        a zoomed range only."""
        wanted = self.metrics if names is None else \
            {name: self.metrics[name] for name in names if name in self.metrics}
        return Columns.from_arrays(
            self.ids[start:stop], self.steps[start:stop], self.times[start:stop],
            {name: column[start:stop] for name, column in wanted.items()}, {}, stop - start)

    def column(self, name: str) -> np.ndarray:
        """Return a metric's values (a view), all NaN when the run never logged it."""
        column = self.metrics.get(name)
        if column is None:
            return np.full(self.length, math.nan)
        return column[: self.length]

    def memo(self, name: str) -> dict[Any, Any]:
        """A metric's memo for `smooth`: rows only ever append, so what an earlier call
        left there stays true."""
        return self.memos.setdefault(name, {})

    def index_after(self, row_id: int) -> int:
        """Return the first row index whose id is greater than row_id."""
        return int(np.searchsorted(self.ids[: self.length], row_id, side="right"))

    @property
    def nbytes(self) -> int:
        """Private memory held; mapped store files live in the page cache, shared by workers."""
        arrays = len(self._private) if self.shared else 3 + len(self.metrics)
        return self._capacity * 8 * arrays


class EmaState(NamedTuple):
    """An EMA after a series' first `rows` rows: its last biased value and finite points seen."""

    rows: int
    last: float
    count: int


EMA_START = EmaState(0, 0.0, 0)
EMA_MEMO_STATES = 4  # states kept per series: a poll continues from the last one it left
EMA_MEMO_WEIGHTS = 4  # smoothing amounts remembered per series (the most recently used)
_memo_update = threading.Lock()
# A block's weights run from 1 to weight**-block: kept below 1e140, so that with values at
# most SAFE_MAGNITUDE (see overflow_scale) a block's sums stay finite.
EMA_BLOCK_EXPONENT = math.log(1e140)
EMA_MAX_BLOCK = 4096


def ema_debiased(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average; NaN points stay NaN and are skipped."""
    return ema_continued(values, weight, EMA_START)[0]


def ema_continued(values: np.ndarray, weight: float, state: EmaState
                  ) -> tuple[np.ndarray, EmaState]:
    """The debiased EMA of `values`, the rows that follow `state`'s, and the state after them:
    a live series is smoothed from where the last call stopped, not from its first row."""
    values = np.asarray(values, dtype=np.float64)
    if values.size <= SMALL_LIST and abs(state.last) <= SAFE_MAGNITUDE:
        small = _ema_few(values.tolist(), weight, state)
        if small is not None:
            return small
    out = np.full(values.shape, math.nan)
    finite = np.isfinite(values)
    kept = values[finite]
    count = kept.size
    after = EmaState(state.rows + values.size, state.last, state.count + count)
    if count == 0:
        return out, after
    if weight <= 0:
        out[finite] = kept
        return out, after._replace(last=float(kept[-1]))
    scale = overflow_scale(np.array([kept.min(), kept.max(), state.last]))
    biased = _ema_biased(kept / scale if scale != 1.0 else kept, weight, state.last / scale)
    if scale != 1.0:
        biased *= scale
    last = float(biased[-1])
    # 1 - weight**k is exactly 1.0 once weight**k < 2**-54: only the first points need it
    # (a power per point was most of the cost on a long run).
    settled = int(math.log(2.0 ** -55) / math.log(weight)) + 1
    first = state.count + 1
    if first <= settled:
        head = min(count, settled - first + 1)
        biased[:head] /= 1 - weight ** np.arange(first, first + head, dtype=np.float64)
    out[finite] = biased
    return out, after._replace(last=last)


def _ema_few(values: list[float], weight: float, state: EmaState
             ) -> tuple[np.ndarray, EmaState] | None:
    """`ema_continued` over a poll's row or two, in Python (numpy's per-call cost was most of
    a smoothed poll); None when a value is large enough to need the scaled path."""
    last, count, out = state.last, state.count, []
    for value in values:
        if not math.isfinite(value):
            out.append(math.nan)
            continue
        if abs(value) > SAFE_MAGNITUDE:
            return None
        last = weight * last + (1 - weight) * value
        count += 1
        out.append(last / (1 - weight ** count))
    return np.array(out, dtype=np.float64), EmaState(state.rows + len(values), last, count)


def _ema_biased(kept: np.ndarray, weight: float, previous: float) -> np.ndarray:
    """s[i] = weight * s[i-1] + (1 - weight) * kept[i], from s[-1] = previous.

    Blocked: within a block the recurrence is a cumulative sum of values scaled by
    weight**-j (numpy, no Python per point); one Python step per block carries the state
    from block to block. The block is as long as weight**-block stays representable."""
    count = kept.size
    block = int(min(EMA_MAX_BLOCK, max(1, EMA_BLOCK_EXPONENT // -math.log(weight))))
    blocks = -(-count // block)
    padded = np.zeros(blocks * block)
    padded[:count] = kept
    offsets = np.arange(block, dtype=np.float64)
    local = np.cumsum(padded.reshape(blocks, block) * weight ** -offsets, axis=1)
    local *= (1 - weight) * weight ** offsets
    carried = np.empty(blocks)
    through = weight ** block
    for index, end in enumerate(local[:, -1].tolist()):
        carried[index] = previous
        previous = through * previous + end
    local += carried[:, None] * weight ** (offsets + 1)
    return local.ravel()[:count]


def _ema_from(values: np.ndarray, weight: float, start: int,
              memo: dict[Any, Any] | None) -> np.ndarray:
    """Smoothed values[start:] by EMA, continued from the latest state in `memo` at or before
    `start` (the caller keeps one memo per series and guarantees rows never change once
    appended), which then also holds the state after `values`."""
    key = ("ema", weight)
    states: list[EmaState] = [] if memo is None else memo.get(key, [])
    state = max((s for s in states if s.rows <= start), key=lambda s: s.rows,
                default=EMA_START)
    smoothed, after = ema_continued(values[state.rows:], weight, state)
    if memo is not None and after.rows > state.rows:
        with _memo_update:  # a worker's threads share a run's memo
            memo.pop(key, None)  # re-inserted last: the dict's order is the weights' recency
            memo[key] = [*[s for s in states if s.rows != after.rows],
                         after][-EMA_MEMO_STATES:]
            while len(memo) > EMA_MEMO_WEIGHTS:  # a memo per smoothing asked for, bounded
                del memo[next(iter(memo))]
    return smoothed[start - state.rows:]


SAFE_MAGNITUDE = 1e150  # values past this are scaled before sums and squares (overflow)


def overflow_scale(values: np.ndarray) -> float:
    """A power of two to divide `values` by so that their sums and squares stay finite: 1
    (no change at all) unless a finite value is past SAFE_MAGNITUDE, a logged overflow say."""
    finite = np.abs(values[np.isfinite(values)])
    largest = float(finite.max()) if finite.size else 0.0
    if largest <= SAFE_MAGNITUDE:
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1] - 1)  # exact: scaled values are below 2


def centered_moving_average(values: np.ndarray, window: int,
                            width: int | None = None) -> np.ndarray:
    """Trackio's smoothing: mean of finite values in rows [i-half, i+half]; gaps stay gaps.

    `width` fixes the window when `values` is only the tail of a longer series.
    """
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    if count == 0 or window <= 1:
        return values.copy()
    width = width or max(3, min(int(window), count))
    half = width // 2
    finite = np.isfinite(values)
    kept = np.where(finite, values, 0.0)
    # Running sums of values near 1e308 overflow: scaled by a power of two (exact) first.
    scale = overflow_scale(np.array([kept.min(), kept.max()]))
    sums = np.empty(count + 1)
    sums[0] = 0.0
    np.cumsum(kept / scale if scale != 1.0 else kept, out=sums[1:])
    counts = np.empty(count + 1, dtype=np.int64)
    counts[0] = 0
    np.cumsum(finite, out=counts[1:])
    window_counts = _clamped(counts, half + 1) - _clamped(counts, -half)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (_clamped(sums, half + 1) - _clamped(sums, -half)) / window_counts
    if scale != 1.0:
        means = means * scale  # a mean is never past its largest value: no overflow
    return np.where(finite, means, math.nan)


def _clamped(running: np.ndarray, shift: int) -> np.ndarray:
    """running[clip(i + shift, 0, n)] for each row i < n (running holds n + 1 totals), by
    three slices: a gather through an index array cost most of a long run's smoothing."""
    count = running.size - 1
    out = np.empty(count, dtype=running.dtype)
    inside = min(max(-shift, 0), count)  # rows before it read running[0]
    past = min(max(count - shift + 1, inside), count)  # rows from it on read running[count]
    out[:inside] = running[0]
    out[inside:past] = running[inside + shift:past + shift]
    out[past:] = running[count]
    return out


def smoothing_reach(method: str, amount: int) -> int:
    """How many trailing points change when one point is appended (0 for causal methods)."""
    if method == "sma" and amount > 1:
        return max(3, amount) // 2
    return 0


def smooth(values: np.ndarray, method: str, amount: int, start: int = 0,
           memo: dict[Any, Any] | None = None) -> np.ndarray | None:
    """Smoothed values[start:] (amount 0-100) computed on the full series; None when off.

    The centred average reads only `start - half` onwards, so a refresh costs the new rows,
    not the run's length. The EMA depends on every earlier point: given a series' `memo`
    (`Columns.memo`), it goes on from the state an earlier call left there instead.
    """
    if amount <= 0:
        return None
    if method == "ema":
        return _ema_from(values, min(amount, 99.9) / 100.0, start, memo)
    if amount <= 1:
        return values[start:].copy()
    width = max(3, min(int(amount), values.size))
    low = max(0, start - width // 2)
    return centered_moving_average(values[low:], amount, width)[start - low:]


def downsample_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Pick at most ~max_points indices keeping extremes (MinMaxLTTB), the first and the last point."""
    count = values.size
    if count <= max_points:
        return np.arange(count)
    picked = MinMaxLTTBDownsampler().downsample(values, n_out=max_points).astype(np.int64)
    return np.union1d(picked, [0, count - 1])


def round_significant(values: np.ndarray, digits: int = 7) -> np.ndarray:
    """Round to `digits` significant digits so JSON stays short; non-finite values pass through."""
    values = np.asarray(values, dtype=np.float64)
    if values.size <= 4:
        # A refresh appends a point or two per series: numpy's per-call cost would dominate.
        return np.array([float(f"{v:.{digits}g}") for v in values.tolist()], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
        scale = np.where(np.isfinite(magnitude), 10.0 ** (digits - 1 - magnitude), 1.0)
        rounded = np.round(values * scale) / scale
    return np.where(np.isfinite(rounded), rounded, values)


def json_numbers(values: np.ndarray) -> list[float | None]:
    """Return a list for JSON: NaN and infinities become null, never invalid JSON."""
    values = np.asarray(values, dtype=np.float64)
    result: list[float | None] = values.tolist()
    if not np.isfinite(values).all():
        for index in np.flatnonzero(~np.isfinite(values)):
            result[index] = None
    return result


def logged_nan(values: np.ndarray) -> np.ndarray:
    """Mask of values that were logged as NaN (not merely absent)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    return values.view(np.uint64) == LOGGED_NAN_BITS


class Buckets(NamedTuple):
    """A series reduced to one point per x bucket: which rows stand for them, and each range."""

    picked: np.ndarray  # index of the last point of each non-empty bucket
    lo: np.ndarray  # the bucket's smallest value
    hi: np.ndarray  # the bucket's largest value


def bucket_by_x(x: np.ndarray, y: np.ndarray, buckets: int,
                span: tuple[float, float] | None = None) -> Buckets:
    """Split [x0, x1] into equal-width buckets (pixel columns); keep each bucket's last point
    and the first point of all.

    `x` must be sorted. What the line leaves out stays visible: `lo`/`hi` are the extremes of
    every point in the bucket, so no spike is lost, only drawn as a band instead of the line.
    The last point is a real sample (its tooltip shows a step that was logged).
    """
    count = x.size
    if count == 0:
        empty = np.empty(0)
        return Buckets(np.empty(0, dtype=np.int64), empty, empty)
    low, high = span if span is not None else (float(x[0]), float(x[-1]))
    width = (high - low) / buckets
    if not width > 0:
        column = np.zeros(count, dtype=np.int64)
    else:
        column = np.clip(((x - low) / width).astype(np.int64), 0, buckets - 1)
    starts = np.flatnonzero(np.concatenate(([True], column[1:] != column[:-1])))
    ends = np.concatenate((starts[1:], [count]))
    picked, lo, hi = ends - 1, np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    if picked[0] != 0:
        # The first sample too, so the line starts where the data does.
        picked = np.concatenate(([0], picked))
        lo, hi = np.concatenate((y[:1], lo)), np.concatenate((y[:1], hi))
    return Buckets(picked, lo, hi)


def thin_positions(x: np.ndarray, buckets: int) -> np.ndarray:
    """At most one position per x bucket (the first), for markers that would overlap anyway."""
    if x.size <= buckets:
        return x
    order = np.sort(x)
    low, high = float(order[0]), float(order[-1])
    if not high > low:
        return order[:1]
    column = np.clip(((order - low) / ((high - low) / buckets)).astype(np.int64), 0, buckets - 1)
    return order[np.concatenate(([True], column[1:] != column[:-1]))]


def quantise(values: np.ndarray, span: float) -> np.ndarray:
    """Round to 1/100,000 of the series' range (5 digits of what the axis spans).

    A 200 px chart resolves 1/200 of its range, so nothing visible is lost, and a tooltip still
    tells apart values one pixel apart after zooming in 500-fold; the JSON gets much shorter.
    A flat series (no range) keeps 7 significant digits.
    """
    values = np.asarray(values, dtype=np.float64)
    if not (span > 0 and math.isfinite(span)):
        return round_significant(values)
    decimals = min(15, 5 - math.floor(math.log10(span)))
    return np.round(values, decimals)


def integral(values: np.ndarray) -> bool:
    """True when every value is a whole number that JSON can carry as an integer."""
    return bool(values.size == 0 or (np.all(np.abs(values) < 2**53)
                                     and np.array_equal(values, np.round(values))))


SMALL_LIST = 16  # a poll sends a point or two per series: Python beats numpy's per-call cost


def json_values(values: np.ndarray) -> list[Any]:
    """A JSON list as short as the numbers allow: integers without `.0`, nulls for non-finite."""
    values = np.asarray(values, dtype=np.float64)
    if values.size <= SMALL_LIST:
        numbers = values.tolist()
        # is_integer() is False for NaN and infinities.
        if all(number.is_integer() and abs(number) < 2**53 for number in numbers):
            return [int(number) for number in numbers]
        return [number if math.isfinite(number) else None for number in numbers]
    if np.isfinite(values).all() and integral(values):
        return values.astype(np.int64).tolist()
    return json_numbers(values)


def step_text(step: float | None) -> str:
    """A step for pages: whole number text, an em dash when unknown or not finite."""
    if step is None or not math.isfinite(step):
        return "—"
    return str(int(step))


def metric_summary(values: np.ndarray, stat: str) -> float | None:
    """A run's summary of one metric: its last finite value (`last`), or the `min` or `max`
    of its finite values; None when it never logged a finite one."""
    if stat == "last":
        # Most series end on a finite value: look at the tail before scanning the whole.
        for part in (values[-64:], values):
            finite = part[np.isfinite(part)]
            if finite.size:
                return float(finite[-1])
        return None
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    return float(finite.min() if stat == "min" else finite.max())


def last_finite(columns: Columns | None, metric: str) -> float | None:
    """A run's last finite value of a metric (the runs table's "final value")."""
    if columns is None or metric not in columns.metrics:
        return None
    return metric_summary(columns.column(metric), "last")
