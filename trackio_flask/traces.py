"""trackio.Trace records for the Traces page: a per-project index caught up by rowid, summaries
(status, latency, tokens, cost, first user message), the conversation with tool calls paired with
their results, and the span tree laid out as a waterfall. No Flask here.

Trackio stores traces in their own table (since 0.26): one row per logged Trace with its
`messages`, `metadata` and `spans` as JSON. The index keeps a small summary per trace (~300 bytes)
and reads only rows added since the last catch-up; a trace's whole record is read by id when it is
shown. Everything in a trace is text logged by anyone: templates escape it, nothing here trusts it.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import storage
from .timestamps import parse as parse_timestamp

PAGE_SIZE = 50
STATUSES = ("success", "error", "unknown")
SORTS = ("newest", "oldest", "step_desc", "step_asc")
MAX_TEXT = 200  # characters of a search text
PREVIEW_CHARS = 300  # characters of the first user message kept in the index
MAX_VALUE_CHARS = 20_000  # characters of one span input/output/message shown (the rest cut)
# Characters of logged values one trace page shows per section (spans, conversation, metadata):
# a trace of any size costs a page of a few MB at most.
SECTION_CHARS = 1_000_000
MAX_LABEL_CHARS = 200  # a name, role, model, id or status shown on one line
MAX_SPANS = 2000  # spans of one trace drawn in the tree
MAX_NESTING = 40  # tree levels drawn nested; deeper spans are listed under the 40th level
MAX_MESSAGES = 1000  # messages of one trace shown
MAX_TOOL_CALLS = 1000  # tool calls of one trace shown
MAX_METADATA_KEYS = 200
CHUNK = 5000
ERROR_STATUSES = frozenset({"error", "failed"})
IMAGE_TYPES = frozenset({"image", "input_image", "image_url"})  # content parts shown as [image]


def _number(value: Any) -> float | None:
    """A finite number from a logged value (numbers or numeric text), else None."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _first(*values: Any) -> float | None:
    for value in values:
        number = _number(value)
        if number is not None:
            return number
    return None


def _stamp(value: Any) -> float | None:
    """Seconds since the epoch of an ISO time a span carries, None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    seconds = parse_timestamp(value)
    return seconds if seconds == seconds else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def span_start(span: dict[str, Any]) -> float | None:
    return _stamp(span.get("start_time") or span.get("startTime"))


def span_duration_ms(span: dict[str, Any]) -> float | None:
    """The span's duration: `duration_ms` when given, else end minus start."""
    explicit = _first(span.get("duration_ms"), span.get("durationMs"))
    if explicit is not None:
        return max(0.0, explicit)
    start, end = span_start(span), _stamp(span.get("end_time") or span.get("endTime"))
    if start is None or end is None:
        return None
    return max(0.0, (end - start) * 1000)


@dataclass(frozen=True)
class Usage:
    input: float | None
    output: float | None
    total: float | None


def span_usage(span: dict[str, Any]) -> Usage:
    """Token counts under OpenAI's or Anthropic's names; total = input + output when not given."""
    usage = _dict(span.get("usage"))
    given_in = _first(usage.get("input_tokens"), usage.get("prompt_tokens"),
                      span.get("input_tokens"))
    given_out = _first(usage.get("output_tokens"), usage.get("completion_tokens"),
                       span.get("output_tokens"))
    total = _first(usage.get("total_tokens"), span.get("total_tokens"))
    if total is None and (given_in is not None or given_out is not None):
        total = (given_in or 0) + (given_out or 0)
    return Usage(given_in, given_out, total)


def span_cost(span: dict[str, Any]) -> float | None:
    return _first(span.get("cost_usd"), span.get("costUsd"))


def _is_error(span: dict[str, Any]) -> bool:
    return str(span.get("status") or "").lower() in ERROR_STATUSES or bool(span.get("error"))


