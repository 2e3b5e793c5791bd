"""Waiting on conditions in browser tests: never a bare sleep, never a count in a fixed window."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
WAIT_S = 60.0


def wait_until(page, predicate: Callable[[], T], what: str, timeout: float = WAIT_S) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    Polls through Playwright (not time.sleep) so that route handlers and page events run
    meanwhile: the sync API only dispatches them while a Playwright call is waiting.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(100)
