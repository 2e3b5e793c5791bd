"""Trackio's read calls that the live store does not cover, as SQL over a read-only connection.

Each function mirrors the query of trackio's `SQLiteStorage` function of the same purpose (run
resolution, filters, order), so results equal trackio's server on the same file. No Flask here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from . import storage
from .series import decode_payload

NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
# A window read (get_snapshot, get_metric_values) reads at most this many rows of a run.
WINDOW_MAX_ROWS = 20_000
ID_CHUNK = 500
MEDIA_TYPES = ("trackio.image", "trackio.video", "trackio.audio", "trackio.table", "trackio.html",
               "trackio.object3d")

@contextmanager
def reading(data_dir: Path, project: str) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to the project's database, or None when there is no database."""
    path = storage.db_path(data_dir, project)
    try:
        conn = storage.open_readonly(path)
    except storage.ProjectNotFound:
        yield None
        return
    try:
        yield conn
    finally:
        conn.close()


def top_level(payload: Any) -> dict[str, Any]:
    """A stored metrics/config payload with trackio's top-level NaN/Infinity strings as floats."""
    return {key: NON_FINITE.get(value, value) if isinstance(value, str) else value
            for key, value in decode_payload(payload).items()}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in storage.read(conn, f"PRAGMA table_info({table})")}


def identity(conn: sqlite3.Connection, table: str, run: str | None,
             run_id: str | None) -> tuple[str, str] | None:
    """The (column, value) that selects a run's rows in `table`, as trackio resolves it.

    With run ids, a name means the run of that name that started last; without, the name is
    the key. None when the table is missing or the run cannot be found.
    """
    found = columns(conn, table)
    if not found:
        return None
    if "run_id" in found:
        if run_id is not None:
            return ("run_id", run_id)
        if run is None:
            return None
        source = table if "timestamp" in found else "metrics"
        if not columns(conn, source):
            return None
        rows = storage.read(conn, f"SELECT run_id FROM {source} WHERE run_name = ? "
                                  "GROUP BY run_id ORDER BY MIN(timestamp) DESC LIMIT 1", (run,))
        return ("run_id", rows[0][0]) if rows else None
    resolved = run if run is not None else run_id
    return None if resolved is None else ("run_name", resolved)


def metric_names(conn: sqlite3.Connection, table: str, run: str | None, run_id: str | None,
                 exclude: frozenset[str]) -> list[str]:
    """Every top-level key a run logged in `table` (media, tables and strings too), sorted."""
    found = identity(conn, table, run, run_id)
    if found is None:
        return []
    # CASE keeps json_each away from rows another writer left unreadable.
    rows = storage.read(conn, f"""
        SELECT DISTINCT j.key FROM (
            SELECT CAST(metrics AS TEXT) AS m FROM {table} WHERE {found[0]} = ?) AS s,
        json_each(CASE WHEN json_valid(s.m) THEN
                      CASE WHEN json_type(s.m) = 'object' THEN s.m ELSE '{{}}' END
                  ELSE '{{}}' END) AS j""", (found[1],))
    return sorted(key for (key,) in rows if isinstance(key, str) and key not in exclude)


def log_count(conn: sqlite3.Connection, found: tuple[str, str]) -> int:
    return int(storage.read(conn, f"SELECT COUNT(*) FROM metrics WHERE {found[0]} = ?",
                            (found[1],))[0][0])


def last_step(conn: sqlite3.Connection, found: tuple[str, str]) -> Any:
    return storage.read(conn, f"SELECT MAX(step) FROM metrics WHERE {found[0]} = ?",
                        (found[1],))[0][0]


def run_config(conn: sqlite3.Connection, found: tuple[str, str]) -> dict[str, Any] | None:
    config_columns = columns(conn, "configs")
    if not config_columns:
        return None
    column = "run_id" if "run_id" in config_columns else "run_name"
    rows = storage.read(conn, f"SELECT config FROM configs WHERE {column} = ? LIMIT 1",
                        (found[1],))
    return top_level(rows[0][0]) if rows else None


def run_name_of(conn: sqlite3.Connection, run_id: str) -> str | None:
    """The name of the run with this id (trackio reports it in run summaries)."""
    if "run_id" not in columns(conn, "metrics"):
        found = storage.read(conn, "SELECT 1 FROM metrics WHERE run_name = ? LIMIT 1", (run_id,))
        return run_id if found else None
    rows = storage.read(conn, "SELECT run_name FROM metrics WHERE run_id = ? "
                              "ORDER BY timestamp LIMIT 1", (run_id,))
    return rows[0][0] if rows else None


