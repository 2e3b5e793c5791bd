"""One chart's lines as CSV: run, [device,] step, time, value; values as logged, not smoothed.

Text cells a spreadsheet would read as a formula are quoted with a leading `'`. Lines are
produced per run, so a download of millions of raw points streams instead of being built whole.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np

from . import dashboard, mapped_pages
from .live import ProjectState

FORMULA_START = ("=", "+", "-", "@")
CONTROL_START = ("\t", "\r", "\n")


def csv_text(value: str) -> str:
    """A text cell a spreadsheet shows as text: a leading formula character (after any spaces)
    or control character gets a quote."""
    if value.startswith(CONTROL_START) or value.lstrip().startswith(FORMULA_START):
        return "'" + value
    return value


def _iso(seconds: float) -> str:
    if not math.isfinite(seconds):
        return ""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def _number(value: float) -> str:
    """Whole numbers (steps) without a fraction; others as Python's shortest exact repr."""
    if not math.isfinite(value):
        return ""
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def filename(metric: str, raw: bool) -> str:
    """A download name from the metric: safe characters only, `-raw` for every logged point."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", metric).strip("._") or "chart"
    return f"{stem[:80]}{'-raw' if raw else ''}.csv"


def _lines(state: ProjectState, page: dashboard.Page, panel: dashboard.Panel, system: bool,
           x_range: tuple[float, float] | None, max_points: int | None
           ) -> Iterator[tuple[dashboard.Source, dashboard.Arrays]]:
    """Each line's points: every logged one (max_points None) or the ones the chart draws."""
    if max_points is None:
        for source in dashboard.sources(state, page, panel, system):
            yield source, dashboard.logged(source, page, system, x_range)[0]
        return
    for source, a, *_ in dashboard.drawn(state, page, panel, max_points, system, x_range):
        yield source, a


def panel_csv(state: ProjectState, page: dashboard.Page, panel: dashboard.Panel, system: bool,
              x_range: tuple[float, float] | None, max_points: int | None) -> Iterator[str]:
    """The CSV text in chunks, a header then one chunk per line of the chart."""
    if page.view.group and not system and max_points is not None:
        yield from _group_csv(state, page, panel, x_range)
        return
    yield "run,device,step,time,value\n" if panel.sources else "run,step,time,value\n"
    for source, a in _lines(state, page, panel, system, x_range, max_points):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        steps, times = source.columns.steps[a.rows], source.columns.times[a.rows]
        name = [csv_text(source.run.name)]
        if panel.sources:
            name.append(csv_text(source.fields["d"]))
        for step, stamp, value in zip(steps, times, a.y, strict=True):
            writer.writerow([*name, "" if system else _number(step), _iso(stamp), _number(value)])
        # A raw download reads every row of the line: let its store pages go (mapped_pages).
        mapped_pages.done_with(source.columns, (source.metric,))
        yield out.getvalue()


def _group_csv(state: ProjectState, page: dashboard.Page, panel: dashboard.Panel,
               x_range: tuple[float, float] | None) -> Iterator[str]:
    """A grouped chart's lines: per group and aligned x, the aggregate and the band (every
    aligned x, not only the drawn ones: the file has no pixels to fit)."""
    view = page.view
    yield f"group,runs,{'step' if view.x_axis == 'step' else 'seconds'},{view.agg}," \
          f"{view.band}_low,{view.band}_high\n"
    for label, _, size, agg in dashboard.group_aggregates(state, page, panel):
        keep = np.ones(agg.x.size, dtype=bool) if x_range is None else \
            (agg.x >= x_range[0]) & (agg.x <= x_range[1])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for x, y, lo, hi in zip(agg.x[keep], agg.y[keep], agg.lo[keep], agg.hi[keep],
                                strict=True):
            writer.writerow([csv_text(label), size, _number(x), _number(y), _number(lo),
                             _number(hi)])
        yield out.getvalue()
