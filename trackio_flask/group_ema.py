"""Where a grouped chart's EMA line stopped, kept across refreshes: the EMA depends on every
earlier point, so a refresh of a long group goes on from a kept state instead of smoothing the
whole aggregate again. Pure; no Flask.

A state is kept with the last aligned x it took in and the project's metric cursor then. It
still holds while no member logged a step at or before that x since (steps only grow on the
pages that use it, but a resumed run logs its last step again); the caller checks that.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from .series import EmaState

# Group lines (metric, members, aggregate, weight) remembered per project: every panel × group
# of a page (a cyclic pass over more lines than kept would miss each one), at ~1 kB each.
MAX_LINES = 4096
MARKS_PER_LINE = 4  # a refresh goes on from the latest; older ones serve pages left behind


class Mark(NamedTuple):
    """The EMA after every aggregate point at or before x, as of metric cursor `cursor`."""

    x: float
    cursor: int
    state: EmaState


class GroupEma:
    """Kept EMA states of a project's grouped lines, the most recently used lines first out
    last (a worker's threads share it)."""

    def __init__(self) -> None:
        self._lines: OrderedDict[Any, list[Mark]] = OrderedDict()
        self._lock = threading.Lock()

    def before(self, line: Any, x: float, holds: Callable[[Mark], bool]) -> Mark | None:
        """The latest kept state of `line` that took in only points before `x` and `holds`."""
        with self._lock:
            marks = list(self._lines.get(line, ()))
        usable = [mark for mark in marks if mark.x < x]
        return max((mark for mark in usable if holds(mark)), key=lambda mark: mark.x,
                   default=None)

    def keep(self, line: Any, mark: Mark) -> None:
        with self._lock:
            marks = [kept for kept in self._lines.pop(line, []) if kept.x != mark.x]
            self._lines[line] = [*marks, mark][-MARKS_PER_LINE:]
            while len(self._lines) > MAX_LINES:
                self._lines.popitem(last=False)
