"""Read a project from a remote dashboard's history URLs (views/history.py) into a ProjectState,
for `trackio-flask export --url`: closed chunks are immutable, so any cache between (nginx, a
CDN) answers them for good and only the index and new chunks reach the server.

Everything the server sends is checked before use: each chunk's bytes must hash to the digest
in its URL (a cache or proxy cannot slip in other rows), lengths must agree, and anything else
is a HistoryError with a message, never a half-built state.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import history_chunks, storage
from .live import ProjectState, RunInfo
from .series import Columns

TIMEOUT_S = 60.0
MAX_BYTES = 64 * 2**20  # per answer: a chunk is ~1 MB at 12 metrics, an index a few MB
# The app's RATELIMIT_REFRESH budget (720 a minute) is less than a long history's chunks when
# nothing caches them in between: wait as told rather than fail half-way.
RETRIES = 10
MAX_WAIT_S = 120


class HistoryError(Exception):
    """The remote dashboard could not be read, or sent something that is not a history."""


def _get(url: str) -> bytes:
    """The answer's bytes; a 429 or 503 is waited out as its Retry-After says, a few times."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    for attempt in range(RETRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                data = response.read(MAX_BYTES + 1)
            break
        except urllib.error.HTTPError as exc:
            wait = _retry_after(exc)
            if wait is None or attempt == RETRIES:
                raise HistoryError(f"{url}: {exc}") from None
            time.sleep(wait)
        except (urllib.error.URLError, OSError) as exc:
            raise HistoryError(f"{url}: {exc}") from None
    if len(data) > MAX_BYTES:
        raise HistoryError(f"{url}: answer larger than {MAX_BYTES:,} bytes")
    return data


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    """Seconds to wait before asking again (a rate limit or a busy server), None to give up."""
    raw = (error.headers.get("Retry-After") or "") if error.headers else ""
    if error.code not in (429, 503) or not raw.isdigit() or int(raw) > MAX_WAIT_S:
        return None
    return float(raw)


def _json(data: bytes, url: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise HistoryError(f"{url}: not JSON") from None


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else float("nan")


def _columns(parts: list[dict[str, Any]]) -> Columns:
    """One run's table from its chunks and tail, in row order."""
    def column(values: Any) -> np.ndarray:
        return np.array([_float(v) for v in values], dtype=np.float64)

    ids = np.concatenate([np.asarray(p["ids"], dtype=np.int64) for p in parts])
    steps = np.concatenate([column(p["steps"]) for p in parts])
    times = np.concatenate([column(p["times"]) for p in parts])
    names = sorted({name for p in parts for name in p["metrics"]})
    metrics = {name: np.concatenate([column(p["metrics"][name]) if name in p["metrics"]
                                     else np.full(len(p["ids"]), np.nan) for p in parts])
               for name in names}
    if not all(a.size == ids.size for a in (steps, times, *metrics.values())):
        raise HistoryError("a chunk's columns differ in length")
    finite = {name: int(np.isfinite(values).sum()) for name, values in metrics.items()}
    return Columns.from_arrays(ids, steps, times, metrics, finite, int(ids.size))


def _table(base: str, entry: dict[str, Any], stats: dict[str, int]) -> Columns | None:
    parts = []
    for link in entry["chunks"]:
        url = urllib.parse.urljoin(base, link)
        data = _get(url)
        stats["chunks"] += 1
        digest = urllib.parse.urlparse(url).path.rsplit("/", 1)[-1].removesuffix(".json")
        if history_chunks.digest_of(data) != digest:
            raise HistoryError(f"{url}: the chunk does not match its digest")
        parts.append(_json(data, url))
    if entry.get("tail") is not None:
        parts.append(entry["tail"])
    return _columns(parts) if parts else None


def fetch_state(base_url: str, project: str) -> tuple[ProjectState, dict[str, int]]:
    """The project as a remote dashboard at `base_url` serves it, and what was fetched."""
    storage.validate_project_name(project)
    base = base_url.rstrip("/") + "/"
    index_url = urllib.parse.urljoin(base, f"projects/{urllib.parse.quote(project, safe='')}/history")
    index = _json(_get(index_url), index_url)
    stats = {"chunks": 0}
    state = ProjectState(project, Path(""), 0, storage.Schema(None, None, None))
    try:
        state.version = str(index["version"])
        for run in index["runs"]:
            key, name = str(run["key"]), str(run["name"])
            info = RunInfo(key=key, name=name, created=_float(run["created"]),
                           first_time=_float(run["first_time"]))
            state.runs[key] = info
            state.configs[key] = run["config"] if isinstance(run["config"], dict) else {}
            for table, into in (("metrics", state.metrics), ("system", state.system)):
                columns = _table(index_url, run[table], stats)
                if columns is not None:
                    into[key] = columns
            metrics = state.metrics.get(key)
            if metrics is not None and metrics.length:
                info.rows = metrics.length
                info.last_step, info.last_time = float(metrics.steps[metrics.length - 1]), \
                    float(metrics.times[metrics.length - 1])
                state.metric_names.update(metrics.metrics)
            system = state.system.get(key)
            if system is not None and system.length:
                info.system_first_time = float(system.times[0])
                state.system_names.update(system.metrics)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HistoryError(f"{index_url}: not a history index ({exc!r})") from None
    state.metric_rows = sum(c.length for c in state.metrics.values())
    state.system_rows = sum(c.length for c in state.system.values())
    return state, stats
