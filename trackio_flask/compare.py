"""The run comparer's model: selected runs as columns, flattened config and summary metrics as rows.

Configs are flattened the way Trackio's comparer does (frontend/src/lib/comparer.js): nested
dicts become dot paths (`model.depth`), a literal dot or backslash inside a key is escaped
(`{"a.b": 1}` → `a\\.b`) so a flat key never collides with a nested one, an empty dict stays a
`{}` leaf, lists are leaves, and top-level `_` keys are hidden except the run metadata Trackio
promotes (Created, Group, Username). Equality is type-aware: `1` and `"1"` differ, NaN equals
NaN, and a key missing from only some runs is a difference.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import mapped_pages
from .dashboard import Page, View
from .live import ProjectState, RunInfo
from .series import metric_summary

MAX_COLUMNS = 10
DISPLAY_CHARS = 200
TITLE_CHARS = 1000
MISSING = "–"
STATS = ("last", "min", "max")
METADATA = {"_Created": "Created", "_Group": "Group", "_Username": "Username"}
SECTION_LABELS = {"config": "Config", "metadata": "Metadata", "metrics": "Metrics"}
MEMO_VERSIONS = 8  # flattened configs kept: about one per project being viewed


@dataclass(frozen=True)
class Query:
    """What the comparer URL asks for: the run selection and theme (read as the metrics page
    reads them) in `view`, and the comparer's own key search, filter and metric summary."""

    view: View
    search: str = ""
    diff_only: bool = False
    stat: str = "last"

    @property
    def runs(self) -> tuple[str, ...] | None:
        """Selected run keys or names; None when the URL selects none (all runs)."""
        return self.view.runs

    @property
    def theme(self) -> str:
        return self.view.theme


@dataclass(frozen=True)
class Cell:
    """One run's value of one row, as shown."""

    text: str  # shown, truncated to DISPLAY_CHARS
    title: str  # hover text, truncated to TITLE_CHARS
    missing: bool


@dataclass(frozen=True)
class Row:
    """One config key, metadata field or metric across the compared runs."""

    section: str  # "config", "metadata" or "metrics"
    key: str
    label: str
    cells: tuple[Cell, ...]
    differs: bool


@dataclass(frozen=True)
class Comparison:
    """Everything the comparer page shows for one query at one project version."""

    runs: tuple[RunInfo, ...]  # the columns, in sidebar order (newest first)
    requested: int  # runs selected (all runs when none were), may exceed MAX_COLUMNS
    unknown: int  # selected keys that name no run of the project
    sections: tuple[tuple[str, tuple[Row, ...]], ...]  # (label, rows) after filtering
    total_rows: int  # rows before search and differences-only
    colours: dict[str, str]
    picker: tuple[RunInfo, ...]  # every run of the project, newest first
    selected: frozenset[str]  # keys ticked in the picker


def _escape_segment(segment: str) -> str:
    return segment.replace("\\", "\\\\").replace(".", "\\.")


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a run's visible config (no top-level `_` keys) into escaped dot paths."""
    flat: dict[str, Any] = {}
    stack: list[tuple[str | None, Mapping[str, Any]]] = [
        (None, {k: v for k, v in config.items() if not str(k).startswith("_")})]
    while stack:
        prefix, mapping = stack.pop()
        for key, value in mapping.items():
            segment = _escape_segment(str(key))
            path = segment if prefix is None else f"{prefix}.{segment}"
            if isinstance(value, dict) and value:
                stack.append((path, value))
            else:
                flat[path] = value
    return dict(sorted(flat.items()))


class FlatConfigs(NamedTuple):
    """Every run's flattened config at one project version, and the keys they use."""

    by_run: dict[str, dict[str, Any]]
    keys: tuple[str, ...]  # sorted
    known: frozenset[str]


_flat_memo: OrderedDict[tuple[str, str], FlatConfigs] = OrderedDict()
_flat_memo_lock = threading.Lock()


def flat_configs(state: ProjectState) -> FlatConfigs:
    """Flattened configs of the state's version, flattened once per version: configs change
    with the version only, and thousands of them take a large share of a page's time."""
    memo_key = (str(state.path), state.version)
    with _flat_memo_lock:
        found = _flat_memo.get(memo_key)
        if found is not None:
            _flat_memo.move_to_end(memo_key)
            return found
    by_run = {key: flatten_config(config) for key, config in list(state.configs.items())}
    keys = tuple(sorted({key for flat in by_run.values() for key in flat}))
    built = FlatConfigs(by_run, keys, frozenset(keys))
    with _flat_memo_lock:
        # A few projects' latest versions; older versions are never asked for again.
        _flat_memo[memo_key] = built
        while len(_flat_memo) > MEMO_VERSIONS:
            _flat_memo.popitem(last=False)
    return built


