"""Run a user's `query_project` statement in a child process that can be stopped for real. No Flask.

A statement can spend unbounded time inside one SQLite function call (`printf('%.*c', …)`),
where no progress handler runs, so the statement runs in its own process (forked from a
forkserver that has this module loaded: ~10 ms), which the parent kills at the wall-clock
deadline. The child lowers its own priority (below the server's), and limits
itself: CPU seconds (RLIMIT_CPU), address space (RLIMIT_AS), SQLite's heap (hard_heap_limit,
temporary tables and sorts in memory) and file writes (RLIMIT_FSIZE 0: nothing can spill to
disk). The answer is serialized in the child and capped in bytes as they go on the wire.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import sqlite3
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from . import storage

PREFIXES = ("select", "with", "pragma")
NICENESS = 10
READ_ONLY_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info",
                               "index_xinfo"})
READ_ONLY_VALUE_PRAGMAS = frozenset({"user_version"})
# Deny by default: SQLite's own pure functions only. Left out on purpose: fts3_tokenizer (hands
# out a pointer and can register a tokenizer), load_extension, sqlite_log, and the FTS and
# R-Tree helpers that only make sense on tables this schema does not have.
ALLOWED_FUNCTIONS = frozenset("""
abs acos acosh asin asinh atan atan2 atanh avg ceil ceiling changes char coalesce concat
concat_ws cos cosh count cume_dist current_date current_time current_timestamp date datetime
degrees dense_rank exp first_value floor format glob group_concat hex ifnull iif instr json
json_array json_array_length json_each json_error_position json_extract json_group_array
json_group_object json_insert json_object json_patch json_pretty json_quote json_remove
json_replace json_set json_tree json_type json_valid julianday lag last_insert_rowid last_value
lead length like likelihood likely ln log log10 log2 lower ltrim max min mod nth_value ntile
nullif octet_length percent_rank pi pow power printf quote radians random randomblob rank
replace round row_number rtrim sign sin sinh soundex sqlite_source_id sqlite_version sqrt
strftime string_agg substr substring subtype sum tan tanh time timediff total total_changes
trim trunc typeof unhex unicode unixepoch unlikely upper zeroblob -> ->>
""".split())


class QueryError(ValueError):
    """A statement that is refused, fails or exceeds a limit; the message says why."""


@dataclass(frozen=True)
class Limits:
    """What one statement may use."""

    wall_s: float = 5.0
    cpu_s: int = 5
    memory_bytes: int = 256 * 2**20  # address space on top of what the child starts with
    heap_bytes: int = 96 * 2**20  # SQLite's own allocations (sorts, temp tables)
    max_rows: int = 10_000
    max_bytes: int = 16 * 2**20  # the serialized answer
    max_value_bytes: int = 4 * 2**20


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def run(path: Path, project: str, query: str, limits: Limits) -> bytes:
    """The JSON answer (`{project, query, columns, rows, row_count}`) of one read-only
    statement, serialized; QueryError when refused, failing or over a limit."""
    statement = query.strip().rstrip(";").strip()
    if not statement:
        raise QueryError("Query cannot be empty.")
    if not statement.lower().startswith(PREFIXES):
        raise QueryError("Only read-only SELECT, WITH, and safe PRAGMA queries are supported.")
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(str(path), project, statement, limits, sender),
                            name="trackio-query", daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(limits.wall_s):
            raise QueryError(f"Query took longer than {limits.wall_s:g} s and was stopped. "
                             "Refine the query or add a LIMIT clause.")
        try:
            message = receiver.recv_bytes(limits.max_bytes + 4096)
        except (EOFError, OSError):
            raise QueryError(_death(child, limits)) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    kind, body = message[:1], message[1:]
    if kind == b"O":
        return body
    if kind == b"B":
        raise storage.StorageBusy(body.decode())
    raise QueryError(body.decode())


def _death(child: Any, limits: Limits) -> str:
    """Why a child ended without answering (it hit one of its own limits)."""
    child.join(1)
    if child.exitcode == -signal.SIGXCPU or child.exitcode == -signal.SIGKILL:
        return (f"Query used more than {limits.cpu_s} s of CPU and was stopped. "
                "Refine the query or add a LIMIT clause.")
    return "Query used more memory than allowed and was stopped. Select fewer or smaller values."


def _limit_self(limits: Limits) -> None:
    """Lowest priority, CPU seconds, address space, no file writes: set before any user SQL."""
    # Below the server, not starved: at SCHED_IDLE a trivial statement never ran on a busy
    # machine; at nice 10 it gets about a tenth of a normal process's share.
    os.nice(NICENESS)
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, never kills
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    with open("/proc/self/statm") as handle:
        mapped = int(handle.read().split()[0]) * resource.getpagesize()
    ceiling = mapped + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def _child(path: str, project: str, statement: str, limits: Limits, out: Connection) -> None:
    try:
        # Opened first: a WAL reader may need to create or grow the -shm file, which the
        # no-file-writes limit would then refuse.
        conn = storage.open_readonly(Path(path))
        _limit_self(limits)
        message = b"O" + answer(conn, project, statement, limits)
    except QueryError as exc:
        message = b"E" + str(exc).encode()
    except storage.StorageBusy as exc:
        message = b"B" + str(exc).encode()
    except storage.ProjectNotFound:
        message = b"E" + f"Project '{project}' not found.".encode()
    except MemoryError:
        message = (b"E" + b"Query used more memory than allowed and was stopped. "
                   b"Select fewer or smaller values.")
    except (storage.UnreadableDatabase, sqlite3.Error) as exc:
        message = b"E" + str(exc).encode()
    out.send_bytes(message)
    out.close()


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None,
               _source: str | None) -> int:
    """Reads, allowed functions and a few read-only PRAGMAs; everything else is denied."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_OK if (arg2 or "").lower() in ALLOWED_FUNCTIONS \
            else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in READ_ONLY_PRAGMAS or (name in READ_ONLY_VALUE_PRAGMAS and arg2 is None):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _value(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    return value