def _parsed(value: Any) -> Any:
    """Tool-call arguments and tool results are often JSON text: show them parsed when they are."""
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def message_tool_spans(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Tool operations from the messages alone (a trace logged without spans): each tool call
    with the result of the tool message that answers it."""
    results = _tool_results(messages)
    spans = []
    for index, message in enumerate(messages):
        for number, call in enumerate(_tool_calls(message)):
            call_id = str(call.get("id") or f"message-tool-{index}-{number}")
            function = _dict(call.get("function")) or call
            result = results.get(call_id)
            spans.append({"id": call_id, "name": str(function.get("name") or "tool"),
                          "kind": "tool", "input": _parsed(function.get("arguments")),
                          "output": _parsed(result.get("content")) if result else None,
                          "status": "error" if result and _result_failed(result) else None})
    return spans


def _result_failed(result: dict[str, Any]) -> bool:
    return result.get("is_error") is True or bool(result.get("error")) \
        or str(result.get("status") or "").lower() in ERROR_STATUSES


def _tool_calls(message: Any) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        return []
    calls = message.get("tool_calls") or message.get("toolCalls") or []
    calls = [call for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []
    if isinstance(message.get("function_call"), dict):
        calls.append({"function": message["function_call"]})
    return calls


def _tool_results(messages: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """The first tool message answering each tool call id."""
    found: dict[str, dict[str, Any]] = {}
    for message in messages:
        if isinstance(message, dict) and str(message.get("role") or "").lower() == "tool":
            call_id = message.get("tool_call_id") or message.get("toolCallId")
            if call_id is not None:
                found.setdefault(str(call_id), message)
    return found


def execution_spans(spans: Any, messages: Any) -> list[dict[str, Any]]:
    """The spans a trace logged, or the tool operations its messages describe."""
    listed = [span for span in spans if isinstance(span, dict)] if isinstance(spans, list) else []
    if listed:
        return listed
    return message_tool_spans(messages if isinstance(messages, list) else [])


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text") if isinstance(part.get("text"), str) else part.get(
                    "content")
                if isinstance(text, str):
                    parts.append(text)
                elif part.get("_type") == "trackio.image" or part.get("type") in IMAGE_TYPES:
                    parts.append("[image]")
        return " ".join(parts)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return content["text"]
    return ""


def first_of_role(messages: Any, role: str) -> str:
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict) and message.get("role") == role:
            return content_text(message.get("content"))
    return ""


@dataclass(frozen=True)
class Summary:
    """What the list shows of a trace."""

    status: str  # success, error, or "" when nothing says
    latency_ms: float | None
    tokens: float | None
    cost_usd: float | None
    spans: int


def summarize(spans: list[dict[str, Any]], metadata: dict[str, Any]) -> Summary:
    """Trace totals from its spans: latency from the earliest start to the latest end (else the
    longest span, else metadata), tokens and cost summed, error if any span failed."""
    starts, ends, durations = [], [], []
    cost = tokens = 0.0
    has_cost = has_tokens = failed = False
    for span in spans:
        start, end = span_start(span), _stamp(span.get("end_time") or span.get("endTime"))
        if start is not None:
            starts.append(start)
        if end is not None:
            ends.append(end)
        duration = span_duration_ms(span)
        if duration is not None:
            durations.append(duration)
        spent = span_cost(span)
        if spent is not None:
            cost, has_cost = cost + spent, True
        usage = span_usage(span)
        if usage.total is not None:
            tokens, has_tokens = tokens + usage.total, True
        failed = failed or _is_error(span)
    if starts and ends:
        latency: float | None = max(0.0, (max(ends) - min(starts)) * 1000)
    elif durations:
        latency = max(durations)
    else:
        latency = _first(metadata.get("duration_ms"), metadata.get("latency_ms"))
    status = metadata.get("status") if isinstance(metadata.get("status"), str) else ""
    if failed:
        status = "error"
    elif not status and spans and all(str(s.get("status") or "").lower() == "success"
                                       for s in spans):
        status = "success"
    return Summary(status, latency, tokens if has_tokens else None,
                   cost if has_cost else _first(metadata.get("cost_usd")), len(spans))


def status_class(status: str) -> str:
    """The filter bucket of a status: success, error or unknown."""
    lowered = status.lower()
    if lowered in ERROR_STATUSES:
        return "error"
    return "success" if lowered == "success" else "unknown"


@dataclass(frozen=True)
class Entry:
    """One trace in the index: where it is and what the list shows."""

    rowid: int
    id: str
    run: str  # run key (run_id, or run_name in files without ids)
    run_name: str
    step: float
    time: float
    key: str
    summary: Summary
    request: str  # the first user message, cut to PREVIEW_CHARS

    @property
    def status_class(self) -> str:
        return status_class(self.summary.status)


def _json(payload: Any, empty: Any) -> Any:
    if payload is None:
        return empty
    try:
        value = orjson.loads(payload)
    except (orjson.JSONDecodeError, TypeError):
        return empty
    return value if isinstance(value, type(empty)) else empty


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _step(value: Any) -> float:
    return float(value) if type(value) in (int, float) else float("nan")


@dataclass
class TraceIndex:
    """One project's traces in rowid order, caught up by rowid."""

    inode: int
    version: str = ""
    cursor: int = 0
    entries: list[Entry] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)  # trace id -> position in entries
    runs: set[str] = field(default_factory=set)  # run keys that logged a trace

    def fingerprint(self) -> tuple[int, int]:
        """Changes when a trace is added or removed."""
        return (len(self.entries), self.cursor)

    def keys_by_run(self, runs: Iterable[str] | None = None) -> dict[str, list[Entry]]:
        """Entries per logged key (for the media page), in logging order."""
        wanted = None if runs is None else set(runs)
        grouped: dict[str, list[Entry]] = {}
        for entry in self.entries:
            if wanted is None or entry.run in wanted:
                grouped.setdefault(entry.key, []).append(entry)
        return grouped