def _stable_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str, allow_nan=True)


def canonical(value: Any, missing: bool = False) -> tuple:
    """A type-tagged form for equality: `1` ≠ `"1"`, True ≠ 1, NaN = NaN."""
    if missing:
        return ("missing",)
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", "NaN") if value != value else ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return ("json", _stable_json(value))


def _ambiguous(text: str) -> bool:
    """Whether a string's raw text could be read as another value (Trackio quotes those)."""
    if text == "" or text != text.strip() or text in ("true", "false", "null", MISSING):
        return True
    if text.startswith(("{", "[")):
        return True
    try:
        float(text)
    except ValueError:
        return text in ("NaN", "Infinity", "-Infinity")
    return True


def format_value(value: Any) -> str:
    """A config value as text, written the way Trackio shows it (JSON-ish, strings raw)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if _ambiguous(value) else value
    return _stable_json(value)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _cell(text: str | None) -> Cell:
    if text is None:
        return Cell(MISSING, "missing", True)
    return Cell(_truncate(text, DISPLAY_CHARS), _truncate(text, TITLE_CHARS), False)


def _differs(keys: Iterable[tuple]) -> bool:
    return len(set(keys)) > 1


def _value_rows(section: str, sources: list[dict[str, Any]],
                labels: Mapping[str, str] | None = None) -> list[Row]:
    keys = labels.keys() if labels is not None else sorted({k for s in sources for k in s})
    rows = []
    for key in keys:
        present = [key in source for source in sources]
        if not any(present):
            continue
        values = [source.get(key) for source in sources]
        rows.append(Row(section, key, labels[key] if labels is not None else key,
                        tuple(_cell(format_value(v) if here else None)
                              for v, here in zip(values, present, strict=True)),
                        _differs(canonical(v, not here)
                                 for v, here in zip(values, present, strict=True))))
    return rows


def _metric_rows(state: ProjectState, runs: tuple[RunInfo, ...], stat: str) -> list[Row]:
    names = sorted({name for run in runs if run.key in state.metrics
                    for name in state.metrics[run.key].metrics})
    rows = []
    for name in names:
        summaries = []
        for run in runs:
            columns = state.metrics.get(run.key)
            has = columns is not None and name in columns.metrics
            summaries.append(metric_summary(columns.column(name), stat) if has else None)
            if has:  # a min or max read the whole column: let its store pages go
                mapped_pages.done_with(columns, (name,))
        cells = tuple(Cell(MISSING, "missing", True) if value is None
                      else Cell(f"{value:.6g}", repr(value), False) for value in summaries)
        rows.append(Row("metrics", name, name, cells,
                        _differs(canonical(v, v is None) for v in summaries)))
    return rows


def unknown_count(state: ProjectState, wanted: tuple[str, ...] | None) -> int:
    """How many selected keys or names match no run of the project."""
    if not wanted:
        return 0
    names = {run.name for run in state.runs.values()}
    return sum(1 for item in wanted if item not in state.runs and item not in names)


def _matches(row: Row, needle: str) -> bool:
    return needle in row.key.lower() or needle in row.label.lower()


def compare(state: ProjectState, page: Page, query: Query, unknown: int) -> Comparison:
    """Build the comparer's rows for a query, searched and filtered as it asks: the columns
    are the page's selected runs (every run when none is selected), the newest MAX_COLUMNS."""
    chosen = page.selected
    runs = chosen[:MAX_COLUMNS]
    configs = [state.configs.get(run.key, {}) for run in runs]
    metadata = [{k: v for k, v in config.items() if k in METADATA and v is not None}
                for config in configs]
    rows = (_value_rows("config", [flatten_config(c) for c in configs])
            + _value_rows("metadata", metadata, METADATA)
            + _metric_rows(state, runs, query.stat)) if runs else []
    needle = query.search.lower()
    shown = [row for row in rows
             if (not query.diff_only or row.differs) and (not needle or _matches(row, needle))]
    sections = tuple((SECTION_LABELS[section], tuple(r for r in shown if r.section == section))
                     for section in SECTION_LABELS)
    return Comparison(runs=runs, requested=len(chosen), unknown=unknown,
                      sections=tuple(s for s in sections if s[1]),
                      total_rows=len(rows), colours=page.colours, picker=page.visible,
                      selected=frozenset(run.key for run in
                                         (chosen if query.runs is not None else runs)))