def answer(conn: sqlite3.Connection, project: str, statement: str, limits: Limits) -> bytes:
    """Run the statement over a read-only connection (closed here) and serialize the answer
    within limits."""
    deadline = time.monotonic() + limits.wall_s
    try:
        conn.execute(f"PRAGMA hard_heap_limit = {int(limits.heap_bytes)}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(_authorize)
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            cursor = conn.execute(statement)
            names = [column[0] for column in cursor.description or []]
            head = orjson.dumps({"project": project, "query": statement, "columns": names})
            body = bytearray(head[:-1] + b',"rows":[')
            count = 0
            for row in cursor:
                if count == limits.max_rows:
                    raise QueryError(f"Query returned more than {limits.max_rows} rows. "
                                     "Refine the query or add a LIMIT clause.")
                record: dict[str, Any] = {}
                for name, value in zip(names, row, strict=True):
                    record.setdefault(name, _value(value))  # a repeated name keeps the first
                chunk = orjson.dumps(record, default=str)
                if len(body) + len(chunk) + 64 > limits.max_bytes:
                    raise QueryError(f"Query result is larger than {limits.max_bytes // 2**20} "
                                     "MB as JSON. Select fewer columns or rows.")
                if count:
                    body += b","
                body += chunk
                count += 1
            body += b'],"row_count":' + str(count).encode() + b"}"
        except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:
            raise QueryError(str(exc)) from None  # e.g. "You can only execute one statement…"
        except sqlite3.OperationalError as exc:
            if time.monotonic() > deadline:
                raise QueryError(f"Query took longer than {limits.wall_s:g} s and was stopped. "
                                 "Refine the query or add a LIMIT clause.") from None
            if storage.sqlite_problem(exc) == "busy":
                raise storage.StorageBusy(str(exc)) from exc
            if "out of memory" in str(exc).lower():
                raise MemoryError from None
            raise QueryError(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise QueryError(str(exc)) from None
    finally:
        conn.close()
    return bytes(body)
