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

from . import dashboard
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
        yield out.getvalue()
