"""The runs table's order and one page of its rows, server-side, for 10,000 runs as for 8.

No Flask here. The order of every (filtered) run by the chosen column is computed once per
project version, sort and filter (ProjectState.derived); a page then builds only its own rows.
"""

from __future__ import annotations

import math
from typing import Any

from . import mapped_pages
from .compare import FlatConfigs, format_value
from .live import ProjectState, RunInfo
from .series import Columns, last_finite

PAGE_ROWS = 100
SORTS = ("name", "created", "steps")


def final_value(columns: Columns | None, metric: str) -> float | None:
    """A run's final value of a metric; the store pages its tail read are let go."""
    value = last_finite(columns, metric)
    mapped_pages.done_with(columns, (metric,))
    return value


def valid_sort(sort: str) -> bool:
    return sort in SORTS or sort.startswith(("config:", "metric:"))


def sort_key(run: RunInfo, config: dict[str, Any], final: float | None, sort: str,
             descending: bool) -> tuple:
    """Order by one column; numbers by value, text by text, runs without a value last."""
    absent = (-1 if descending else 1, 0, 0.0, "")
    if sort == "name":
        return (0, 0, 0.0, run.name.lower())
    if sort == "steps":
        return (0, 0, float(run.rows), "")
    if sort.startswith("config:"):
        key = sort[len("config:"):]
        if key not in config:
            return absent
        value = config[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an int beyond float range sorts as text
                number = math.nan
            if number == number:
                return (0, 0, number, "")
        return (0, 1, 0.0, format_value(value))
    if sort.startswith("metric:"):
        return (0, 0, final, "") if final is not None else absent
    created = run.created if run.created == run.created else -math.inf
    return (0, 0, created, "")


def ordered(state: ProjectState, visible: list[RunInfo], configs: FlatConfigs, sort: str,
            descending: bool, run_filter: str) -> list[RunInfo]:
    """The visible runs in table order, once per version, sort and filter."""
    def compute(s: ProjectState) -> list[RunInfo]:
        metric = sort[len("metric:"):] if sort.startswith("metric:") else None
        keyed = [(sort_key(run, configs.by_run.get(run.key, {}),
                           final_value(s.metrics.get(run.key), metric) if metric else None,
                           sort, descending), run) for run in visible]
        keyed.sort(key=lambda pair: pair[0], reverse=descending)
        return [run for _, run in keyed]
    return state.derived(("runs-table", sort, descending, run_filter), compute)


def page_rows(state: ProjectState, runs: list[RunInfo], configs: FlatConfigs,
              chosen_config: list[str], chosen_metrics: list[str]) -> list[dict[str, Any]]:
    """The cells of one page of runs."""
    rows = []
    for run in runs:
        config = configs.by_run.get(run.key, {})
        rows.append({"run": run, "config": config,
                     "cells": {k: format_value(config[k]) for k in chosen_config if k in config},
                     "finals": {m: final_value(state.metrics.get(run.key), m)
                                for m in chosen_metrics}})
    return rows
