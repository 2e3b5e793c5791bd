"""Trackio's ISO 8601 timestamps: parse, write and check them in one place. No Flask here.

Every stored timestamp must round-trip through a float of seconds and back to a date
(`datetime.fromtimestamp` covers years 1 to 9999), or pages that show it cannot render.
Ingest refuses stamps outside LOWEST..HIGHEST; the reader turns any it cannot place into NaN.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

LOWEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
HIGHEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
# Seconds between the years ~70 and ~9890: any float here converts back to a date.
SAFE_LOW, SAFE_HIGH = -6.0e10, 2.5e11


def now_iso() -> str:
    """The current time as Trackio writes it."""
    return datetime.now(timezone.utc).isoformat()


def parse(text: object) -> float:
    """Seconds since the epoch for a stored stamp; NaN when it is missing or unplaceable."""
    if not isinstance(text, str):
        return math.nan
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return math.nan
    if stamp.tzinfo is None:
        # Trackio writes UTC; an offset-less stamp from old files is UTC too.
        stamp = stamp.replace(tzinfo=timezone.utc)
    try:
        seconds = stamp.timestamp()
        if not SAFE_LOW < seconds < SAFE_HIGH:  # only stamps near year 1 or 9999 can fail
            datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, ValueError, OSError):
        return math.nan
    return seconds


def checked(text: object) -> str | None:
    """Return `text` if it is an ISO stamp between LOWEST and HIGHEST, else None."""
    seconds = parse(text)
    if not LOWEST.timestamp() <= seconds <= HIGHEST.timestamp():
        return None
    return text  # type: ignore[return-value]


def to_iso(seconds: float) -> str | None:
    """Seconds since the epoch as an ISO stamp in UTC; None when it cannot be placed."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat()
    except (OverflowError, ValueError, OSError):
        return None


def to_display(seconds: float | None) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC for pages; an em dash when unknown."""
    if seconds is None or seconds != seconds:
        return "—"
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):
        return "—"
