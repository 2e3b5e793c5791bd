"""The run selection in a URL: a compact token over the project's runs in creation order.

No Flask here. Listing every run key (`run_ids=`, Trackio's) costs ~33 characters a run with
trackio's 32-hex ids: 120 runs outgrow gunicorn's 4,094-character request line. A token names
runs by their index in creation order (the colour order, which new runs only extend):

    sel=i<n>_<fp>_<ranges>   the runs listed               e.g. i120_3fa2_0-9.15
    sel=x<n>_<fp>_<ranges>   every run but those listed    e.g. x120_3fa2_7   (new runs join)
    sel=b<n>_<fp>_<bits>     bitmap, base64url, bit i%8 of byte i//8 (LSB first)
    sel=all                  every run;   no sel: the default (selection.default_keys)

`n` is how many runs the project had when the token was made and `fp` four hex digits of a hash
of those runs' keys in order: runs created later do not move the indices, and a token made
before a deletion is detected (fp differs) instead of silently naming other runs. Ranges are
`a-b` or `a`, joined by `.` (characters a URL carries unescaped). The encoder picks the shortest
of the three forms, so a token costs at most n/6 characters (1,667 for 10,000 runs) and a
typical one (latest 10, all but one) a dozen. static/controls.js has the same codec.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import NamedTuple

from .live import ProjectState, RunInfo

DEFAULT_ABOVE = 50  # a project with more runs opens on its latest DEFAULT_COUNT
DEFAULT_COUNT = 10
MAX_TOKEN_RUNS = 100_000  # bounds what decoding a hostile token may cost
LONG_LIST = 300  # a run_ids/runs list longer than this (characters) is re-written as a token
_TOKEN = re.compile(r"([ixb])([0-9]{1,7})_([0-9a-f]{4})_([A-Za-z0-9_.-]*)")
_RANGE = re.compile(r"([0-9]{1,7})(?:-([0-9]{1,7}))?")


class Token(NamedTuple):
    mode: str  # i | x | b
    count: int
    fp: str
    body: str


def parse(raw: str) -> Token:
    """The token's parts; ValueError (saying why) for anything the encoder would not write."""
    match = _TOKEN.fullmatch(raw)
    if match is None:
        raise ValueError("sel must be all or a run-selection token like i12_ab12_0-3.7")
    mode, count, fp, body = match.groups()
    token = Token(mode, int(count), fp, body)
    if token.count > MAX_TOKEN_RUNS:
        raise ValueError("sel names more runs than a project holds")
    indices(token)  # validates the body
    return token


def _ranges(body: str, limit: int) -> set[int]:
    found: set[int] = set()
    for part in body.split(".") if body else ():
        match = _RANGE.fullmatch(part)
        if match is None:
            raise ValueError("sel has a malformed range")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if not low <= high < limit:
            raise ValueError("sel names a run index out of range")
        found.update(range(low, high + 1))
    return found


def indices(token: Token) -> set[int]:
    """The indices a token lists (for `x`, those it leaves out)."""
    if token.mode != "b":
        return _ranges(token.body, token.count)
    try:
        bits = base64.urlsafe_b64decode(token.body + "=" * (-len(token.body) % 4))
    except ValueError:
        raise ValueError("sel has a malformed bitmap") from None
    if len(bits) != (token.count + 7) // 8:
        raise ValueError("sel has a bitmap that does not match its run count")
    found = {at for at in range(token.count) if bits[at >> 3] >> (at & 7) & 1}
    return found


def ranges_text(picked: Iterable[int]) -> str:
    """Sorted indices as `a-b.c` ranges."""
    parts: list[str] = []
    ordered = sorted(picked)
    at = 0
    while at < len(ordered):
        end = at
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        parts.append(str(ordered[at]) if end == at else f"{ordered[at]}-{ordered[end]}")
        at = end + 1
    return ".".join(parts)


def bitmap_text(picked: Iterable[int], count: int) -> str:
    bits = bytearray((count + 7) // 8)
    for at in picked:
        bits[at >> 3] |= 1 << (at & 7)
    return base64.urlsafe_b64encode(bytes(bits)).decode().rstrip("=")


def encode(picked: set[int], count: int, fp: str) -> str:
    """The shortest token for these indices of `count` runs (ties: i, then x, then b)."""
    head = f"{count}_{fp}_"
    left_out = set(range(count)) - picked
    return min((f"i{head}{ranges_text(picked)}", f"x{head}{ranges_text(left_out)}",
                f"b{head}{bitmap_text(picked, count)}"), key=len)


def order(state: ProjectState) -> list[str]:
    """Run keys in creation order (a token's indices), computed once per project version."""
    return state.derived(("selection-order",), lambda s: [
        run.key for run in sorted(s.runs.values(), key=lambda r: (
            r.created if r.created == r.created else float("-inf"), r.key))])


def index(state: ProjectState) -> dict[str, int]:
    """Each run key's index in creation order."""
    return state.derived(("selection-index",),
                         lambda s: {key: at for at, key in enumerate(order(s))})


def prefix_fp(keys: list[str], count: int) -> str:
    """Four hex digits standing for the first `count` keys in order."""
    digest = hashlib.blake2b(digest_size=2)
    for key in keys[:count]:
        digest.update(key.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def project_fp(state: ProjectState) -> str:
    return state.derived(("selection-fp", len(state.runs)),
                         lambda s: prefix_fp(order(s), len(s.runs)))


def token_for(state: ProjectState, keys: Iterable[str]) -> str:
    """The token selecting these run keys (keys of no run are dropped)."""
    at = index(state)
    picked = {at[key] for key in keys if key in at}
    return encode(picked, len(at), project_fp(state))


def resolve(state: ProjectState, token: Token) -> frozenset[str] | None:
    """The run keys a token selects; None when it was made before runs were deleted (or
    otherwise reordered), so it would name other runs than its author meant."""
    keys = order(state)
    if token.count > len(keys):
        return None
    fp = state.derived(("selection-fp", token.count), lambda s: prefix_fp(keys, token.count))
    if fp != token.fp:
        return None
    listed = indices(token)
    if token.mode == "x":
        kept = [key for at, key in enumerate(keys) if at not in listed]
        return frozenset(kept)
    return frozenset(keys[at] for at in listed)


def default_keys(visible: list[RunInfo]) -> frozenset[str]:
    """What a URL without a selection shows in a project of more than DEFAULT_ABOVE runs: the
    latest DEFAULT_COUNT visible runs (`visible` is newest first), as MLflow does."""
    return frozenset(run.key for run in visible[:DEFAULT_COUNT])
