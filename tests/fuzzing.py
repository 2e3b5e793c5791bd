"""The fuzz suite's parts: a hostile data dir, one request strategy per route and API name, and
the check every answer must pass (no 5xx, no error or traceback logged, no hang).

Used by tests/test_fuzz.py (bounded, in `make test`) and tests/fuzz_run.py (`make fuzz`).
"""

from __future__ import annotations

import faulthandler
import hashlib
import hmac
import html
import importlib
import inspect
import io
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

from builders import ProjectDB, stamp
from flask import Flask
from hypothesis import strategies as st

from trackio_flask import create_app
from trackio_flask.writer import ARTIFACT_SCHEMA, TRACES_SCHEMA

TOKEN = "fuzz-write-token"
# A request slower than this is reported as a hang (ReDoS and friends); not a benchmark, so the
# bound is far above any honest request on a busy machine.
HANG_S = float(os.environ.get("FUZZ_HANG_S", "10"))
# Where /api/<name> finds its names; discovered at test time so new names are fuzzed too.
API_MODULES = ("trackio_flask.views.api", "trackio_flask.trackio_api")
API_TABLES = ("READS", "WRITES", "NOT_SERVED", "ENDPOINTS", "API", "API_NAMES", "HANDLERS")
# 501 Not Implemented is the app's deliberate answer for Trackio calls it does not serve (say,
# Hub-only ones); still a failure if anything is logged as an error alongside it.
ALLOWED_5XX = {501}
OTHER_METHODS = ("HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE", "FOO")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


# ---- hostile values ---------------------------------------------------------------------------

def nested(depth: int, leaf: Any = 1, key: str | None = "a") -> Any:
    """`depth` levels of objects (or lists when key is None) around a leaf."""
    value = leaf
    for _ in range(depth):
        value = [value] if key is None else {key: value}
    return value


DEEP_DICT = nested(300)
DEEP_LIST = nested(300, key=None)
HUGE_LIST = [0] * 200_000
WIDE_DICT = {f"m{i}": i for i in range(5_000)}
TEXT = [
    "", " ", "p", "alpha", "../x", "..", "/", "\\", "%2e%2e%2f", "%00", "\x00", "a\x00b", "\x7f",
    "a" * 129, "a" * 5_000, "名前", "🚀", "\u202e", "\ufeff", "\r\n", "<script>alert(1)</script>",
    "'\"", "{{7*7}}", "${x}", "NaN", "null", "true", "[]", "{}", "//evil.example",
    "http://evil.example/", "javascript:alert(1)", "CON", "p.db", "registry-x", " p ",
]
REGEXES = [
    "(.+)+!", "(a*)*b", "(a|a)*b", "(a+)+$", "([a-z]+)*$", "(x+x+)+y", "(.*a){20}", "(\\w+\\s?)+$",
    "[", "\\", "(", ")", "*", "+", "?", "{", "(?P<x>", "(?i", "(?#", "a{99999}", "a{4294967296}",
    "(?=a)*", "\\1", "(a)\\2", "(?<=a+)b", "[\\w-]", "^$", "|", ".*" * 60, "(" * 100, "\x00",
    "(?P<n>a)(?P=n)", "\\p{L}", "\\N{DASH}", "(?x) a # c", "[[:alpha:]]", "(*FAIL)", "a**",
]
NUMBERS = [
    "0", "-0", "1", "-1", "1.5", "1e308", "-1e308", "1e309", "1e-400", "nan", "NaN", "-nan", "inf",
    "-inf", "Infinity", str(2**31), str(2**53 + 1), str(2**63 - 1), str(2**63), str(2**64),
    str(-(2**63) - 1), "9" * 400, "9" * 5_000, "0x10", "1_000", " 2 ", "\u0663", "\u00b2", "3600",
    "3599.999", "0.0001", "100", "101", "1.0", "+1", "", "1e3",
]
JSON_EXTREMES = [
    0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**30, 1e300,
    -1e300, 5e-324, -0.0, 1.5, True, False, None, "", "NaN", "Infinity", "-Infinity", [], {},
]
STEPS = [
    0, 1, -1, 2**31, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**30,
    1e300, -1e300, 1e20, 1.5, -0.0, 5e-324, "1", "NaN", True, None, [], {},
]
TIMESTAMPS = [
    None, "2026-01-01T00:00:00+00:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999", "0001-01-01", "2026-01-01T00:00:00Z", "2026-01-01 00:00:00",
    "1970-01-01T00:00:00", "2026-01-01T00:00:00+23:59", "2026-01-01T24:00:00", "2026-13-01", "",
    "now", "20260101T000000", "2026-W01-1", "2026-01-01T00:00:00.123456789", 0, 1e300, [],
]
METRIC_KEYS = [
    "loss", "train/loss", "", "/", "a//b", "/lead", "trail/", "../x", "x" * 1_000, "\x00", "step",
    "timestamp", "time", "project", "run", "metrics", "名前/損失", "<img src=x onerror=alert(1)>",
    "a/b/c/d/e", "_type", "NaN",
]
METRIC_VALUES = [
    *JSON_EXTREMES, "nan", "x" * 10_000, [1, 2], [[1]], {"nested": {"deep": 1}},
    {"_type": "trackio.image", "file_path": "../../etc/passwd"}, {"_type": 5}, DEEP_DICT, DEEP_LIST,
]

# Raw bodies the JSON encoder never writes: NaN literals, bad UTF-8, nesting past any limit...
RAW_BODIES = [
    b"", b" ", b"\n", b"NaN", b"Infinity", b"-Infinity", b"[NaN]", b'{"args": [NaN]}',
    b'{"logs": [{"project": "p", "run": "r", "metrics": {"x": NaN}}]}', b"null", b"true", b"0",
    b'"x"', b"1e400", b"-1e400", b"18446744073709551616", b"\xff\xfe\xfd", b'{"project": "\xff"}',
    b'{"project": "\\ud800"}', b"\xef\xbb\xbf{}", b'{"a":', b"[" * 2_000 + b"]" * 2_000,
    b"[" * 100_000, b"{" * 50_000, b"[" + b"0," * 200_000 + b"0]", b"\x00", b'{"args": 1, "args": []}',
    b'{"__proto__": {"x": 1}}', b"project=p&run=alpha", b"--x\r\n\r\n", b"\xfe\xff\x00{\x00}",
]
# Files a query must never be able to create (checked after every request).
OUTSIDE = [Path(tempfile.gettempdir()) / f"trackio-fuzz-{os.getpid()}-{kind}.db"
           for kind in ("attached", "vacuumed")]
