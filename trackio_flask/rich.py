"""Rich values (media, tables, histograms, Markdown) logged with trackio's types, read on demand.

`live.ProjectStore` remembers where each rich value was logged (`live.RichRef`); the values
themselves stay in the database and are read here by row id, a page's worth at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import storage
from .live import ProjectState, RichRef
from .series import decode_payload

READ_CHUNK = 500  # row ids per IN (...) query, well under SQLite's variable limit


def _positions_by_kind(state: ProjectState) -> dict[str, list[int]]:
    """Where each `_type`'s refs sit in state.rich, in logging order."""
    index: dict[str, list[int]] = {}
    for position, ref in enumerate(state.rich):
        index.setdefault(ref.kind, []).append(position)
    return index


def refs_of(state: ProjectState, kinds: Iterable[str], runs: Iterable[str] | None = None
            ) -> list[RichRef]:
    """The refs of these `_type`s (and runs, when given), in logging order."""
    index = state.derived("rich-by-kind", _positions_by_kind)
    positions = heapq.merge(*(index.get(kind, ()) for kind in set(kinds)))
    wanted = None if runs is None else set(runs)
    refs = (state.rich[position] for position in positions)
    return [ref for ref in refs if wanted is None or ref.run in wanted]


def lookup(payload: dict[str, Any], key: str) -> Any:
    """The value logged under a flattened key: `a/b` may be a flat key or `{"a": {"b": …}}`."""
    if key in payload:
        return payload[key]
    head, sep, _ = key.partition("/")
    while sep:
        inner = payload.get(head)
        if isinstance(inner, dict) and "_type" not in inner:
            found = lookup(inner, key[len(head) + 1:])
            if found is not None:
                return found
        cut = key.find("/", len(head) + 1)
        if cut < 0:
            break
        head = key[:cut]
    return None


def load_values(path: Path, schema: storage.Schema, refs: Sequence[RichRef]
                ) -> list[tuple[RichRef, Any]]:
    """Each ref with its logged value (a dict, or a list of dicts for a list of media), or
    None when the row is gone (deleted since the ref was taken)."""
    if not refs or schema.metrics_key is None:
        return [(ref, None) for ref in refs]
    payloads: dict[int, Any] = {}
    ids = sorted({ref.row_id for ref in refs})
    conn = storage.open_readonly(path)
    try:
        for start in range(0, len(ids), READ_CHUNK):
            chunk = ids[start:start + READ_CHUNK]
            rows = storage.read(conn, f"SELECT id, metrics FROM metrics WHERE id IN "
                                      f"({','.join('?' * len(chunk))})", tuple(chunk))
            payloads.update((row_id, decode_payload(payload)) for row_id, payload in rows)
    finally:
        conn.close()
    return [(ref, lookup(payloads[ref.row_id], ref.key) if ref.row_id in payloads else None)
            for ref in refs]
