"""A run's logged rows cut into closed chunks that never change, each named by a hash of its
bytes, and the open tail after them.

Trackio only appends rows (ids grow), so a run's first `k * CHUNK_ROWS` rows can no longer
change once rows past them exist; only a rewrite can (a run deleted or renamed, the file
replaced, a VACUUM that renumbers ids), and a rewrite changes the chunk's bytes and so its
digest. A URL holding the digest therefore names one immutable answer: shared caches may keep
it for good, and a client given the URL of a rewritten chunk gets 404, never old rows.

A chunk is JSON: run key and name, table, row positions, row ids, steps, times and each metric
that has a value in those rows (values as numbers, null where absent or not finite). Metrics a
run logs only later are left out of earlier chunks, so a new metric name changes no closed chunk.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from .live import ProjectState
from .series import Columns

CHUNK_ROWS = 4096
TABLES = ("metrics", "system")
_memo: dict[int, tuple[weakref.ref, dict[tuple, str]]] = {}
_guard = threading.Lock()


@dataclass(frozen=True)
class Chunk:
    """One closed chunk: rows [start, stop) of a run's table, and its digest."""

    table: str
    run: str
    index: int
    digest: str


def columns_of(state: ProjectState, table: str, run: str) -> Columns | None:
    """The run's columns of `table` ("metrics" or "system"), None when it has none."""
    return (state.metrics if table == "metrics" else state.system).get(run)


def body(state: ProjectState, table: str, run: str, start: int, stop: int) -> bytes:
    """Rows [start, stop) of a run's table as the chunk's JSON bytes."""
    columns = columns_of(state, table, run)
    assert columns is not None and 0 <= start <= stop <= columns.length
    metrics = {}
    for name in sorted(columns.metrics):
        values = columns.metrics[name][start:stop]
        if not np.isnan(values).all():
            metrics[name] = values
    info = state.runs.get(run)
    return orjson.dumps({
        "run": run, "name": info.name if info is not None else run, "table": table,
        "rows": [start, stop], "ids": columns.ids[start:stop], "steps": columns.steps[start:stop],
        "times": columns.times[start:stop], "metrics": metrics,
    }, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_SORT_KEYS)


def digest_of(data: bytes) -> str:
    """The content address of a chunk's bytes."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _digests(state: ProjectState) -> dict[tuple, str]:
    """This state's memo of chunk digests: closed chunks never change while it is appended to
    (a rewrite makes a new state), so each is hashed once per process, not once per tick."""
    with _guard:
        entry = _memo.get(id(state))
        if entry is None or entry[0]() is not state:
            entry = (weakref.ref(state), {})
            _memo[id(state)] = entry
            weakref.finalize(state, _memo.pop, id(state), None)
        return entry[1]


def chunk_digest(state: ProjectState, table: str, run: str, index: int) -> str | None:
    """The digest of a run's closed chunk `index`, None when there is no such closed chunk."""
    found = _closed_chunk(state, table, run, index, with_body=False)
    return None if found is None else found[0]


def closed_body(state: ProjectState, table: str, run: str, index: int,
                digest: str) -> bytes | None:
    """The bytes of a run's closed chunk `index` while `digest` is still their content's,
    else None (no such chunk, or the history was rewritten). Built once per request."""
    found = _closed_chunk(state, table, run, index, with_body=True)
    return None if found is None or found[0] != digest else found[1]


def _closed_chunk(state: ProjectState, table: str, run: str, index: int,
                  with_body: bool) -> tuple[str, bytes | None] | None:
    """(digest, bytes when asked or hashed now) of a closed chunk; None when it is not one."""
    columns = columns_of(state, table, run)
    if columns is None or index < 0 or (index + 1) * CHUNK_ROWS > columns.length:
        return None
    info = state.runs.get(run)
    memo = _digests(state)
    key = (table, run, info.name if info is not None else run, index)
    digest = memo.get(key)
    data = None
    if digest is None or with_body:
        data = body(state, table, run, index * CHUNK_ROWS, (index + 1) * CHUNK_ROWS)
    if digest is None:
        digest = memo[key] = digest_of(data)
    return digest, data


def closed(state: ProjectState, table: str, run: str) -> list[Chunk]:
    """A run's closed chunks of `table`, oldest first."""
    columns = columns_of(state, table, run)
    count = 0 if columns is None else columns.length // CHUNK_ROWS
    return [Chunk(table, run, i, chunk_digest(state, table, run, i) or "") for i in range(count)]


def tail(state: ProjectState, table: str, run: str) -> dict[str, Any] | None:
    """The run's rows after its last closed chunk (they may still grow), as a chunk's JSON."""
    columns = columns_of(state, table, run)
    if columns is None:
        return None
    start = columns.length // CHUNK_ROWS * CHUNK_ROWS
    return orjson.loads(body(state, table, run, start, columns.length))
