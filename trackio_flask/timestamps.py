"""Trackio's ISO 8601 timestamps: parse, write and check them in one place. No Flask here.

Every stored timestamp must round-trip through a float of seconds and back to a date
(`datetime.fromtimestamp` covers years 1 to 9999), or pages that show it cannot render.
Ingest refuses stamps outside LOWEST..HIGHEST; the reader turns any it cannot place into NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np

LOWEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
HIGHEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
# Seconds between the years ~70 and ~9890: any float here converts back to a date.
SAFE_LOW, SAFE_HIGH = -6.0e10, 2.5e11
# Trackio's own stamps, `datetime.isoformat()` in UTC, without and with microseconds: a
# byte template per length, "0" where a digit goes.
UTC_FORMS = ("0000-00-00T00:00:00+00:00", "0000-00-00T00:00:00.000000+00:00")
UTC_SUFFIX = "+00:00"
# Microseconds below 2**53 convert to float exactly, so dividing by 1e6 rounds once, as
# Python's int / int in `datetime.timestamp()` does: the same float, bit for bit.
EXACT_MICROS = 2**53


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


def parse_many(texts: Sequence[object]) -> np.ndarray:
    """`parse` of every stamp, as float64 seconds: stamps of Trackio's exact UTC form are
    checked and read from their bytes all at once (a cold build reads millions), others one
    by one."""
    seconds = np.full(len(texts), math.nan)
    if set(map(type, texts)) == {str}:
        lengths = np.fromiter(map(len, texts), np.int64, count=len(texts))
    else:
        lengths = np.fromiter((len(text) if type(text) is str else -1 for text in texts),
                              np.int64, count=len(texts))
    for form in UTC_FORMS:
        positions = np.flatnonzero(lengths == len(form))
        if positions.size == len(texts):
            seconds = _parse_form(texts, form)
        elif positions.size:
            seconds[positions] = _parse_form([texts[index] for index in positions.tolist()], form)
    for index in np.flatnonzero(np.isnan(seconds)).tolist():
        seconds[index] = parse(texts[index])
    return seconds


def _parse_form(texts: Sequence[object], form: str) -> np.ndarray:
    """Seconds for stamps of `form`'s length; NaN for any that strays from the form (a
    letter for a digit, another offset, a day Python would refuse), left to `parse`.

    The fields are read from the digits' bytes with integer arithmetic: numpy's own string
    parser is slower, and its bytes-to-datetime cast crashes the process (numpy 2.4) when one
    date in a long array is out of range."""
    seconds = np.full(len(texts), math.nan)
    try:
        joined = "".join(texts).encode("ascii")  # type: ignore[arg-type]
    except UnicodeEncodeError:
        return seconds
    template = np.frombuffer(form.encode("ascii"), np.uint8)
    digit = template == ord("0")
    digit[-len(UTC_SUFFIX):] = False  # the offset's zeros are fixed text, not digits
    chars = np.frombuffer(joined, np.uint8).reshape(len(texts), len(form))
    digits = chars[:, digit]
    fits = ((digits >= ord("0")) & (digits <= ord("9"))).all(axis=1)
    fits &= (chars[:, ~digit] == template[~digit]).all(axis=1)

    def field(start: int, width: int) -> np.ndarray:
        value = np.zeros(len(texts), dtype=np.int64)
        for column in range(start, start + width):
            value = value * 10 + chars[:, column] - ord("0")
        return value

    year, month, day = field(0, 4), field(5, 2), field(8, 2)
    hour, minute, second = field(11, 2), field(14, 2), field(17, 2)
    micro = field(20, 6) if len(form) > 25 else 0
    months = (year - 1970) * 12 + month - 1
    # numpy's calendar (proleptic Gregorian, as Python's): the first day of this month and the next.
    month_start = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    next_start = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    fits &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= next_start - month_start)
    fits &= (hour < 24) & (minute < 60) & (second < 60)
    days = month_start + day - 1
    micros = (days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000 + micro
    # Only exact floats, and only years Python can place (year 0 is in numpy's calendar).
    fits &= np.abs(micros) < EXACT_MICROS
    values = np.where(fits, micros, 0) / 1e6
    fits &= (values > SAFE_LOW) & (values < SAFE_HIGH)
    seconds[fits] = values[fits]
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