def _columns(conn: sqlite3.Connection) -> str | None:
    """The SELECT list of a trace in this file's schema (its run key, spans when the table has
    them: older trackio had neither run ids nor spans); None when there is no traces table."""
    columns = {row[1] for row in storage.read(conn, "PRAGMA table_info(traces)")}
    if not columns:
        return None
    run = "run_id" if "run_id" in columns else "run_name"
    spans = "spans" if "spans" in columns else "NULL"
    return f"id, {run}, run_name, step, timestamp, key, messages, metadata, {spans}"


def _time(stamp: Any) -> float:
    return parse_timestamp(stamp) if isinstance(stamp, str) else float("nan")


def _entries(conn: sqlite3.Connection, since: int) -> list[Entry]:
    columns = _columns(conn)
    if columns is None:
        return []
    out = []
    while True:
        rows = storage.read(conn, f"SELECT rowid, {columns} FROM traces WHERE rowid > ? "
                                  "ORDER BY rowid LIMIT ?", (since, CHUNK))
        for rowid, trace_id, run, run_name, step, stamp, key, messages, metadata, spans in rows:
            messages = _json(messages, [])
            meta = _json(metadata, {})
            summary = summarize(execution_spans(_json(spans, []), messages), meta)
            request = first_of_role(messages, "user")[:PREVIEW_CHARS]
            name = _text(run_name)
            out.append(Entry(int(rowid), _text(trace_id), _text(run) or name, label(name),
                             _step(step), _time(stamp), label(key), summary, request))
        if len(rows) < CHUNK:
            return out
        since = int(rows[-1][0])