def max_steps(conn: sqlite3.Connection) -> dict[str, Any]:
    """Each run's largest step, keyed like trackio (run id, or name in old files)."""
    found = columns(conn, "metrics")
    if not found:
        return {}
    key = "run_id" if "run_id" in found else "run_name"
    return {run: step for run, step in storage.read(
        conn, f"SELECT {key}, MAX(step) FROM metrics GROUP BY {key}")}


def alerts(conn: sqlite3.Connection, run: str | None, run_id: str | None, level: str | None,
           since: str | None) -> list[dict[str, Any]]:
    """Alerts newest first, filtered like trackio's get_alerts."""
    if not columns(conn, "alerts"):
        return []
    conditions, params = [], []
    found = identity(conn, "alerts", run, run_id)
    if found is not None:
        conditions.append(f"{found[0]} = ?")
        params.append(found[1])
    elif run is not None or run_id is not None:
        return []
    if level is not None:
        conditions.append("level = ?")
        params.append(level)
    if since is not None:
        conditions.append("timestamp > ?")
        params.append(since)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = storage.read(conn, "SELECT timestamp, run_name, title, text, level, step FROM alerts"
                              f"{where} ORDER BY timestamp DESC", tuple(params))
    return [{"timestamp": stamp, "run": name, "title": title, "text": body, "level": lvl,
             "step": step} for stamp, name, title, body, lvl, step in rows]


def _window_rows(conn: sqlite3.Connection, found: tuple[str, str], step: int | None,
                 around_step: int | None, at_time: str | None,
                 window: int | None) -> list[tuple]:
    """(timestamp, step, payload) rows of a run in trackio's step/time window, by timestamp;
    past WINDOW_MAX_ROWS rows, evenly thinned to that many (ids first, payloads for those)."""
    where = f"{found[0]} = ?"
    params: list[Any] = [found[1]]
    if step is not None:
        where += " AND step = ?"
        params.append(step)
    elif around_step is not None and window is not None:
        where += " AND step >= ? AND step <= ?"
        params += [around_step - window, around_step + window]
    elif at_time is not None and window is not None:
        where += (" AND timestamp >= datetime(?, '-' || ? || ' seconds')"
                  " AND timestamp <= datetime(?, '+' || ? || ' seconds')")
        params += [at_time, window, at_time, window]
    ids = [row_id for (row_id,) in storage.read(
        conn, f"SELECT id FROM metrics WHERE {where} ORDER BY timestamp", tuple(params))]
    return rows_by_id(conn, "timestamp, step, metrics", evenly(ids, WINDOW_MAX_ROWS))


def evenly(items: list[Any], limit: int) -> list[Any]:
    """At most `limit` items spread evenly over the list, first and last included."""
    if len(items) <= limit:
        return items
    last = len(items) - 1
    return [items[round(i * last / (limit - 1))] for i in range(limit)] if limit > 1 \
        else [items[-1]]


def rows_by_id(conn: sqlite3.Connection, columns: str, ids: list[int]) -> list[tuple]:
    """`columns` of the metrics rows with these ids, in the order of `ids`."""
    found: dict[int, tuple] = {}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start:start + ID_CHUNK]
        for row in storage.read(conn, f"SELECT id, {columns} FROM metrics WHERE id IN "
                                      f"({','.join('?' * len(chunk))})", tuple(chunk)):
            found[row[0]] = row[1:]
    return [found[row_id] for row_id in ids if row_id in found]


def subsample_evenly(rows: list[Any], max_points: int | None) -> list[Any]:
    """Trackio's even subsample that keeps the first and last row."""
    if max_points is None or max_points < 1 or len(rows) <= max_points:
        return rows
    if max_points == 1:
        return [rows[-1]]
    last = len(rows) - 1
    return [rows[i] for i in sorted({round(i * last / (max_points - 1))
                                     for i in range(max_points)})]


def metric_values(conn: sqlite3.Connection, run: str | None, run_id: str | None, metric: str,
                  step: int | None, around_step: int | None, at_time: str | None,
                  window: int | None, max_points: int | None) -> list[dict[str, Any]]:
    found = identity(conn, "metrics", run, run_id)
    if found is None:
        return []
    results = []
    for stamp, row_step, payload in _window_rows(conn, found, step, around_step, at_time,
                                                 window):
        values = top_level(payload)
        if metric in values:
            results.append({"timestamp": stamp, "step": row_step, "value": values[metric]})
    return subsample_evenly(results, max_points)


