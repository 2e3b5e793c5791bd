"""Where a grouped chart's EMA line stopped, kept across refreshes: the EMA depends on every
earlier point, so a refresh of a long group goes on from a kept state instead of smoothing the
whole aggregate again. Pure; no Flask.

A state is kept with the last aligned x it took in and the project's metric cursor read before
its rows. It still holds while what members logged since that cursor moved the group's
aggregate only past that x (a member's new points also move its interpolated values back to its
former last step, and a resumed run logs that step again); the caller checks that
(group_delta._unmoved).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from .series import EmaState

# Group lines (metric, members, aggregate, weight) remembered per project: every panel × group
# of a page (a cyclic pass over more lines than kept would miss each one), ~0.6 kB each.
MAX_LINES = 4096
MARKS_PER_LINE = 8  # a refresh goes on from the latest; older ones serve pages polling slower


def line_key(metric: str, member_keys: list[str], agg: str, smoothing: int) -> bytes:
    """A group line's name among the kept ones: a digest, so a group of 10,000 runs costs
    what a group of two does."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (metric, agg, str(smoothing), *member_keys):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.digest()


class Mark(NamedTuple):
    """The EMA after every aggregate point at or before x, as of metric cursor `cursor`."""

    x: float
    cursor: int
    state: EmaState


class GroupEma:
    """Kept EMA states of a project's grouped lines; the line kept least recently leaves
    first (a worker's threads share it)."""

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

    @property
    def nbytes(self) -> int:
        """About what the kept states hold (a key, a list and the marks: ~120 bytes each)."""
        with self._lock:
            return sum(120 * (1 + len(marks)) for marks in self._lines.values())

    def keep(self, line: Any, mark: Mark) -> None:
        """Keep `mark` as the line's newest state (one per x)."""
        with self._lock:
            marks = [kept for kept in self._lines.pop(line, []) if kept.x != mark.x]
            self._lines[line] = [*marks, mark][-MARKS_PER_LINE:]
            while len(self._lines) > MAX_LINES:
                self._lines.popitem(last=False)