class TraceIndexStore:
    """Per-process trace indexes, one per project, caught up when the project's version moves."""

    def __init__(self) -> None:
        self._indexes: dict[str, TraceIndex] = {}
        self._lock = threading.Lock()

    def get(self, project: str, path: Path, version: str) -> TraceIndex:
        """The project's trace index as of `version` (its file's current contents)."""
        index = self._indexes.get(project)
        if index is not None and index.version == version:
            return index
        with self._lock:
            index = self._indexes.get(project)
            inode = path.stat().st_ino
            if index is None or index.inode != inode:
                index = TraceIndex(inode)
            if index.version != version:
                index = self._caught_up(path, index)
                index.version = version
            self._indexes[project] = index
            return index

    @staticmethod
    def _caught_up(path: Path, index: TraceIndex) -> TraceIndex:
        conn = storage.open_readonly(path)
        try:
            storage.snapshot(conn)
            if "traces" not in storage.table_names(conn):
                return TraceIndex(index.inode)
            added = _entries(conn, index.cursor)
            count = int(storage.read(conn, "SELECT COUNT(*) FROM traces")[0][0])
            if count != len(index.entries) + len(added):
                # Rows were deleted (a run deleted or renamed): read them all again.
                index, added = TraceIndex(index.inode), _entries(conn, 0)
            fresh = TraceIndex(index.inode, index.version, index.cursor, list(index.entries),
                               dict(index.by_id), set(index.runs))
            for entry in added:
                fresh.by_id.setdefault(entry.id, len(fresh.entries))
                fresh.entries.append(entry)
                fresh.runs.add(entry.run)
                fresh.cursor = entry.rowid
            return fresh
        finally:
            conn.rollback()
            conn.close()


@dataclass(frozen=True)
class TraceQuery:
    """What the Traces page's URL asks for."""

    runs: tuple[str, ...] = ()  # run keys; empty = every run
    status: str = ""  # one of STATUSES, or "" for all
    q: str = ""
    sort: str = "newest"
    page: int = 0


def matching_rowids(path: Path, text: str) -> set[int]:
    """Rowids of traces whose search text (trackio's: messages, metadata and span names,
    lower-cased) contains `text`."""
    needle = text.strip().lower()
    conn = storage.open_readonly(path)
    try:
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return {row[0] for row in storage.read(
            conn, "SELECT rowid FROM traces WHERE search_text LIKE ? ESCAPE '\\'",
            (f"%{escaped}%",))}
    finally:
        conn.close()


def _order(entry: Entry, sort: str) -> tuple:
    time = entry.time if entry.time == entry.time else -math.inf
    step = entry.step if entry.step == entry.step else -math.inf
    if sort.startswith("step"):
        return (step, time, entry.rowid)
    return (time, entry.rowid)


def last_page(count: int) -> int:
    """The 0-based number of the last page that `count` traces fill."""
    return max(0, count - 1) // PAGE_SIZE


def select(index: TraceIndex, query: TraceQuery, text_hits: set[int] | None
           ) -> tuple[list[Entry], int]:
    """The page of entries the query asks for (the last one if it asks past it), and how many
    match in all."""
    wanted_runs = set(query.runs)
    chosen = [entry for entry in index.entries
              if (not wanted_runs or entry.run in wanted_runs)
              and (not query.status or entry.status_class == query.status)
              and (text_hits is None or entry.rowid in text_hits)]
    descending = query.sort in ("newest", "step_desc")
    chosen.sort(key=lambda entry: _order(entry, query.sort), reverse=descending)
    start = min(query.page, last_page(len(chosen))) * PAGE_SIZE
    return chosen[start:start + PAGE_SIZE], len(chosen)


@dataclass(frozen=True)
class Record:
    """One trace as stored."""

    id: str
    run: str
    run_name: str
    step: float
    time: float
    key: str
    messages: list[Any]
    metadata: dict[str, Any]
    spans: list[Any]


def read_record(path: Path, trace_id: str) -> Record | None:
    """One trace by id, or None when there is no such trace."""
    conn = storage.open_readonly(path)
    try:
        columns = _columns(conn)
        if columns is None:
            return None
        rows = storage.read(conn, f"SELECT {columns} FROM traces WHERE id = ?", (trace_id,))
    finally:
        conn.close()
    if not rows:
        return None
    trace_id, run, run_name, step, stamp, key, messages, metadata, spans = rows[0]
    name = _text(run_name)
    return Record(_text(trace_id), _text(run) or name, name, _step(step), _time(stamp),
                  _text(key), _json(messages, []), _json(metadata, {}), _json(spans, []))