SQL = [
    "SELECT * FROM metrics", "SELECT 1; DROP TABLE metrics", "DROP TABLE metrics",
    "DELETE FROM metrics", "UPDATE metrics SET step = 0", "PRAGMA writable_schema = 1",
    f"ATTACH DATABASE '{OUTSIDE[0]}' AS x", f"VACUUM INTO '{OUTSIDE[1]}'",
    "SELECT load_extension('x')", "SELECT readfile('/etc/passwd')", "BEGIN IMMEDIATE",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    # Big, not huge: enough to show a missing size limit without exhausting a shared machine.
    "SELECT randomblob(50000000)", "SELECT zeroblob(2147483647)",
    "SELECT printf('%.*c', 50000000, 'x')", "SELECT * FROM metrics a, metrics b, metrics c",
    "", ";", "SELECT", "SELECT 'é\x00'", "SELECT 1e999", "SELECT 9223372036854775807 + 1",
]
# Heavy families (issue 18): time inside one SQL function, answers that grow 6x as JSON, sorts
# bigger than memory, self-joins, functions outside the allow-list. Each must come back within
# the fuzz app's QUERY_TIMEOUT_S (the per-request budget), never hold a thread.
HEAVY_SQL = [
    "SELECT length(printf('%.*c', 2147483647, 'x')) AS a, length(printf('%.*c', 2147483647, "
    "'y')) AS b",
    "SELECT zeroblob(4000000) AS z FROM metrics LIMIT 4",
    "SELECT randomblob(50000) AS b FROM metrics a, metrics b ORDER BY random()",
    "SELECT COUNT(*) FROM metrics a, metrics b, metrics c, metrics d, metrics e, metrics f",
    "SELECT fts3_tokenizer('simple')", "SELECT hex(fts3_tokenizer('porter'))",
    "SELECT group_concat(metrics, zeroblob(100000)) FROM metrics a, metrics b",
]
SQL += HEAVY_SQL
# The wall-clock budget of one query_project in the fuzz app (a request past HANG_S fails).
QUERY_BUDGET_S = 1.0
OVERSIZE_BODY = b" " * (16 * 2**20 + 1)  # one byte over the default MAX_BODY_MB
CONTENT_TYPES = [
    None, "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
    "application/json; charset=utf-99", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data", "multipart/form-data; boundary=x", "application/octet-stream", "*/*",
    "text/html", "", "application/json;;;=", "application/x-www-form-urlencoded; charset=utf-16",
]
RAW_QUERIES = [
    "", "&", "%ff=%fe", "a=%", "a=%zz", "=x", "x", ";a=1", "a[]=1&a[]=2", "%00=%00", "&&&=&&",
    "project", "v", "iv=", "c=&sc=&e=", "%c0%ae%c0%ae=1", "+=+", "a=" + "%25" * 500,
]


def printable(max_size: int = 30) -> st.SearchStrategy[str]:
    """Header-safe text (latin-1, no line breaks)."""
    return st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
                   max_size=max_size)


# Now and then: True once in four draws, and shrinking makes it False.
RARELY = st.sampled_from([False, False, False, True])


def mostly(common: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """`common` three times in four; shrinking moves towards it."""
    # Not one_of(common, common, common, rare): one_of drops repeated strategies.
    return RARELY.flatmap(lambda now: rare if now else common)


SELDOM = st.sampled_from([False] * 7 + [True])


def seldom(common: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """`common` seven times in eight: for the outer layers (method, token, encoding), so most
    requests get past them to the code behind."""
    return SELDOM.flatmap(lambda now: rare if now else common)


def pick(values: list | tuple, free: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """One of the hostile samples, or (less often) anything `free` makes."""
    sampled = st.sampled_from(list(values))
    return sampled if free is None else mostly(sampled, free)


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                         st.sampled_from(JSON_EXTREMES))
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda kids: st.lists(kids, max_size=5) | st.dictionaries(
        st.text(max_size=10), kids, max_size=5), max_leaves=20)
# What a body may carry where a value goes: JSON, plus the huge and the deep.
ANY_VALUE = st.one_of(JSON_VALUES, st.sampled_from([DEEP_DICT, DEEP_LIST, HUGE_LIST, WIDE_DICT]),
                      st.floats())


# ---- the data dir ------------------------------------------------------------------------------

# run key → run name, in project `p`: what a hostile (but schema-abiding) client could log.
RUNS = {
    "id-alpha": "alpha",
    "id-beta": "beta",
    "id-redos": "a" * 40,  # backtracking bait for nested-quantifier filters
    "id-html": "<script>alert(1)</script>",
    "id/with/slash": "run/with/slashes",
    "id-unicode": "名前 🚀 \u202e",
    "../x": "../x",
    "id-dup-1": "dup",
    "id-dup-2": "dup",
    "id-long": "x" * 300,
    "%2e%2e%2f": "%2e%2e%2f",
    "id ? # &": "? # & = +",
}
PROJECTS = ["p", "odd", "old", "empty", "broken", "notrackio", "extreme"]
HOSTILE = "<img src=x onerror=alert(1)>\"'</script>{{7*7}}"
# Trace ids in project p: real ones for `?id=` (hostile ids among them).
TRACE_IDS = ["t-plain", "t-deep", "t-huge", "t-odd", "t-loop", HOSTILE, "../x", "a&b=c#d"]
ARTIFACTS = ["model", "data", HOSTILE.replace("<", "").replace(">", "")[:20]]
REGISTRIES = ["reg", "empty-reg"]


def seed(directory: Path) -> None:
    """Projects as Trackio, older Trackio, a hostile client and a crash could leave them."""
    directory.mkdir(parents=True, exist_ok=True)
    db = ProjectDB(directory / "p.db")
    db.config("alpha", {"lr": 0.1, "_Group": "g1", "<b>": "</script>",
                        "nested": {"x": [1, {"y": None}]}}, run_id="id-alpha")
    db.config("beta", {"lr": "NaN", "_Group": "g2", "deep": nested(50)}, run_id="id-beta")
    db.config("<script>alert(1)</script>", {"_Group": "<script>", "": 1}, run_id="id-html")
    db.log_many("alpha", range(60), lambda s: {
        "train/loss": 1 / (s + 1), "eval/acc": s / 60, "nested": {"deep": {"x": s}},
        "nan": "NaN" if s % 7 == 0 else s, "inf": "Infinity" if s % 5 else "-Infinity",
        "text": "hello", "flag": True, "list": [1, 2],
        "media": {"_type": "trackio.image", "file_path": "../../etc/passwd"}}, run_id="id-alpha")
    db.log_many("beta", range(30), lambda s: {
        "train/loss": 2 / (s + 1), "big": 1e308, "tiny": 5e-324, "neg": -1e308, "int": 2**62},
        run_id="id-beta")
    special = {"id-redos": {"a" * 40: 1.0}, "id-html": {"<img src=x onerror=alert(1)>": 1,
                                                         "x/</script>": 2},
               "id-unicode": {"名前/損失": 1, "": 3, "/": 4, "a//b": 5},
               "../x": {"step": 1, "timestamp": 2, "time": 3, "project": 4},
               "id-long": {"x" * 300: 1}}
    for key, name in RUNS.items():
        if key in ("id-alpha", "id-beta"):
            continue
        metrics = special.get(key, {"train/loss": 0.5})
        db.log_many(name, range(-5, 5), lambda s, m=metrics: {**m, "train/loss": abs(s)},
                    run_id=key)
    for at, cpu in ((0, 10.0), (5, "NaN"), (10, 30.0)):
        db.system("alpha", at, {"cpu/utilization": cpu, "gpu/0/temp": 50, "memory/used_gib": 1.5},
                  run_id="id-alpha")
    db.system("名前 🚀 \u202e", 1, {"名前": 1, "cpu/": "Infinity"}, run_id="id-unicode")
    seed_pages(db.conn, directory)
    db.close()
    seed_extreme(directory)

    # Edge rows a client could get past validation, or a crash could leave: extreme but ISO
    # timestamps, the extreme steps SQLite holds, payloads that are not objects.
    odd = ProjectDB(directory / "odd.db")
    rows = [("9999-12-31T23:59:59-14:00", 2**63 - 1, '{"v": 1}'),
            ("0001-01-01T00:00:00+14:00", -(2**63), '{"v": 2}'),
            ("garbage", 0, '{"v": 3}'), ("2026-01-01T00:00:00", 1, '{"v": 1e308}'),
            (stamp(5), 2, "[1, 2]"), (stamp(6), 3, "not json"), (stamp(7), 4, ""),
            (stamp(8), 5, '{"huge": 123456789012345678901234567890}')]
    for at, step, payload in rows:
        odd.conn.execute("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                         "VALUES ('odd', ?, 'odd', ?, ?)", (at, step, payload))
    odd.conn.execute("INSERT INTO configs (run_id, run_name, config, created_at) "
                     "VALUES ('odd', 'odd', '[1]', '9999-12-31T23:59:59-14:00')")
    odd.conn.execute("INSERT INTO system_metrics (run_id, timestamp, run_name, metrics) "
                     "VALUES ('odd', '0001-01-01T00:00:00+14:00', 'odd', '{\"cpu\": 1}')")
    odd.close()

    old = ProjectDB(directory / "old.db", legacy=True)
    old.config("legacy", {"lr": 1})
    old.log_many("legacy", range(10), lambda s: {"loss": s, "NaN": "NaN"})
    old.system("legacy", 0, {"cpu": 1})
    old.close()
    ProjectDB(directory / "empty.db").close()
    (directory / "broken.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    other = sqlite3.connect(directory / "notrackio.db")
    other.execute("CREATE TABLE unrelated (x)")
    other.close()


# What numpy overflows on: values of both signs near the largest float, several runs of them.
EXTREME = {"big": lambda s, i: 1.7e308, "mix": lambda s, i: 1e308 if s % 2 else -1e308,
           "ramp": lambda s, i: 1e308 * s / 40 * (1 if i else -1),
           "small": lambda s, i: 5e-324 * s, "loss": lambda s, i: 1 / (s + 1)}


def seed_extreme(directory: Path) -> None:
    """Project `extreme`: three runs in two groups logging EXTREME's metrics for 40 steps."""
    db = ProjectDB(directory / "extreme.db")
    for i in range(3):
        db.config(f"r{i}", {"lr": 0.1 * (i % 2), "_Group": f"g{i % 2}"}, run_id=f"id{i}")
        db.log_many(f"r{i}", range(40), lambda s, i=i: {k: f(s, i) for k, f in EXTREME.items()},
                    run_id=f"id{i}")
    db.close()


def seed_pages(conn: sqlite3.Connection, directory: Path) -> None:
    """What the Traces, Artifacts, Files and Registry pages show, as a hostile client of the
    file could leave it in trackio's schema: deep, huge and odd traces, artifacts with odd rows
    and a cycle of runs, saved files with odd names, and a registry."""
    for statement in (*TRACES_SCHEMA, *ARTIFACT_SCHEMA):
        conn.execute(statement)
    deep = [{"id": f"s{i}", "parent_id": f"s{i - 1}" if i else None, "name": f"n{i}"}
            for i in range(1_200)]
    huge = [{"id": f"h{i}", "name": HOSTILE, "input": "x" * 20_000, "output": {HOSTILE: HOSTILE},
             "usage": {"input_tokens": "1e400"}, "cost_usd": "NaN"} for i in range(60)]
    odd = [None, 1, "x", {"id": None, "parent_id": {"x": 1}, "name": ["n"], "kind": 7,
                          "start_time": 5, "duration_ms": "-1", "status": {"a": 1}}]
    loop = [{"id": "a", "parent_id": "b"}, {"id": "b", "parent_id": "a"}, {"id": "c",
                                                                           "parent_id": "c"}]
    talk = [{"role": "user", "content": HOSTILE}, {"role": "assistant", "tool_calls": [
        {"id": HOSTILE, "function": {"name": HOSTILE, "arguments": "{not json"}}]},
        {"role": "tool", "tool_call_id": HOSTILE, "content": nested(200)}, "not a dict", None,
        {"role": ["x"], "content": [{"type": "image_url"}, {"_type": "trackio.image",
                                                             "file_path": "../../etc/passwd"}]}]
    traces = {"t-plain": ([], talk, {}), "t-deep": (deep, [], {"note": HOSTILE}),
              "t-huge": (huge, talk * 50, {HOSTILE: "y" * 30_000}), "t-odd": (odd, [], [1]),
              "t-loop": (loop, talk, {}), HOSTILE: ([], talk, {}), "../x": ([], [], {}),
              "a&b=c#d": ([], [], {})}
    rows = [(trace_id, "id-alpha", stamp(i), "alpha", i, HOSTILE if i % 2 else "agent",
             json.dumps(messages), json.dumps(metadata), HOSTILE.lower(), json.dumps(spans))
            for i, (trace_id, (spans, messages, metadata)) in enumerate(traces.items())]
    rows += [(f"bulk-{i}", "id-beta", stamp(100 + i), "beta", i, "agent",
              json.dumps([{"role": "user", "content": f"q{i}"}]), "{}", f"q{i}", "[]")
             for i in range(120)]
    conn.executemany("INSERT INTO traces (id, run_id, timestamp, run_name, step, key, messages, "
                     "metadata, search_text, spans) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("INSERT INTO traces (id, run_id, timestamp, run_name, step, key, messages, "
                 "metadata, search_text, spans) VALUES ('t-types', x'00', 5, 7, 'x', x'ff', "
                 "x'ff00', 'not json', '', '{')")
    files = [{"path": f"dir/{HOSTILE}/{i}.bin", "digest": f"{i:064x}", "size": i}
             for i in range(450)] + [1, {"path": 5, "size": "big"}, {"path": "r", "ref": HOSTILE}]
    for name, kind in zip(ARTIFACTS, ("model", HOSTILE, "data"), strict=True):
        conn.execute("INSERT INTO artifacts (name, type, description, created_at) VALUES "
                     "(?, ?, ?, '2026')", (name, kind, HOSTILE))
    versions = [(1, 0, files, 1), (1, 1, [{"path": "w", "digest": "0" * 64, "size": 1}], 2),
                (1, "x", files, "big"), (2, 0, {"not": "a list"}, 3), (3, 0, "[", 4)]
    for artifact, number, manifest, size in versions:
        conn.execute("INSERT INTO artifact_versions (artifact_id, version, manifest_digest, "
                     "manifest, metadata, size_bytes, producer_run_id, producer_run_name, "
                     "created_at) VALUES (?, ?, ?, ?, ?, ?, 'id-alpha', 'alpha', '2026')",
                     (artifact, number, f"d-{artifact}-{number}", manifest if isinstance(
                         manifest, str) else json.dumps(manifest), json.dumps({HOSTILE: 1}),
                      size))
    conn.executemany("INSERT INTO artifact_aliases VALUES (?, ?, ?)",
                     [(1, "best", 2), (1, HOSTILE, 1), (2, "x", "not an id")])
    # A cycle (alpha made v0, beta used it and made v1, alpha used v1) and a wide fan-out.
    links = [("id-alpha", "alpha", 1, "output"), ("id-beta", "beta", 1, "input"),
             ("id-beta", "beta", 2, "output"), ("id-alpha", "alpha", 2, "input"),
             (None, HOSTILE, 2, "input"), ("id-html", b"\x00\xff", "x", "input")]
    links += [(f"fan-{i}", f"fan {i}", 2, "input") for i in range(300)]
    conn.executemany("INSERT INTO run_artifact_links (run_id, run_name, artifact_version_id, "
                     "direction, created_at) VALUES (?, ?, ?, ?, '2026')", links)
    saved = directory / "media" / "p" / "files"
    for name in ("notes.txt", "a b.md", f"{HOSTILE.replace('/', '_')}.txt", "deep/er/x.json",
                 "data.bin", ".hidden.env"):
        (saved / name).parent.mkdir(parents=True, exist_ok=True)
        (saved / name).write_bytes(HOSTILE.encode() + b"\xff\x00" if name.endswith(".bin")
                                   else (HOSTILE * 100).encode())
    for i in range(250):
        (saved / f"many/{i:03d}.txt").parent.mkdir(exist_ok=True)
        (saved / f"many/{i:03d}.txt").write_text(str(i))
    registry = sqlite3.connect(directory / "registry-reg.db")
    for statement in REGISTRY_SCHEMA:
        registry.execute(statement)
    registry.execute("INSERT INTO project_metadata VALUES ('registry_created_at', ?), "
                     "('registry_description', ?)", (HOSTILE, HOSTILE))
    registry.execute("INSERT INTO collections (name, type, description, created_at) VALUES "
                     "(?, ?, ?, ?)", (HOSTILE, HOSTILE, HOSTILE, HOSTILE))
    registry.executemany("INSERT INTO collection_links (collection_id, collection_version, "
                         "source_project, source_artifact, source_version, "
                         "source_server_base_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(1, i, "p" if i % 2 else HOSTILE, "model", i % 3,
                           None if i % 2 else "javascript:alert(1)", "2026") for i in range(250)]
                         + [("x", "y", "p", "model", "z", None, "2026")])
    registry.executemany("INSERT INTO registry_events (ts, kind, payload) VALUES (?, ?, ?)",
                         [(HOSTILE, HOSTILE, json.dumps({HOSTILE: i})) for i in range(250)]
                         + [("t", "k", "not json")])
    registry.commit()
    registry.close()
    empty = sqlite3.connect(directory / "registry-empty-reg.db")
    for statement in REGISTRY_SCHEMA:
        empty.execute(statement)
    empty.execute("INSERT INTO project_metadata VALUES ('registry_created_at', '2026')")
    empty.commit()
    empty.close()


# Trackio's registry tables (a registry is `registry-<name>.db` beside the projects).
REGISTRY_SCHEMA = (
    "CREATE TABLE project_metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE collections (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
    "type TEXT NOT NULL, description TEXT, next_version INTEGER NOT NULL DEFAULT 0, "
    "created_at TEXT NOT NULL)",
    "CREATE TABLE collection_links (id INTEGER PRIMARY KEY AUTOINCREMENT, collection_id INTEGER "
    "NOT NULL, collection_version INTEGER NOT NULL, source_project TEXT NOT NULL, "
    "source_artifact TEXT NOT NULL, source_version INTEGER NOT NULL, source_space_id TEXT, "
    "source_bucket_id TEXT, source_server_base_url TEXT, created_at TEXT NOT NULL)",
    "CREATE TABLE collection_aliases (collection_id INTEGER NOT NULL, alias TEXT NOT NULL, "
    "link_id INTEGER NOT NULL, PRIMARY KEY (collection_id, alias))",
    "CREATE TABLE registry_events (id INTEGER PRIMARY KEY AUTOINCREMENT, event_uid TEXT, "
    "ts TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL)",
)


def make_app(data_dir: Path) -> Flask:
    """The app over `data_dir`, configured as in production except for the rate limits."""
    # TESTING stays False so an unhandled exception is logged and answered 500, as in production.
    # No response cache: a cached render would hide a failing one, so a falsifying example
    # would not fail again when Hypothesis replays it.
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": False,
                       "PROPAGATE_EXCEPTIONS": False, "RATELIMIT_ENABLED": False,
                       "CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True,
                       "RATELIMIT_STORAGE_URI": "memory://", "QUERY_TIMEOUT_S": QUERY_BUDGET_S})


def _parameters(function: Any) -> list[inspect.Parameter] | None:
    """The parameters a request body binds to (without self), None when unknown."""
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None
    return params[1:] if params and params[0].name in ("self", "cls") else params


def api_signatures() -> dict[str, list[inspect.Parameter] | None]:
    """Every name `/api/<name>` serves, with its parameters (None: unknown, fuzzed generically).

    Reads the name tables (API_TABLES) of the API modules and of their classes: collections of
    names (methods or functions beside them), or dicts of name → function (or → reason).
    """
    found: dict[str, list[inspect.Parameter] | None] = {}
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        containers = [module] + [value for value in vars(module).values()
                                 if inspect.isclass(value) and value.__module__ == module_name]
        for container in containers:
            for attr, table in vars(container).items():
                if attr not in API_TABLES or not isinstance(
                        table, Mapping | tuple | list | set | frozenset):
                    continue
                for name in filter(lambda item: isinstance(item, str), table):
                    function = table[name] if isinstance(table, Mapping) else None
                    if not callable(function):
                        function = getattr(container, name, None) or getattr(module, name, None)
                    found[name] = _parameters(function) if callable(function) else None
    if not found:
        raise RuntimeError(f"no API names found: none of {API_TABLES} in {API_MODULES} or their "
                           "classes; update API_MODULES/API_TABLES in tests/fuzzing.py")
    return found


def csrf(project: str) -> str:
    """The CSRF token a page holding the write token would put in a form for `project`."""
    return hmac.new(TOKEN.encode(), f"csrf:{project}".encode(), hashlib.sha256).hexdigest()


# ---- requests and their checks ------------------------------------------------------------------

def _clip(data: Any, limit: int = 300) -> str:
    """repr(), cut to `limit` characters."""
    text = repr(data)
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} chars)"


@dataclass(frozen=True)
class Req:
    """One request, as sent; `route` names the target it belongs to."""

    route: str
    method: str
    path: str  # percent-encoded, as on the wire
    query: str = ""  # percent-encoded (ASCII), as on the wire
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    chunked: bool = False  # no Content-Length: the server reads the stream to its end

    @property
    def url(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    @property
    def mutates(self) -> bool:
        """Could this change the data (a write with the token)? Then it gets its own data dir."""
        return self.method not in SAFE_METHODS and (
            TOKEN in self.query or any(TOKEN in value for _, value in self.headers))

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))  # Hypothesis prints examples with this: keep huge bodies short

    def __repr__(self) -> str:
        parts = [f"{self.method} {_clip(self.url, 400)}"]
        parts += [f"{name}: {_clip(value, 120)}" for name, value in self.headers]
        if self.body is not None:
            parts.append(f"{'chunked ' if self.chunked else ''}body={_clip(self.body, 600)}")
        return "Req(" + " | ".join(parts) + ")"


@dataclass
class Outcome:
    req: Req
    status: int | None
    seconds: float
    problems: list[str] = field(default_factory=list)
    signature: str = ""  # what went wrong and where, the same for the same bug
    detail: str = ""  # the logged traceback, if any
    after: Req | None = None  # the write this read followed

    def report(self) -> str:
        lines = [f"{self.req.route}: {'; '.join(self.problems)} ({self.seconds:.2f} s)",
                 f"  request: {self.req!r}"]
        if self.after is not None:
            lines.insert(1, f"  after the write: {self.after!r}")
        if self.detail:
            lines.append("  " + self.detail.strip().replace("\n", "\n  "))
        return "\n".join(lines)


class Hang(BaseException):
    """Raised inside a request that overran HANG_S (BaseException: Flask must not catch it)."""


class _Trap(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the request after `seconds` (only possible on the main thread, via SIGALRM)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _where(tb) -> str:
    """The innermost frame in our package (else the innermost one): `file:function`."""
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if "trackio_flask" in f.filename] or frames
    if not ours:
        return "?"
    frame = ours[-1]
    return f"{Path(frame.filename).name}:{frame.name}"


def _our_frame(stack: traceback.StackSummary) -> str | None:
    """The innermost frame in our package, as `file:line`, or None if the call never passed it."""
    ours = [f for f in stack if "trackio_flask" in f.filename]
    return f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else None


@contextmanager
def _recording_warnings(caught: list[tuple[warnings.WarningMessage, str]]) -> Iterator[None]:
    """Record every warning our code set off, with the line of ours that called into it.

    numpy warns from its own files (np.mean's overflow comes from numpy/_core/_methods.py), so the
    warning's file alone would hide it: the stack at the time of the warning says who called.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("always")

        def record(message, category, filename, lineno, file=None, line=None):
            where = _our_frame(traceback.extract_stack())
            if where is not None:
                own = f"{Path(filename).name}:{lineno}"
                where = where if own == where else f"{where} (via {own})"
                caught.append((warnings.WarningMessage(message, category, filename, lineno),
                               where))

        warnings.showwarning = record
        yield


def send(app: Flask, req: Req) -> Outcome:
    """Send one request and judge the answer; never raises for what the app does."""
    trap = _Trap()
    root = logging.getLogger()
    root.addHandler(trap)
    kwargs: dict[str, Any] = {"method": req.method, "query_string": req.query,
                              "headers": list(req.headers)}
    if req.body is not None and req.chunked:
        kwargs["input_stream"] = io.BytesIO(req.body)
        kwargs["environ_base"] = {"wsgi.input_terminated": True}
        kwargs["headers"].append(("Transfer-Encoding", "chunked"))
    elif req.body is not None:
        kwargs["data"] = req.body
    status, body, escaped = None, b"", None
    # Last resort for a hang inside C code (SQLite, say), which SIGALRM cannot interrupt: dump
    # every thread's stack and end the process.
    faulthandler.dump_traceback_later(HANG_S * 3 + 5, exit=True)
    started = time.perf_counter()
    caught: list[tuple[warnings.WarningMessage, str]] = []
    try:
        # Warnings are recorded, not raised (pytest's "error" filter would turn them into 500s
        # production never sees); ours are reported below.
        with _deadline(HANG_S), _recording_warnings(caught):
            # No cookie jar: it would replace the Cookie header the request carries.
            response = app.test_client(use_cookies=False).open(req.path, **kwargs)
            try:
                body = response.get_data()  # streamed bodies run here, inside the deadline
                status = response.status_code
            finally:
                response.close()
    except Hang as exc:
        escaped = exc
    except Exception as exc:  # anything escaping the app is a finding
        escaped = exc
    finally:
        seconds = time.perf_counter() - started
        faulthandler.cancel_dump_traceback_later()
        root.removeHandler(trap)
    outcome = Outcome(req, status, seconds)
    if isinstance(escaped, Hang):
        outcome.problems.append(f"hang: no answer after {HANG_S:.0f} s")
        outcome.signature = f"hang@{_where(escaped.__traceback__)}"
        outcome.detail = "".join(traceback.format_tb(escaped.__traceback__)[-4:])
    elif escaped is not None:
        outcome.problems.append(f"{type(escaped).__name__} escaped the app: {escaped}")
        outcome.signature = f"{type(escaped).__name__}@{_where(escaped.__traceback__)}"
        outcome.detail = "".join(traceback.format_exception(escaped)[-6:])
    elif seconds > HANG_S:
        outcome.problems.append(f"took {seconds:.1f} s")
        outcome.signature = f"slow@{req.route}"
    if status is not None and status >= 500 and status not in ALLOWED_5XX:
        outcome.problems.append(f"status {status}")
    for record in trap.records:
        text = logging.Formatter().format(record)
        if record.levelno >= logging.ERROR or record.exc_info or "Traceback" in text:
            outcome.problems.append(f"logged {record.levelname}: {record.getMessage()[:120]}")
            outcome.detail = outcome.detail or "\n".join(text.splitlines()[-12:])
            if not outcome.signature and record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                outcome.signature = f"{type(error).__name__}@{_where(error.__traceback__)}"
            # The unformatted message: one signature however its arguments vary.
            outcome.signature = outcome.signature or f"log {record.levelname}@{record.name}:" \
                f"{str(record.msg)[:60]!r}"
    for warning, where in caught:
        outcome.problems.append(f"{warning.category.__name__} at {where}: {warning.message}")
        outcome.signature = outcome.signature or f"{warning.category.__name__}@{where}"
    for path in OUTSIDE:
        if path.exists():
            path.unlink()
            outcome.problems.append(f"a request created {path}, outside the data dir")
            outcome.signature = outcome.signature or f"file outside the data dir@{req.route}"
    if b"Traceback (most recent call last)" in body:
        outcome.problems.append("traceback in the response body")
    if outcome.problems and not outcome.signature:
        outcome.signature = f"{status}@{req.route}"
    return outcome


# ---- the fuzz environment ------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A route and method of the URL map, or one API name."""

    id: str
    rule: str
    method: str
    api_name: str | None = None

    def __str__(self) -> str:
        return self.id


def route_targets(app: Flask) -> list[Target]:
    """Every rule of the URL map, once per method (HEAD and OPTIONS come as variants)."""
    targets = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            targets.append(Target(f"{method} {rule.rule}", rule.rule, method))
    return targets


def api_targets() -> list[Target]:
    """Every discovered API name, each with bodies for its own parameters."""
    return [Target(f"POST /api/{name}", "/api/<name>", "POST", name)
            for name in sorted(api_signatures())]


def all_targets() -> list[Target]:
    """Every route of a throwaway app, then every API name."""
    with tempfile.TemporaryDirectory() as scratch:
        return route_targets(make_app(Path(scratch))) + api_targets()


class Fuzz:
    """A seeded data dir, the app reading it, and a fresh copy for every request that writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template"
        seed(self.template)
        self.data_dir = root / "shared"
        shutil.copytree(self.template, self.data_dir)
        self.app = make_app(self.data_dir)
        self.signatures = api_signatures()
        self.statics = sorted(str(p.relative_to(self.app.static_folder))
                              for p in Path(self.app.static_folder or ".").rglob("*") if p.is_file())
        self._strategies: dict[str, st.SearchStrategy[Req]] = {}
        self._fresh = 0
        self.version = ""  # p's version, so polls can be current (the 204 path)
        self.tokens: list[str] = []  # run-selection tokens valid in p (sel=)
        try:
            with self.app.app_context():
                self.version = self.app.extensions["trackio_store"].current_version("p")
                self.tokens = selection_tokens(self.app.extensions["trackio_store"].get("p"))
        except (KeyError, AttributeError):
            pass  # the store was reorganised: polls are then always stale, which still works
        # Read everything once: cold loads happen here, deterministically, and not in the middle
        # of some later example (which would then not fail again on replay).
        self.warmup = [send(self.app, req) for req in reads(self.app, PROJECTS, "seeded")]

    @cached_property
    def values(self) -> dict[str, st.SearchStrategy]:
        return value_strategies(self)

    def strategy(self, target: Target) -> st.SearchStrategy[Req]:
        if target.id not in self._strategies:
            self._strategies[target.id] = request_strategy(self, target)
        return self._strategies[target.id]

    def check(self, req: Req) -> list[Outcome]:
        """Send `req`; a write goes to a fresh data dir, then every project it touched is read."""
        if not req.mutates:
            return [send(self.app, req)]
        self._fresh += 1
        data_dir = self.root / f"fresh-{self._fresh}"
        shutil.copytree(self.template, data_dir)
        app = make_app(data_dir)
        try:
            before = _files(data_dir)
            outcomes = [send(app, req)]
            touched = sorted(name for name, stat in _files(data_dir).items()
                             if before.get(name) != stat)
            for read in reads(app, touched, "after write", runs_each=4):
                outcome = send(app, read)
                outcome.after = req
                outcomes.append(outcome)
            return outcomes
        finally:
            ingest = app.extensions.get("trackio_ingest")
            if ingest is not None:
                ingest.close()
            shutil.rmtree(data_dir, ignore_errors=True)


def selection_tokens(state: Any) -> list[str]:
    """Tokens a page of p would write: one run, all but one, every run, none."""
    from trackio_flask import selection

    keys = sorted(state.runs)
    return [selection.token_for(state, chosen) for chosen in
            (keys[:1], keys[1:], keys, [])]


def _files(directory: Path) -> dict[str, tuple[int, ...]]:
    """What a commit changes: each database's size and mtime, and its WAL's size.

    A read-only reader may create an empty -wal and a -shm, so those do not count.
    """
    state = {}
    for path in directory.glob("*.db"):
        wal = path.with_name(path.name + "-wal")
        state[path.stem] = (path.stat().st_size, path.stat().st_mtime_ns,
                            wal.stat().st_size if wal.exists() else 0)
    return state


def api_call(route: str, name: str, payload: Any, token: bool = False, raw: bytes | None = None,
             chunked: bool = False) -> Req:
    """POST /api/<name> with this JSON payload (or raw body), with or without the write token."""
    headers = (("X-Trackio-Write-Token", TOKEN),) if token else ()
    return Req(route, "POST", f"/api/{name}", headers=headers + (("Content-Type",
                                                                  "application/json"),),
               body=encode(payload) if raw is None else raw, chunked=chunked)


def reads(app: Flask, projects: list[str], label: str, runs_each: int = 64) -> Iterator[Req]:
    """Every page and read call over what these projects hold (after a write, say); per-run
    reads for the oldest and newest `runs_each` runs."""
    if not projects:
        return
    yield Req(f"{label}: GET /", "GET", "/")
    yield Req(f"{label}: GET /registry", "GET", "/registry")
    for name in REGISTRIES:
        yield Req(f"{label}: GET /registry/<name>", "GET", f"/registry/{name}")
    for project in projects:
        base = f"/projects/{quote(project, safe='')}"
        yield Req(f"{label}: GET /projects/<project>", "GET", base)
        yield Req(f"{label}: GET /projects/<project>/runs", "GET", f"{base}/runs")
        yield Req(f"{label}: GET /projects/<project>/refresh", "GET", f"{base}/refresh",
                  "iv=1&c=0&sc=0&e=0&v=stale")
        for page in ("traces", "artifacts", "files", "media"):
            yield Req(f"{label}: GET /projects/<project>/{page}", "GET", f"{base}/{page}")
        for query in ("", "group=trackio&stat=max", "group=config:lr&agg=median&band=ci95",
                      "group=name:.&axis=lr&axis=nested.x&x=lr&stat=min&sel=all"):
            yield Req(f"{label}: GET /projects/<project>/sweep", "GET", f"{base}/sweep", query)
        for query in ("group=trackio&band=std&sel=all", "group=config:lr&agg=median&band=ci95"):
            yield Req(f"{label}: GET /projects/<project> grouped", "GET", base, query)
        yield Req(f"{label}: GET /settings", "GET", "/settings", f"project={_q(project)}")
        traced = app.test_client().get(f"{base}/traces?sort=oldest")
        for trace_id in re.findall(r'data-trace="([^"]+)"', traced.get_data(as_text=True))[:12]:
            yield Req(f"{label}: GET /projects/<project>/trace", "GET", f"{base}/trace",
                      f"id={_q(html.unescape(trace_id))}")
        for name in ARTIFACTS:
            for version in ("", "0", "1"):
                yield Req(f"{label}: GET /projects/<project>/artifacts", "GET",
                          f"{base}/artifacts", f"name={_q(name)}&version={version}&files=2")
        for name in ("get_runs_for_project", "get_run_configs"):
            yield api_call(f"{label}: POST /api/{name}", name, {"project": project})
        listing = app.test_client().post("/api/get_runs_for_project", json={"project": project})
        runs = []
        if listing.status_code == 200:
            runs = [str(run.get("id")) for run in (listing.get_json(silent=True) or {}).get(
                "data") or []]
        refs = [{"run_id": key} for key in runs[:64]]
        for name in ("get_logs_batch", "get_system_logs_batch"):
            yield api_call(f"{label}: POST /api/{name}", name, {"project": project, "runs": refs})
        half = max(1, runs_each // 2)
        for key in runs if len(runs) <= runs_each else runs[:half] + runs[-half:]:
            yield Req(f"{label}: GET /projects/<project>/runs/<path:run>", "GET",
                      f"{base}/runs/{quote(key, safe='')}")
            for name, extra in (("get_logs", {}), ("get_logs", {"scalar_only": True}),
                                ("get_system_logs", {}), ("get_run_summary", {})):
                yield api_call(f"{label}: POST /api/{name}", name,
                               {"project": project, "run_id": key, **extra})


# ---- request strategies -------------------------------------------------------------------------

def _q(value: str, safe: str = "") -> str:
    """Percent-encode as on the wire (lone surrogates too)."""
    return quote(value, safe=safe, errors="surrogatepass")


def query_values(fuzz: Fuzz) -> dict[str, list[str]]:
    """Values worth trying per query parameter (valid ones first, so shrinking lands there)."""
    runs = sorted(RUNS) + sorted(set(RUNS.values()))
    flags = ["1", "0", "true", "false", "on", "off", "yes", "2", ""]
    return {
        "run_filter": REGEXES, "metric_filter": REGEXES, "metrics": ["train/loss", "a,b", ","],
        "group_by": ["_Group", "lr", "nested", "<b>", "", "deep"],
        "runs": runs + [",".join(["x"] * 1_001), ",".join(runs * 80)], "run_ids": runs,
        "smoothing": NUMBERS, "smoother": ["sma", "ema", "SMA", ""],
        "x_axis": ["step", "time", "wall", "metric:train/loss", "train/loss", "metric:",
                   "metric:" + "x" * 300, "metric:nope", "metric:big"],
        "xmin": NUMBERS, "xmax": NUMBERS, "latest_only": flags, "log_y": flags,
        "__theme": ["light", "dark", "system", "LIGHT", ""],
        "sidebar": ["hidden", "collapsed", "x"], "navbar": ["hidden", "x"],
        "accordion": ["hidden", "x"], "order": ["asc", "desc", "x"],
        "sort": ["created", "name", "steps", "config:lr", "config:", "config:deep", "metric:big",
                 "metric:train/loss", "metric:nope", "metric:", "newest", "oldest", "step_asc",
                 "step_desc"],
        # The Traces, Artifacts and Files pages.
        "id": TRACE_IDS + ["bulk-7", "t-types", "missing", "x" * 2_001],
        "run": sorted(RUNS) + ["missing", ""], "status": ["success", "error", "unknown", "x", ""],
        "q": ["q1", HOSTILE, "%", "_", "\\", "a" * 201, ""], "page": NUMBERS,
        "name": ARTIFACTS + ["missing", "x" * 300, ""], "selected_artifact": ARTIFACTS,
        "version": ["0", "1", "v1", "x", "-1", "v", "9" * 10, ""], "selected_version": ["v0", "v9"],
        "files": NUMBERS, "f": ["", "x", "0.0"], "hide_empty_tabs": ["true", "x"],
        "col": ["lr", "_Group", "<b>", "nested", "deep", ""], "metric": ["train/loss", "big", "x"],
        "project": [*PROJECTS, "missing", "../x", ""], "selected_project": ["p", "missing", "../x"],
        "write_token": [TOKEN, "wrong", ""], "v": [fuzz.version, "", "stale"], "iv": NUMBERS,
        "c": NUMBERS, "sc": NUMBERS, "e": NUMBERS, "sh": ["", "x", "0" * 16], "ph": ["", "x"],
        "path": ["x.png", "/etc/passwd", "../../p.db", "media/../p.db", "p.db", "\x00", "~",
                 "/proc/self/environ", "media", "media/", "//x", "a" * 5_000],
        # url_for's own keywords: a query parameter must never reach them as arguments.
        # Groupings (the Metrics charts' bands and the Sweep tab) and the Sweep tab's own.
        "group": ["config:lr", "trackio", "name:^(al)", "config:nested.x", "config:_Group",
                  "config:<b>", "config:deep", "config:", "name:(", "name:(a*)*b", "name",
                  "x", HOSTILE],
        "group_re": ["^(al)", "(", *REGEXES[:8]], "agg": ["mean", "median", "max", "MEAN", ""],
        "band": ["minmax", "std", "stderr", "ci95", "none", "iqr", ""],
        "hide_group": ["g1", "0.1", "(none)", HOSTILE, "x" * 300, ""],
        "stat": ["last", "min", "max", "mean", ""], "x": ["lr", "nested.x", "deep", "_Group", ""],
        "axis": ["lr", "nested.x", "<b>", "deep", "_Group", HOSTILE, ""],
        "a": ["g1", "g2", "0.1", "(none)", HOSTILE, "x" * 300, ""],
        "b": ["g2", "g1", "NaN", "<script>", "x" * 300, ""],
        "sel": ["all", "", *fuzz.tokens, "i3_0000_0-1", "x99999999_ffff_0", "b3_zzzz_",
                "i9999999_0000_0-9999999", "i100000_0000_" + ".".join(["0-99999"] * 200),
                "b100000_0000_" + "_" * 3000, "i3_0000_2-0", "i3_0000_0..1", "x0_0000_"],
        "endpoint": ["x", "pages.index", ""], "_method": ["GET", "POST", "x"],
        "_external": ["1", "true", "0"], "_anchor": ["x", "<"], "_scheme": ["https", "javascript"],
    }


def query_strategy(fuzz: Fuzz, target: Target) -> st.SearchStrategy[str]:
    """Query strings: known parameters with odd values, unknown ones, repeats, broken syntax."""
    values = query_values(fuzz)
    anything = st.one_of(st.sampled_from(TEXT + REGEXES + NUMBERS), st.text(max_size=30))
    pair = st.one_of(
        st.sampled_from(sorted(values)).flatmap(
            lambda key: st.tuples(st.just(key), mostly(st.sampled_from(values[key]), anything))),
        st.tuples(st.text(max_size=10), anything))
    bases: list[list[tuple[str, str]]] = [[]]
    if target.rule.endswith("/refresh"):
        # A well-formed poll reaches past the parameter checks; fuzzed pairs then override it.
        poll = [("iv", "1"), ("c", "0"), ("sc", "0"), ("e", "0")]
        bases += [poll + [("v", fuzz.version)], poll + [("v", "stale")],
                  poll + [("v", fuzz.version), ("iv", "2.5")]]
    if target.rule == "/":
        bases += [[("project", "p")], [("selected_project", "p")]]
    if target.rule in ("/projects/<project>", "/projects/<project>/sweep",
                       "/projects/<project>/refresh"):
        # A valid grouping reaches the group bands, the Sweep tab's groups and its interval;
        # fuzzed pairs then override it.
        bases += [[("group", "trackio")],
                  [("group", "config:lr"), ("agg", "median"), ("band", "ci95")],
                  [("group", "name:^(al|be)"), ("sel", "all"), ("stat", "max")]]

    @st.composite
    def build(draw) -> str:
        pairs = draw(st.sampled_from(bases)) + draw(st.lists(pair, max_size=6))
        parts = [f"{_q(k)}={_q(v)}" for k, v in pairs]
        raw = draw(mostly(st.just(""), st.sampled_from(RAW_QUERIES)))
        return "&".join(parts + ([raw] if raw else []))

    return build()


HEADER_VALUES = {
    "HX-Request": ["true", "false", ""],
    "Accept-Encoding": ["gzip", "br", "deflate", "zstd", "gzip, br", "*", "br;q=NaN", "gzip;q=-1",
                        "identity;q=0, *;q=0", "x" * 2_000],
    "Cookie": [f"trackio_write_token={TOKEN}", "trackio_write_token=wrong",
               "trackio_write_token=", 'trackio_write_token="\\"', "a" * 5_000],
    "X-Trackio-Write-Token": [TOKEN, "wrong", "", f" {TOKEN}", "é"],
    "Origin": ["http://localhost", "http://evil.example", "null", "", "http://[::1",
               "http://localhost:99999"],
    "Referer": ["http://localhost/projects/p/runs", "http://evil.example/", "::::", "http://["],
    "If-None-Match": ["*", '"x"', 'W/""', "garbage"],
    "If-Modified-Since": ["Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "0"],
    "Range": ["bytes=0-", "bytes=-0", "bytes=5-1", "bytes=99999999999999999999-",
              "bytes=" + "0-0," * 200, "items=0-1"],
    "Accept": ["application/json", "*/*", "text/html;q=NaN"],
    "X-Forwarded-For": ["1.2.3.4", "garbage"], "X-Forwarded-Prefix": ["/x", "//evil"],
}


