"""Group runs (by a config key, a run-name pattern or Trackio's group) and aggregate each
group's series over aligned x values: an aggregate line and a band. Pure; no SQL, no Flask.

A grouping is written `config:<key>` (nested keys joined by dots: `model.depth`),
`name:<regex>` (the first capture group, or the whole match, names the group) or `trackio`
(the `group=` a run was started with, stored as the config's `_Group`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import re2

from .series import overflow_scale

AGGREGATES = ("mean", "median")
BANDS = ("minmax", "std", "stderr", "ci95", "none")
BAND_LABELS = {"minmax": "min–max", "std": "±1 std", "stderr": "±1 stderr",
               "ci95": "95% CI of the mean", "none": "no band"}
MAX_PATTERN = 200
MAX_KEY = 200
MAX_KEYS = 300  # config keys offered for grouping and as sweep axes
MAX_GROUPS = 40  # groups drawn per chart; the smallest past this are left out (and counted)
NONE_LABEL = "(none)"
NO_MATCH = "(no match)"
TRACKIO_GROUP = "_Group"
# Two-sided 95% quantiles of Student's t by degrees of freedom (1-30), then a few anchors
# between which 1/df is interpolated; 1.96 in the limit.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_T95_TAIL = ((30, 2.042), (40, 2.021), (60, 2.000), (120, 1.980), (math.inf, 1.960))


class GroupingError(ValueError):
    """A grouping the URL asked for cannot be used (the view answers 400 with this text)."""


@dataclass(frozen=True)
class Grouping:
    """How runs are grouped: `kind` is config, name or trackio; `arg` the key or pattern."""

    kind: str
    arg: str = ""

    @property
    def spec(self) -> str:
        return self.kind if self.kind == "trackio" else f"{self.kind}:{self.arg}"

    @property
    def label(self) -> str:
        if self.kind == "trackio":
            return "Trackio group"
        return f"config {self.arg}" if self.kind == "config" else f"name ~ {self.arg}"


def parse_grouping(spec: str) -> Grouping | None:
    """`config:<key>`, `name:<regex>` or `trackio` → a Grouping; "" → None; else GroupingError."""
    if not spec:
        return None
    if spec == "trackio":
        return Grouping("trackio")
    kind, sep, arg = spec.partition(":")
    if not sep or kind not in ("config", "name") or not arg:
        raise GroupingError("group must be config:<key>, name:<regex> or trackio")
    if kind == "config":
        if len(arg) > MAX_KEY:
            raise GroupingError(f"group names a config key longer than {MAX_KEY} characters")
        if is_private(arg):
            raise GroupingError("group cannot use a private config key (leading underscore)")
        return Grouping(kind, arg)
    compile_name_pattern(arg)
    return Grouping(kind, arg)


def compile_name_pattern(pattern: str) -> Any:
    """RE2 (linear time whatever the pattern), length- and memory-capped; GroupingError when
    it cannot be used."""
    if len(pattern) > MAX_PATTERN:
        raise GroupingError(f"group name pattern is longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 1 << 20
    try:
        return re2.compile(pattern, options)
    except re2.error:
        raise GroupingError("group name pattern is not a valid regular expression") from None


def is_private(key: str) -> bool:
    """Trackio's own keys (`_Created`, `_Username`, `_Group`) and any `_`-led part of a path."""
    return any(part.startswith("_") for part in key.split("."))


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (`{"model": {"depth": 4}}` → `model.depth`); scalar leaves."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        elif value is None or isinstance(value, str | int | float | bool):
            out.setdefault(path, value)
    return out