def pretty(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A logged value as text: strings as they are, anything else as indented JSON, cut at
    `limit` characters."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                                default=str).decode()
        except TypeError:
            text = str(value)
    if len(text) > limit:
        return text[:limit] + f"\n… ({len(text) - limit} more characters)"
    return text


def label(value: Any) -> str:
    """A short logged string (a name, role, model, id) as one line of at most MAX_LABEL_CHARS."""
    text = _text(value)
    return text if len(text) <= MAX_LABEL_CHARS else text[:MAX_LABEL_CHARS - 1] + "…"


class TextBudget:
    """Characters of logged values a page section may still show: each value takes what it
    shows, and once the budget is spent values show only how long they are."""

    def __init__(self, chars: int = SECTION_CHARS) -> None:
        self.left = chars

    def text(self, value: Any) -> str:
        shown = pretty(value, min(MAX_VALUE_CHARS, self.left))
        self.left = max(0, self.left - len(shown))
        return shown


def metadata_items(metadata: dict[str, Any], budget: TextBudget) -> list[tuple[str, str]]:
    """(key, value as text) of a trace's metadata, the first MAX_METADATA_KEYS keys."""
    return [(label(key), budget.text(value))
            for key, value in list(metadata.items())[:MAX_METADATA_KEYS]]


def images_in(value: Any, limit: int = 8) -> list[dict[str, Any]]:
    """trackio.Image dicts (local files) inside a logged value, at most `limit`."""
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack and len(found) < limit:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("_type") == "trackio.image" and isinstance(item.get("file_path"), str):
                found.append(item)
            else:
                stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


@dataclass(frozen=True)
class ToolCall:
    """A tool call an assistant made, paired with the tool message that answered it."""

    id: str
    name: str
    arguments: str
    result: str | None  # None when no tool message answers it
    failed: bool


@dataclass(frozen=True)
class Message:
    role: str
    text: str  # the content as text ("" when it has none)
    images: tuple[dict[str, Any], ...]
    tool_calls: tuple[ToolCall, ...]
    answers: str  # for a tool message already shown under its call: that call's id


def conversation(messages: list[Any], budget: TextBudget | None = None) -> list[Message]:
    """Messages in order; each tool call carries its result, and tool messages that answered a
    call are marked so the page can show them under the call instead of twice."""
    budget = budget or TextBudget()
    results = _tool_results(messages)
    called: set[str] = set()
    calls_left = MAX_TOOL_CALLS
    out = []
    for message in messages[:MAX_MESSAGES]:
        if not isinstance(message, dict):
            out.append(Message("message", budget.text(message), (), (), ""))
            continue
        calls = []
        for number, call in enumerate(_tool_calls(message)[:calls_left]):
            function = _dict(call.get("function")) or call
            call_id = str(call.get("id") or f"call-{len(out)}-{number}")
            result = results.get(call_id)
            if result is not None:
                called.add(call_id)
            calls.append(ToolCall(label(call_id), label(function.get("name")) or "tool",
                                  budget.text(_parsed(function.get("arguments"))),
                                  None if result is None else budget.text(
                                      _parsed(result.get("content"))),
                                  result is not None and _result_failed(result)))
        calls_left -= len(calls)
        content = message.get("content")
        text = content if isinstance(content, str) else content_text(content) if isinstance(
            content, list) else pretty(content)
        answered = str(message.get("tool_call_id") or message.get("toolCallId") or "")
        role = label(message.get("role")) or "message"
        out.append(Message(role, budget.text(text), tuple(images_in(content)), tuple(calls),
                           answered if role.lower() == "tool" else ""))
    # A tool message answers a shown call only if that call came before it.
    return [Message(m.role, m.text, m.images, m.tool_calls,
                    label(m.answers) if m.answers in called else "") for m in out]


SPAN_FIELDS = ("error", "input", "output", "metadata")  # shown under a span, in this order


@dataclass(frozen=True)
class SpanNode:
    """One span in the tree, with its place on the trace's time line (percent of the whole)."""

    name: str
    kind: str
    model: str
    status: str
    started: str  # the start time as logged
    fields: dict[str, str]  # SPAN_FIELDS present, as text
    depth: int
    duration_ms: float | None
    usage: Usage
    cost: float | None
    failed: bool
    offset_pct: float | None  # where the bar starts; None when the span has no time
    width_pct: float | None
    children: list[SpanNode] = field(default_factory=list)


def span_tree(spans: list[dict[str, Any]], budget: TextBudget | None = None
              ) -> tuple[list[SpanNode], float | None]:
    """Spans nested under their parents (by `parent_id`; unknown parents make roots), children by
    start time then logging order, each with its waterfall bar; and the trace's span of time in ms.
    A span whose parent chain loops is drawn once, as a root. Spans deeper than MAX_NESTING are
    listed, in order, under their ancestor at that level (a page nests only so deep)."""
    budget = budget or TextBudget()
    spans = spans[:MAX_SPANS]
    starts = [span_start(span) for span in spans]
    ends = []
    for span, start in zip(spans, starts, strict=True):
        duration = span_duration_ms(span)
        if start is not None and duration is not None:
            ends.append(start + duration / 1000)
    known = [start for start in starts if start is not None]
    origin = min(known) if known else None
    total_ms = (max(ends) - origin) * 1000 if origin is not None and ends else None
    first_by_id: dict[str, int] = {}
    for position, span in enumerate(spans):
        first_by_id.setdefault(str(span.get("id") or f"span-{position + 1}"), position)
    children: dict[int, list[int]] = {}
    roots = []
    for position, span in enumerate(spans):
        parent = span.get("parent_id", span.get("parentId"))
        parent_at = first_by_id.get(str(parent)) if parent is not None else None
        if parent_at is None or parent_at == position:
            roots.append(position)
        else:
            children.setdefault(parent_at, []).append(position)

    def order(position: int) -> tuple:
        start = starts[position]
        return (start if start is not None else math.inf, position)

    def node(position: int, depth: int) -> SpanNode:
        span = spans[position]
        start, duration = starts[position], span_duration_ms(span)
        offset = width = None
        if origin is not None and start is not None and total_ms:
            offset = min(100.0, (start - origin) * 1000 / total_ms * 100)
            width = min(100.0 - offset, (duration or 0) / total_ms * 100)
        fields = {name: budget.text(span.get(name)) for name in SPAN_FIELDS}
        return SpanNode(label(span.get("name")) or label(span.get("kind")) or f"Span {position + 1}",
                        (label(span.get("kind")) or "span").lower(), label(span.get("model")),
                        label(span.get("status")),
                        label(span.get("start_time") or span.get("startTime")),
                        {name: text for name, text in fields.items() if text}, depth, duration,
                        span_usage(span), span_cost(span), _is_error(span), offset, width)

    seen: set[int] = set()
    tree: list[SpanNode] = []
    # Depth first, in drawing order, without recursion: (position, depth, list it goes in).
    pending = [(position, 0, tree) for position in reversed(sorted(roots, key=order))]
    # Spans only reachable through a loop of parents come last, as roots.
    loops = iter(range(len(spans)))
    while True:
        if not pending:
            position = next((p for p in loops if p not in seen), None)
            if position is None:
                break
            pending.append((position, 0, tree))
        position, depth, holder = pending.pop()
        if position in seen:
            continue
        seen.add(position)
        drawn = node(position, depth)
        holder.append(drawn)
        below = drawn.children if depth < MAX_NESTING else holder
        pending.extend((child, depth + 1, below)
                       for child in reversed(sorted(children.get(position, []), key=order)))
    return tree, total_ms


def format_duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1:
        return f"{round(ms * 1000)}µs"
    if ms < 1000:
        return f"{round(ms)}ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f}s" if ms < 10_000 else f"{ms / 1000:.1f}s"
    return f"{int(ms // 60_000)}m {round(ms % 60_000 / 1000)}s"


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "—"
    if cost == 0:
        return "$0"
    return f"${cost:.4f}" if abs(cost) < 0.01 else f"${cost:.2f}"


def format_tokens(tokens: float | None) -> str:
    return "—" if tokens is None else f"{round(tokens):,}"