def header_strategy() -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """A few request headers with odd values (duplicates are joined, as a server would)."""
    pair = st.sampled_from(sorted(HEADER_VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), mostly(st.sampled_from(HEADER_VALUES[name]),
                                                     printable())))
    return st.lists(pair, max_size=4).map(tuple)


def encode(value: Any, ascii_only: bool = False) -> bytes:
    """JSON as a lax client writes it: NaN and Infinity literals, integers of any size."""
    return json.dumps(value, allow_nan=True, ensure_ascii=ascii_only).encode(
        "utf-8", "surrogatepass")


@st.composite
def mangled(draw, data: bytes) -> bytes:
    """The body, or a broken variant of it (cut, BOM, a bad UTF-8 byte, another encoding...)."""
    how = draw(seldom(st.just("as is"), st.sampled_from(
        ["cut", "bom", "bad byte", "utf-16", "trailing", "nul"])))
    if how == "cut":
        return data[: len(data) // 2]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "bad byte":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"\xff" + data[at:]
    if how == "utf-16":
        return data.decode("utf-8", "replace").encode("utf-16")
    if how == "trailing":
        return data + b" garbage"
    if how == "nul":
        return data + b"\x00"
    return data


def value_strategies(fuzz: Fuzz) -> dict[str, st.SearchStrategy]:
    """Good and bad values for each API parameter name; unknown names get ANY_VALUE."""
    names = st.sampled_from(sorted(set(RUNS.values())))
    keys = st.sampled_from(sorted(RUNS))
    text = st.one_of(st.sampled_from(TEXT), st.text(max_size=20))
    project = mostly(st.one_of(st.just("p"), st.sampled_from([*PROJECTS, "missing", "w"])), text)
    run_ref = st.fixed_dictionaries({}, optional={"run": mostly(names, ANY_VALUE),
                                                  "run_id": mostly(keys, ANY_VALUE)})
    metrics = mostly(st.dictionaries(pick(METRIC_KEYS, st.text(max_size=10)),
                                     pick(METRIC_VALUES, JSON_SCALARS), max_size=4),
                     st.sampled_from([{}, WIDE_DICT, {"deep": DEEP_DICT}, [1], "x", None]))
    # The optional fields are where extremes live: a well-formed entry carries them to storage.
    optional = {
        "run_id": st.one_of(st.none(), keys, text), "step": pick(STEPS, st.integers()),
        "timestamp": pick(TIMESTAMPS, st.text(max_size=30)),
        "log_id": st.one_of(st.none(), st.sampled_from(["log-1", "", "x" * 600]), ANY_VALUE),
        "config": st.one_of(st.none(), JSON_VALUES, st.sampled_from(
            [{"lr": 1, "_Group": "<b>"}, {"deep": DEEP_DICT}, WIDE_DICT])),
        "text": st.one_of(st.none(), text, ANY_VALUE),
        "level": st.sampled_from(["info", "warn", "error", "WARN", "", None, 1]),
        "alert_id": st.one_of(st.none(), text, ANY_VALUE),
    }
    good = {"project": st.sampled_from(["p", "w", "odd", "old", "empty"]),
            "run": st.sampled_from(["alpha", "new", "a" * 40, "dup"]),
            "metrics": metrics, "title": st.sampled_from(["t", "<b>", "x" * 600])}
    bad = {"project": pick(TEXT, ANY_VALUE), "run": pick(TEXT + ["x" * 513], ANY_VALUE),
           "metrics": ANY_VALUE, "title": ANY_VALUE}

    def entries(required: tuple[str, ...]) -> st.SearchStrategy:
        """Entries with these fields well-formed (mostly), any optional ones, or junk."""
        entry = mostly(st.fixed_dictionaries({k: good[k] for k in required}, optional=optional),
                       st.fixed_dictionaries({k: mostly(good[k], bad[k]) for k in required},
                                             optional=optional))
        return mostly(entry, ANY_VALUE)

    # Big but valid: many rows in one batch, each with its own step.
    big_batch = [{"project": "w", "run": "bulk", "metrics": {"loss": i / 7}, "step": i}
                 for i in range(2_000)]

    def batches(entry: st.SearchStrategy) -> st.SearchStrategy:
        return mostly(st.lists(entry, min_size=1, max_size=5),
                      st.sampled_from([[], [None], HUGE_LIST, big_batch, "x", {}]))

    return {
        "project": project, "run": mostly(names, text), "run_id": mostly(keys, text),
        "runs": mostly(st.lists(run_ref, max_size=70),
                       st.sampled_from([HUGE_LIST, [{}], [None], "x"])),
        "max_points": st.one_of(st.sampled_from(
            [None, 0, -1, 1, 2, 3000, 10_000, 10_001, 2**63, 2**64, -(2**63) - 1, 1e300, 1.5,
             True, "5"]), st.integers()),
        "scalar_only": st.sampled_from([True, False, None, "true", "1", "false", "0", "yes", 1,
                                        [], {}]),
        "logs": batches(entries(("project", "run", "metrics"))),
        "alerts": batches(entries(("project", "run", "title"))),
        "hf_token": st.sampled_from([None, "", "hf_x", TOKEN, 1]),
        "metrics": metrics, "query": pick(SQL, st.text(max_size=40)),
        "level": st.sampled_from(["info", "warn", "error", "WARN", "", None, 1]),
        "search": pick(REGEXES + TEXT, st.text(max_size=20)), "sort": pick(REGEXES + TEXT),
    }


def guessed(name: str, fuzz: Fuzz) -> st.SearchStrategy:
    """Values for a parameter no table names, judged by its name (new API names get these)."""
    known = fuzz.values
    if name in known:
        return known[name]
    numbers = st.one_of(st.sampled_from(JSON_EXTREMES), st.integers(), st.floats(),
                        st.sampled_from(NUMBERS))
    if any(part in name for part in ("step", "window", "limit", "offset", "points", "time",
                                     "since", "count", "size")):
        return numbers
    if name.endswith("name") or name in ("run", "registry", "alias", "type"):
        return pick(sorted(set(RUNS.values())) + METRIC_KEYS + TEXT, st.text(max_size=20))
    if name.endswith(("_id", "digest")):
        return pick(sorted(RUNS) + ["0" * 64, "f" * 64, "../" * 5] + TEXT, st.text(max_size=20))
    if name.endswith("s"):  # plural: a list (digests, uploads, aliases, ...)
        return st.one_of(st.lists(pick(TEXT, ANY_VALUE), max_size=5), ANY_VALUE)
    return ANY_VALUE


def body_strategy(fuzz: Fuzz, params: list[inspect.Parameter] | None) -> st.SearchStrategy[bytes]:
    """A Trackio API body for these parameters (None: any API's) in every shape `bind` meets."""
    if params is None:
        params = list({p.name: p for known in fuzz.signatures.values()
                       for p in known or ()}.values())
    guesses = {param.name: guessed(param.name, fuzz) for param in params}

    @st.composite
    def build(draw) -> bytes:
        given = {}
        for param in params:
            required = param.default is inspect.Parameter.empty
            if draw(mostly(st.just(required), st.booleans())):
                given[param.name] = draw(mostly(guesses[param.name], ANY_VALUE))
        if draw(SELDOM):
            extra = pick(["x", "endpoint", "args", "kwargs", "data", "self"], st.text(max_size=8))
            given.update(draw(st.dictionaries(extra, ANY_VALUE, max_size=2)))
        positional = []
        for param in params:
            if param.name not in given:
                break
            positional.append(given[param.name])
        shape = draw(seldom(st.sampled_from(["plain", "kwargs", "args", "both", "data", "list"]),
                            st.sampled_from(["wrong", "raw"])))
        if shape == "raw":
            return draw(st.sampled_from(RAW_BODIES + [OVERSIZE_BODY]))
        body: Any = {
            "plain": given, "kwargs": {"kwargs": given}, "args": {"args": positional},
            "both": {"args": positional[:1], "kwargs": {k: v for k, v in given.items()
                                                       if k != params[0].name} if params else {}},
            "data": {"data": positional}, "list": positional,
            "wrong": draw(st.one_of(ANY_VALUE, st.fixed_dictionaries(
                {}, optional={"args": ANY_VALUE, "kwargs": ANY_VALUE, "data": ANY_VALUE}))),
        }[shape]
        return draw(mangled(encode(body, ascii_only=draw(st.booleans()))))

    return build()


def content_headers(kinds: list[str | None]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """A Content-Type from `kinds` (None: no header), now and then any other."""
    kind = mostly(st.sampled_from(kinds), st.sampled_from(CONTENT_TYPES))
    return kind.map(lambda value: () if value is None else (("Content-Type", value),))


def token_headers() -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """The write token where clients put it (mostly valid), or a wrong one, or none."""
    return seldom(st.sampled_from([(("X-Trackio-Write-Token", TOKEN),),
                                   (("Cookie", f"trackio_write_token={TOKEN}"),)]),
                  st.sampled_from([(), (("X-Trackio-Write-Token", "wrong"),),
                                   (("X-Trackio-Write-Token", ""),)]))


def form_body(project: str) -> st.SearchStrategy[tuple[bytes, tuple[tuple[str, str], ...]]]:
    """A rename/delete form: urlencoded, multipart or not a form at all."""
    token = mostly(st.just(csrf(project)), st.sampled_from(["", "wrong", csrf("other"), "é"]))
    name = mostly(st.sampled_from(["renamed", "alpha", "a" * 40]),
                  pick(TEXT + ["x" * 257, "\t", "名前"], st.text(max_size=30)))

    @st.composite
    def build(draw):
        fields = draw(mostly(st.fixed_dictionaries({"csrf": token, "name": name}),
                             st.fixed_dictionaries({}, optional={"csrf": token, "name": name})))
        how = draw(mostly(st.sampled_from(["urlencoded", "multipart"]),
                          st.sampled_from(["json", "raw"])))
        if how == "urlencoded":
            data = "&".join(f"{_q(k)}={_q(v)}" for k, v in fields.items()).encode()
            kind = "application/x-www-form-urlencoded"
        elif how == "multipart":
            parts = [f'--B\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                     for k, v in fields.items()]
            data = ("".join(parts) + "--B--\r\n").encode("utf-8", "surrogatepass")
            kind = draw(mostly(st.just("multipart/form-data; boundary=B"), st.sampled_from(
                ["multipart/form-data", "multipart/form-data; boundary="])))
        elif how == "json":
            data, kind = encode(fields), "application/json"
        else:
            data, kind = draw(st.sampled_from(RAW_BODIES)), draw(st.sampled_from(CONTENT_TYPES))
        headers = () if kind is None else (("Content-Type", kind),)
        return draw(mangled(data)), headers

    return build()


@st.composite
def upload_body(draw) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """Multipart file uploads: odd file names, field names and sizes, or a broken multipart."""
    names = pick(["x.png", "../../etc/passwd", "", "\x00.png", "a" * 1_000 + ".png", "名前.png",
                  ".htaccess", "x.db", "x.png\r\nX-Evil: 1", "/abs/x.png", "x/../../y.png"],
                 st.text(max_size=20))
    files = draw(st.lists(st.tuples(mostly(st.just("files"), st.text(max_size=8)), names,
                                    st.sampled_from([b"", b"\x89PNG\r\n", b"x" * 100_000])),
                          max_size=3))
    parts = [f'--B\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n".encode("utf-8", "surrogatepass")
             + content + b"\r\n" for field, name, content in files]
    data = b"".join(parts) + b"--B--\r\n"
    kind = draw(mostly(st.just("multipart/form-data; boundary=B"), st.sampled_from(CONTENT_TYPES)))
    return draw(mangled(data)), (() if kind is None else (("Content-Type", kind),))


VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def path_values(fuzz: Fuzz, variable: str, rule: str = "") -> st.SearchStrategy[str]:
    """Values for a URL variable: real ones (by its name) most of the time, else hostile."""
    hostile = st.one_of(st.sampled_from(TEXT), st.text(max_size=30))
    if variable == "name" and rule.startswith("/registry"):
        return mostly(st.sampled_from(REGISTRIES), hostile)
    if variable == "project":
        return mostly(st.one_of(st.just("p"), st.sampled_from([*PROJECTS, "missing"])), hostile)
    if variable == "run":
        return mostly(st.one_of(st.sampled_from(sorted(RUNS)),
                                st.sampled_from(sorted(set(RUNS.values()))),
                                st.sampled_from(["legacy", "odd", "a/b", "../../etc/passwd"])),
                      hostile)
    if variable == "name":
        return mostly(st.sampled_from(sorted(fuzz.signatures)), hostile)
    if variable == "filename":
        return st.one_of(st.sampled_from(fuzz.statics), st.sampled_from(
            ["../pyproject.toml", "../../etc/passwd", "..%2fREADME.md", "vendor/../app.js",
             "vendor", "vendor/", "/etc/passwd", "app.js\x00.png", "APP.JS", "app.js/"]), hostile)
    return hostile


def request_strategy(fuzz: Fuzz, target: Target) -> st.SearchStrategy[Req]:
    """Requests aimed at one target: its path filled with good and bad values, bad queries,
    headers and bodies, now and then another method."""
    variables = VARIABLE.findall(target.rule)
    queries = query_strategy(fuzz, target)
    headers = header_strategy()
    api_bodies = {None: body_strategy(fuzz, None)}
    api_bodies.update({name: body_strategy(fuzz, params)
                       for name, params in fuzz.signatures.items()})
    form_rule = target.rule.endswith(("/rename", "/delete"))
    # A run exists only in its own project: drawing the two apart would rarely hit one.
    runs = st.sampled_from([("p", key) for key in sorted(RUNS)] + [("old", "legacy"), ("odd", "odd")])

    @st.composite
    def build(draw) -> Req:
        method = draw(seldom(st.just(target.method), st.sampled_from(OTHER_METHODS)))
        filled, path = {}, target.rule
        if target.api_name is not None:
            filled["name"] = target.api_name
        if {"project", "run"} <= {name for _, name in variables} and draw(st.booleans()):
            filled["project"], filled["run"] = draw(runs)
        for converter, variable in variables:
            if variable not in filled:
                filled[variable] = draw(path_values(fuzz, variable, target.rule))
            value = filled[variable]
            encoded = _q(value, safe="/" if converter == "path" else "")
            if draw(SELDOM):
                encoded = _q(encoded)  # double-encoded: %2e → %252e
            path = VARIABLE.sub(lambda _m, e=encoded: e, path, count=1)
        extra: tuple[tuple[str, str], ...] = ()
        body = None
        if target.api_name is not None or target.rule == "/api/<name>":
            name = filled.get("name", target.api_name)
            body = draw(api_bodies.get(name, api_bodies[None]))
            extra = draw(token_headers()) + draw(content_headers(["application/json", None]))
        elif form_rule and method == "POST":
            body, extra = draw(form_body(str(filled.get("project", "p"))))
            # Most forms come from a browser holding the token cookie, on the same origin.
            extra += draw(st.sampled_from([
                (("Cookie", f"trackio_write_token={TOKEN}"),),
                (("Cookie", f"trackio_write_token={TOKEN}"), ("Origin", "http://localhost")),
                (("Cookie", f"trackio_write_token={TOKEN}"), ("Origin", "http://evil.example")),
                ()]))
        elif target.rule.endswith("/upload") and method == "POST":
            body, extra = draw(upload_body())
            extra += draw(token_headers())
        elif draw(RARELY):
            body = draw(st.sampled_from(RAW_BODIES))
            extra = draw(content_headers([None]))
        chunked = body is not None and draw(SELDOM)
        return Req(target.id, method, path, draw(queries), extra + draw(headers), body, chunked)

    return build()


# ---- requests every run sends -------------------------------------------------------------------

def _form(action: str, project: str, run: str, *headers: tuple[str, str]) -> Req:
    """A rename/delete form from a browser holding the token cookie."""
    return Req(f"POST /projects/<project>/runs/<path:run>/{action}", "POST",
               f"/projects/{project}/runs/{run}/{action}",
               headers=(("Cookie", f"trackio_write_token={TOKEN}"),
                        ("Content-Type", "application/x-www-form-urlencoded"), *headers),
               body=f"csrf={csrf(project)}&name=renamed".encode())


def _route_cases(targets: list[Target]) -> Iterator[tuple[str, Req]]:
    """Redirects built from hostile paths, url_for keywords, catastrophic regexes, odd forms."""
    sample = {"project": "p", "run": "id-alpha", "name": "get_logs", "filename": "app.js"}
    for target in targets:
        if target.api_name is not None:
            continue
        path = VARIABLE.sub(lambda m: _q(sample.get(m.group(2), "x")), target.rule)
        # A newline in the path, then a redirect whose Location repeats the path.
        broken = VARIABLE.sub(lambda m: _q(sample.get(m.group(2), "x") + "\n"), target.rule)
        yield (f"{target.id} newline in path + write_token",
               Req(target.id, "GET", broken if broken != path else path + "%0A", "write_token=x"))
        if target.method == "GET" and target.rule.startswith("/projects/"):
            for pattern in ("(a*)*b", "(.+)+!", "(x+x+)+y", "(\\w+\\s?)+$"):
                for key in ("run_filter", "metric_filter"):
                    yield (f"{target.id} {key}={pattern}", Req(
                        target.id, "GET", path, f"{key}={_q(pattern)}&iv=1&c=0&sc=0&e=0"))
    for query in ("group=name:(a*)*b", "group=name&group_re=(x%2Bx%2B)%2By",
                  "group=config:lr&a=g1&b=g1", "group=trackio&a=g1&b=" + "x" * 201,
                  "&".join(["axis=lr"] * 40), "stat=max&metric=big&x=deep",
                  "group=config:nested.x&metric=inf&stat=min", "metric=nan&stat=last&x=lr",
                  "sel=i100000_0000_" + ".".join(["0-99999"] * 200), "hide_group=" + "x" * 5000,
                  "group=config:" + "a." * 500, "agg=median&band=ci95&group=trackio&sel=b3_zzzz_"):
        for route, path in (("GET /projects/<project>/sweep", "/projects/p/sweep"),
                            ("GET /projects/<project>", "/projects/p"),
                            ("GET /projects/<project>/refresh", "/projects/p/refresh")):
            yield f"{route} {query[:60]}", Req(route, "GET", path, query)
    for query in ("project=p&endpoint=x", "project=p&_scheme=javascript", "project=p&_external=1",
                  "project=p&_anchor=%3C&_method=POST", "selected_project=p&endpoint=x"):
        yield f"GET / {query}", Req("GET /", "GET", "/", query)
    for query in ("iv=1&c=18446744073709551616&sc=0&e=0&v=stale", "iv=nan&v=stale",
                  "iv=1&c=-1&sc=0&e=0", "iv=1&c=0&sc=0&e=99999999999999999999&v=stale"):
        yield f"refresh {query}", Req("GET /projects/<project>/refresh", "GET",
                                      "/projects/p/refresh", query)
    for origin in ("http://[", "http://[::1", "::::"):
        for action in ("rename", "delete"):
            yield f"{action} with Origin {origin}", _form(action, "p", "id-alpha",
                                                          ("Origin", origin))
    yield "rename a run of a legacy project", _form("rename", "old", "legacy")


def _ingest_cases() -> Iterator[tuple[str, Req]]:
    """Batches with extreme steps and timestamps, deep or huge values, bodies past the limits."""
    entry = {"project": "p", "run": "r", "metrics": {"loss": 1.0}}
    for step in (2**63, 2**64, -(2**63) - 1, 1e300, -1e300, "1", 10**30):
        yield f"bulk_log step={step!r}", api_call(
            "POST /api/bulk_log", "bulk_log", {"logs": [{**entry, "step": step}]}, token=True)
        yield f"bulk_alert step={step!r}", api_call(
            "POST /api/bulk_alert", "bulk_alert",
            {"alerts": [{"project": "p", "run": "r", "title": "t", "step": step}]}, token=True)
    for stamp_text in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                       "9999-12-31T23:59:59.999999"):
        for name in ("bulk_log", "bulk_log_system"):
            yield f"{name} timestamp={stamp_text}", api_call(
                f"POST /api/{name}", name, {"logs": [{**entry, "timestamp": stamp_text}]},
                token=True)
    for label, logs in (("deep metrics", [{**entry, "metrics": {"a": DEEP_DICT}}]),
                        ("deep config", [{**entry, "config": DEEP_DICT}]),
                        ("huge metric ints", [{**entry, "metrics": {"a": 2**64}}]),
                        ("legacy project", [{**entry, "project": "old"}]),
                        ("huge list", HUGE_LIST)):
        yield f"bulk_log {label}", api_call("POST /api/bulk_log", "bulk_log", {"logs": logs},
                                            token=True)
    for label, raw, chunked in (("NaN literal", b'{"logs": [NaN]}', False),
                                ("deep nesting", b"[" * 2_000 + b"]" * 2_000, False),
                                ("non-UTF-8", b'{"logs": ["\xff"]}', False),
                                ("oversize chunked", OVERSIZE_BODY, True)):
        yield f"bulk_log {label}", api_call("POST /api/bulk_log", "bulk_log", None, token=True,
                                            raw=raw, chunked=chunked)


def _number_cases(targets: list[Target]) -> Iterator[tuple[str, Req]]:
    """Numbers as clients may send them: numeric strings int() refuses ("²"), and extremes."""
    plausible = {"project": "p", "run": "alpha", "run_id": "id-alpha", "run_name": "alpha",
                 "metric_name": "train/loss", "name": "x", "version_id": 1}
    numeric = ("step", "window", "limit", "offset", "points", "time", "since", "count", "_id")
    signatures = api_signatures()
    for target in targets:
        params = signatures.get(target.api_name or "") or []
        required = {p.name: plausible.get(p.name) for p in params
                    if p.default is inspect.Parameter.empty}
        for param in params:
            if param.name == "run_id" or not any(part in param.name for part in numeric):
                continue
            for value in ("\u00b2", "\x1e7", 2**64, 1e300, "nan"):
                yield f"{target.api_name} {param.name}={value!r}", api_call(
                    target.id, target.api_name, {**required, param.name: value}, token=True)


def _heavy_cases() -> Iterator[tuple[str, Req]]:
    """Heavy reads without a token (issue 18): each heavy query family, and batch and window
    reads over the largest seeded run, must each answer within the per-request budget."""
    for index, sql in enumerate(HEAVY_SQL):
        yield f"heavy query {index}", api_call("POST /api/query_project", "query_project",
                                               {"project": "p", "query": sql})
    yield "get_logs_batch one run 64 times", api_call(
        "POST /api/get_logs_batch", "get_logs_batch",
        {"project": "p", "runs": [{"run": "alpha"}] * 64, "max_points": 10})
    yield "get_snapshot unfiltered", api_call("POST /api/get_snapshot", "get_snapshot",
                                              {"project": "p", "run": "alpha"})


def known_hostile(targets: list[Target]) -> list[tuple[str, Req]]:
    """(label, request) pairs that broke the app before or are likeliest to: the bounded run
    sends each of them, whatever Hypothesis draws."""
    return [*_route_cases(targets), *_ingest_cases(), *_number_cases(targets),
            *_heavy_cases()]