def config_keys(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Public scalar config keys, nested ones dotted, that take more than one value (the
    first MAX_KEYS by name: a control lists them all)."""
    seen: dict[str, set[str]] = {}
    for config in configs:
        for key, value in flatten(config).items():
            if not is_private(key) and len(key) <= MAX_KEY:
                values = seen.setdefault(key, set())
                if len(values) < 2:  # two values are enough to tell it varies
                    values.add(repr(value))
    return sorted(key for key, values in seen.items() if len(values) > 1)[:MAX_KEYS]


def has_trackio_groups(configs: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any run was started with Trackio's `group=`."""
    return any(config.get(TRACKIO_GROUP) not in (None, "") for config in configs)


def value_label(value: Any) -> str:
    """How a config value names its group (JSON-like: true, 0.001, text as is)."""
    if value is None:
        return NONE_LABEL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def label_of(grouping: Grouping, name: str, config: Mapping[str, Any], pattern: Any = None
             ) -> str:
    """The group one run falls in."""
    if grouping.kind == "trackio":
        value = config.get(TRACKIO_GROUP)
        return NONE_LABEL if value in (None, "") else value_label(value)
    if grouping.kind == "config":
        return value_label(flatten(config).get(grouping.arg))
    match = (pattern or compile_name_pattern(grouping.arg)).search(name)
    if match is None:
        return NO_MATCH
    captured = next((part for part in match.groups() if part is not None), None)
    return captured if captured is not None else match.group(0)


def _sort_key(label: str) -> tuple[int, float, str]:
    # Numbers in numeric order (lr 1e-4 before 3e-4 before 1e-3), then text, then no value.
    if label in (NONE_LABEL, NO_MATCH):
        return 2, 0.0, label
    try:
        return 0, float(label), label
    except ValueError:
        return 1, 0.0, label


def assign(grouping: Grouping, runs: Iterable[tuple[str, str]],
           configs: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """(run key, run name) pairs → [(group label, run keys)], groups in value order."""
    pattern = compile_name_pattern(grouping.arg) if grouping.kind == "name" else None
    groups: dict[str, list[str]] = {}
    for key, name in runs:
        groups.setdefault(label_of(grouping, name, configs.get(key, {}), pattern), []).append(key)
    return [(label, groups[label]) for label in sorted(groups, key=_sort_key)]


def t95(df: int) -> float:
    """Two-sided 95% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        return math.nan
    if df <= len(_T95):
        return _T95[df - 1]
    for (d0, t0), (d1, t1) in zip(_T95_TAIL, _T95_TAIL[1:], strict=False):
        if df <= d1:
            w = (1 / d0 - 1 / df) / (1 / d0 - (0 if d1 == math.inf else 1 / d1))
            return t0 + w * (t1 - t0)
    return 1.960


def align(series: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Members' (x sorted, y) on the union of their x values: a member's value at an x it did
    not log is interpolated between its neighbours, NaN outside its own range (no guessing
    beyond what it logged). Returns (x, matrix of members × x)."""
    if not series:
        return np.empty(0), np.empty((0, 0))
    first = series[0][0]
    if all(x.size == first.size and np.array_equal(x, first) for x, _ in series[1:]) \
            and (first.size < 2 or bool(np.all(first[1:] > first[:-1]))):
        # The common case (every member logged the same steps): no alignment to do.
        return first, np.vstack([y for _, y in series]) if first.size else np.empty((len(series), 0))
    xs = np.unique(np.concatenate([x for x, _ in series]))
    matrix = np.full((len(series), xs.size), np.nan)
    for row, (x, y) in enumerate(series):
        if x.size == 0:
            continue
        low, high = np.searchsorted(xs, (x[0], x[-1]), side="left")
        # As many points as aligned x in its range, none repeated: logged at every one of them.
        if high + 1 - low == x.size and (x.size < 2 or bool(np.all(x[1:] > x[:-1]))):
            matrix[row, low:high + 1] = y
        else:
            matrix[row, low:high + 1] = np.interp(xs[low:high + 1], x, y)
    return xs, matrix


FLOAT_MAX = float(np.finfo(np.float64).max)


@dataclass(frozen=True)
class Aggregate:
    """One group's aggregate line and band over aligned x (NaN where no member has a value)."""

    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    count: np.ndarray  # members with a value at each x


def aggregate(series: list[tuple[np.ndarray, np.ndarray]], agg: str = "mean",
              band: str = "minmax") -> Aggregate:
    """The aggregate (mean or median) and band (min–max, ±std, ±stderr, 95% CI of the mean)
    of the members' finite points, computed at every aligned x before any downsampling.

    Long members make this a few passes over members × steps values (the same numbers as
    numpy's nan-functions, in fewer passes: each of those copies and masks the matrix again)."""
    if agg not in AGGREGATES or band not in BANDS:
        raise GroupingError("agg must be mean or median; band one of " + ", ".join(BANDS))
    members = [_finite_sorted(x, y) for x, y in series]
    xs, m = align([(x, y) for x, y, _ in members])
    present = ~np.isnan(m)  # aligned values are finite or NaN (no value there)
    count = np.count_nonzero(present, axis=0)
    has = count > 0
    if not has.all():
        xs, m, count, present = xs[has], m[:, has], count[has], present[:, has]
    if xs.size == 0:
        empty = np.empty(0)
        return Aggregate(empty, empty, empty, empty, np.empty(0, dtype=np.int64))
    # Every column holds a value, so fmin/fmax (which pass over NaN) are nanmin/nanmax.
    lo, hi = np.fmin.reduce(m, axis=0), np.fmax.reduce(m, axis=0)
    # The largest magnitude is an extreme: the smallest low or the largest high.
    scale = overflow_scale(np.array([lo.min(), hi.max()]))
    if scale != 1.0:
        m = m / scale
        lo, hi = np.fmin.reduce(m, axis=0), np.fmax.reduce(m, axis=0)
    zeroed = np.where(present, m, 0.0)
    mean = np.sum(zeroed, axis=0) / count
    centre = mean if agg == "mean" else np.nanmedian(m, axis=0)
    if band == "none":
        lo = hi = centre
    elif band != "minmax":
        # Sample std (ddof 1); one member has no spread to show, so its band is its line.
        several = count > 1
        deviation = np.subtract(zeroed, mean, out=zeroed)
        deviation[~present] = 0.0
        squares = np.sum(np.multiply(deviation, deviation, out=deviation), axis=0)
        spread = np.zeros(xs.size)
        spread[several] = np.sqrt(squares[several] / (count[several] - 1))
        if band in ("stderr", "ci95"):
            spread = spread / np.sqrt(count)
        if band == "ci95":
            quantiles = np.array([t95(n - 1) if n > 1 else 0.0 for n in range(len(m) + 1)])
            spread = spread * quantiles[count]
        # std bands are around the aggregate line; the CI is the mean's, so around the mean.
        around = centre if band == "std" else mean
        lo, hi = around - spread, around + spread
    if scale != 1.0:
        # Back to the logged scale; a band edge past the float range stops at its end.
        with np.errstate(over="ignore"):
            centre, lo, hi = (np.clip(v * scale, -FLOAT_MAX, FLOAT_MAX) for v in (centre, lo, hi))
    if band == "minmax":
        # At a step a member logged several times, `align` saw one of its values (a line
        # reaches the first and leaves from the last); the band holds each of them.
        for _x, _y, repeats in members:
            if repeats is not None:
                steps, low, high = repeats
                at = np.searchsorted(xs, steps)
                lo[at] = np.fmin(lo[at], low)
                hi[at] = np.fmax(hi[at], high)
    return Aggregate(xs, centre, lo, hi, count.astype(np.int64))


def _finite_sorted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
    """A member's points with a finite x and y, in x order (stable); beside them, for the x
    it logged more than once (a resumed run), those x and the min and max of its values there
    (None when no x repeats). Copies only if needed."""
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.all():
        x, y = x[keep], y[keep]
    if x.size > 1 and not bool(np.all(x[1:] >= x[:-1])):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    if x.size < 2:
        return x, y, None
    repeated = x[1:] == x[:-1]
    if not repeated.any():
        return x, y, None
    starts = np.flatnonzero(np.concatenate(([True], ~repeated)))
    ends = np.concatenate((starts[1:], [x.size])) - 1
    return x, y, (x[ends], np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts))


def _buckets(x: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) position of each non-empty equal-width x bucket."""
    low, high = float(x[0]), float(x[-1])
    width = (high - low) / buckets
    if not width > 0:
        column = np.zeros(x.size, dtype=np.int64)
    else:
        column = np.clip(((x - low) / width).astype(np.int64), 0, buckets - 1)
    starts = np.flatnonzero(np.concatenate(([True], column[1:] != column[:-1])))
    return starts, np.concatenate((starts[1:], [x.size])) - 1


def bucket_ends(x: np.ndarray, buckets: int) -> np.ndarray:
    """The positions `downsample` keeps (for values that travel beside the aggregate)."""
    if x.size <= 2 * buckets or buckets < 1:
        return np.arange(x.size)
    return _buckets(x, buckets)[1]


def sliced(a: Aggregate, start: int, stop: int | None = None) -> Aggregate:
    """The aggregate's points [start:stop]."""
    part = slice(start, stop)
    return Aggregate(a.x[part], a.y[part], a.lo[part], a.hi[part], a.count[part])


def downsample(a: Aggregate, buckets: int) -> Aggregate:
    """At most ~`buckets` points: per equal-width x bucket the last aggregate value, and the
    band's extremes over the bucket (so no excursion of the band is lost)."""
    if a.x.size <= 2 * buckets or buckets < 1:
        return a
    starts, ends = _buckets(a.x, buckets)
    return Aggregate(a.x[ends], a.y[ends], np.minimum.reduceat(a.lo, starts),
                     np.maximum.reduceat(a.hi, starts), a.count[ends])


@dataclass(frozen=True)
class Difference:
    """Group b's mean minus group a's, with a 95% confidence interval (Welch's t)."""

    a: str
    b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    df: float

    @property
    def significant(self) -> bool:
        """Whether the interval leaves out zero (a win larger than the seed noise)."""
        return self.low > 0 or self.high < 0


def welch_difference(a: str, values_a: Iterable[float], b: str, values_b: Iterable[float]
                     ) -> Difference | None:
    """Mean(b) − mean(a) with Welch's 95% interval; None when a side has fewer than two
    finite values (no spread, so no interval) or the answer is past float range."""
    va = np.asarray([v for v in values_a if math.isfinite(v)], dtype=np.float64)
    vb = np.asarray([v for v in values_b if math.isfinite(v)], dtype=np.float64)
    if va.size < 2 or vb.size < 2:
        return None
    # Sums and squares of values near 1e308 (a logged overflow, say) would overflow to inf
    # on the way to a finite answer: computed on scaled values (scale 1 for any other data).
    scale = overflow_scale(np.concatenate((va, vb)))
    va, vb = va / scale, vb / scale
    qa, qb = va.var(ddof=1) / va.size, vb.var(ddof=1) / vb.size
    diff = float(vb.mean() - va.mean())
    se = math.sqrt(qa + qb)
    if se == 0:
        low = high = diff
        df = float(va.size + vb.size - 2)
    else:
        # Welch–Satterthwaite degrees of freedom; the t quantile at the whole df below it
        # (slightly wider, never narrower).
        spread = qa ** 2 / (va.size - 1) + qb ** 2 / (vb.size - 1)
        # Variances so small their squares underflow: take the pooled df.
        df = (qa + qb) ** 2 / spread if spread > 0 else float(va.size + vb.size - 2)
        half = t95(max(1, int(math.floor(df)))) * se
        low, high = diff - half, diff + half
    numbers = [float(va.mean()) * scale, float(vb.mean()) * scale, diff * scale, low * scale,
               high * scale]
    if not all(math.isfinite(number) for number in [*numbers, df]):
        return None
    return Difference(a, b, va.size, vb.size, *numbers, float(df))