def snapshot(conn: sqlite3.Connection, run: str | None, run_id: str | None, step: int | None,
             around_step: int | None, at_time: str | None,
             window: int | None) -> dict[str, list[dict[str, Any]]]:
    found = identity(conn, "metrics", run, run_id)
    if found is None:
        return {}
    result: dict[str, list[dict[str, Any]]] = {}
    for stamp, row_step, payload in _window_rows(conn, found, step, around_step, at_time,
                                                 window):
        for key, value in top_level(payload).items():
            result.setdefault(key, []).append({"timestamp": stamp, "step": row_step,
                                               "value": value})
    return result


TRACE_ORDER = {
    "step_asc": "step ASC, timestamp ASC, id ASC",
    "step_desc": "step DESC, timestamp DESC, id DESC",
    "request_time_asc": "timestamp ASC, id ASC",
    "request_time_desc": "timestamp DESC, id DESC",
}


def traces(conn: sqlite3.Connection, run: str | None, run_id: str | None, search: str | None,
           sort: str | None, limit: int | None, offset: int,
           step: int | None) -> list[dict[str, Any]]:
    found = identity(conn, "traces", run, run_id)
    if found is None:
        return []
    where, params = [f"{found[0]} = ?"], [found[1]]
    if step is not None:
        where.append("step = ?")
        params.append(step)
    needle = (search or "").strip().lower()
    if needle:
        where.append("search_text LIKE ?")
        params.append(f"%{needle}%")
    has_spans = "spans" in columns(conn, "traces")
    sql = (f"SELECT id, key, trace_index, run_name, run_id, step, timestamp, messages, metadata"
           f"{', spans' if has_spans else ''} FROM traces WHERE {' AND '.join(where)} "
           f"ORDER BY {TRACE_ORDER.get(sort or '', TRACE_ORDER['request_time_desc'])}")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    if offset > 0:
        sql += (" LIMIT -1" if limit is None else "") + " OFFSET ?"
        params.append(offset)
    out = []
    for row in storage.read(conn, sql, tuple(params)):
        out.append({"id": row[0], "key": row[1], "index": row[2], "run": row[3],
                    "run_id": row[4], "step": row[5], "timestamp": row[6],
                    "messages": _json_value(row[7], []), "metadata": _json_value(row[8], {}),
                    "spans": _json_value(row[9], []) if has_spans else []})
    return out


def _json_value(payload: Any, empty: Any) -> Any:
    """A stored JSON column of any shape (traces keep lists), top-level NaN strings as floats."""
    try:
        value = orjson.loads(payload) if payload is not None else empty
    except (orjson.JSONDecodeError, TypeError):
        return empty
    if isinstance(value, dict):
        return {k: NON_FINITE.get(v, v) if isinstance(v, str) else v for k, v in value.items()}
    return value


def trace_steps(conn: sqlite3.Connection, run: str | None, run_id: str | None) -> dict[str, Any]:
    found = identity(conn, "traces", run, run_id)
    if found is None:
        return {"total": 0, "steps": []}
    steps = [{"step": step, "count": count} for step, count in storage.read(
        conn, f"SELECT step, COUNT(*) FROM traces WHERE {found[0]} = ? GROUP BY step "
              "ORDER BY step ASC", (found[1],))]
    return {"total": sum(item["count"] for item in steps), "steps": steps}


def tab_flags(conn: sqlite3.Connection) -> dict[str, bool]:
    """Which kinds of data the project holds, by trackio's own probes (one row each)."""
    tables = storage.table_names(conn)

    def exists(table: str, where: str = "", params: tuple = ()) -> bool:
        if table not in tables:
            return False
        sql = f"SELECT 1 FROM {table}{' WHERE ' + where if where else ''} LIMIT 1"
        return bool(storage.read(conn, sql, params))

    text = "CAST(metrics AS TEXT)"
    media_globs = tuple(f'*"_type":"{kind}"*' for kind in MEDIA_TYPES)
    return {
        "metrics": exists("metrics", f"{text} GLOB '*:[0-9]*' OR {text} GLOB '*:-[0-9]*' OR "
                                     f"{text} GLOB ?", ('*"_type":"trackio.histogram"*',)),
        "system": exists("system_metrics"),
        "traces": exists("traces"),
        "media": exists("metrics", " OR ".join([f"{text} GLOB ?"] * len(media_globs)),
                        media_globs),
        "reports": exists("metrics", f"{text} GLOB ?", ('*"_type":"trackio.markdown"*',)),
        "alerts": exists("alerts"),
        "artifacts": exists("artifact_versions"),
    }
