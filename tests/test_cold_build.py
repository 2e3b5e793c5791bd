"""A cold build decodes whole chunks at once; it must read every row exactly as one row at a time.

The references here are the row-by-row definitions (`parse`, `_number`, `scalar_metrics`,
"the latest row names the run"), applied to rows a hostile or old file can hold.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackio_flask import live
from trackio_flask.live import ProjectStore, _number, _run_key
from trackio_flask.series import decode_payload, decode_payloads, only_numbers, scalar_metrics
from trackio_flask.timestamps import parse, parse_many

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
UTC_FORMS = ("0000-00-00T00:00:00+00:00", "0000-00-00T00:00:00.000000+00:00")


def bits(values) -> bytes:
    """Float64 bytes: equal only when every value is the same float, NaN payloads included."""
    return np.asarray(values, dtype=np.float64).tobytes()


def comparable(fields) -> tuple:
    """Fields with floats as their bytes, so NaN equals the same NaN."""
    return tuple(bits(value) if type(value) is float else value for value in fields)


def trackio_stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


@st.composite
def mutated_stamps(draw) -> str:
    """Trackio's form with a character or two swapped: letters, other digits, signs, spaces."""
    text = list(draw(st.sampled_from(
        [trackio_stamp(1.5), trackio_stamp(0), "2024-02-29T23:59:59.999999+00:00",
         "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59.999999+00:00"])))
    for _ in range(draw(st.integers(1, 2))):
        position = draw(st.integers(0, len(text) - 1))
        text[position] = draw(st.sampled_from("0123456789:-+T Z.x\u0663\u00e9"))
    return "".join(text)


STAMPS = st.one_of(
    st.floats(-1e6, 4e9, allow_nan=False).map(trackio_stamp),  # mostly 32 chars, some 25
    st.integers(-10**6, 10**6).map(trackio_stamp),  # whole seconds: 25 chars
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=st.just(timezone.utc)).map(datetime.isoformat),
    mutated_stamps(),
    st.sampled_from(["0000-01-01T00:00:00+00:00", "2023-02-29T00:00:00+00:00",
                     "2024-01-01T24:00:00+00:00", "2024-01-01T23:59:60+00:00",
                     "2024-01-01T00:00:00.123456+01:00", "2024-01-01T00:00+00:00:00",
                     "2024-01-01 00:00:00.123456+00:00", "2024-01-01T00:00:00",
                     "2024-01-01T00:00:00Z", "-001-01-01T00:00:00+00:00", "",
                     "2024-01-01T00+01:00+00:00", "2024-01-01T00:00:00.1+0100+00:00"]),
    st.text(max_size=40), st.none(), st.integers(-2**63, 2**63 - 1), st.floats(),
    st.binary(max_size=32),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(STAMPS, max_size=30), st.booleans())
def test_parse_many_is_parse_of_each_bit_for_bit(texts, as_tuple):
    got = parse_many(tuple(texts) if as_tuple else texts)
    assert bits(got) == bits([parse(text) for text in texts])


def test_parse_many_reads_a_chunk_of_trackio_stamps_with_a_stray_among_them():
    texts = [trackio_stamp(step * 0.25) for step in range(2000)]  # 25 and 32 chars mixed
    assert {len(text) for text in texts} == {25, 32}
    texts[700] = "2024-02-30T00:00:00.000000+00:00"  # numpy refuses the whole batch for it
    texts[701] = "not a stamp"
    expected = [parse(text) for text in texts]
    assert math.isnan(expected[700]) and not math.isnan(expected[702])
    assert bits(parse_many(texts)) == bits(expected)


VALUES = st.one_of(
    st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(), st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "1.5"]), st.none(),
    st.fixed_dictionaries({"_type": st.sampled_from(["trackio.image", "trackio.table"])}),
    st.lists(st.just({"_type": "trackio.image", "path": "x.png"}), min_size=1, max_size=2),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 9) | st.floats(0, 1), max_size=2),
)
NAMES = st.sampled_from(["loss", "acc", "lr", "eval/loss", "<b>x</b>", "a/b"])
NUMBER_PAYLOADS = st.dictionaries(NAMES, st.integers(-2**63, 2**64 - 1) | st.floats(-1e9, 1e9),
                                  max_size=4).map(orjson.dumps)
PAYLOADS = st.one_of(
    NUMBER_PAYLOADS, NUMBER_PAYLOADS.map(bytes.decode),
    st.dictionaries(NAMES, VALUES, max_size=4).map(lambda value: orjson.dumps(value).decode()),
    st.sampled_from(["{", "[1, 2]", "null", "3", '{"loss": NaN}', "", '{"x": 1e999}',
                     '{"big": 123456789012345678901234567890}']),
    st.none(), st.integers(-2**63, 2**63 - 1), st.binary(max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PAYLOADS, max_size=20))
def test_decode_payloads_is_decode_payload_of_each(payloads):
    decoded = decode_payloads(payloads)
    assert decoded == [decode_payload(payload) for payload in payloads]
    if only_numbers(decoded):  # then each row is already its own plottable numbers
        assert all(scalar_metrics(dict(row)) == row for row in decoded)


# (run_id, run_name) as rows can spell them: renamed runs, a legacy file's missing ids, an id
# stored as a number and as its text, a row naming no run at all.
RUN_SPELLINGS = st.sampled_from([
    ("id-a", "a"), ("id-a", "a"), ("id-a", "a renamed"), ("id-b", "b"), ("id-b", "b"),
    (None, "legacy"), (7, "seven"), ("7", "seven"), ("id-c", None), (None, None),
])
STEPS = st.one_of(st.integers(0, 10**6), st.integers(-2**63, 2**63 - 1),
                  st.floats(allow_nan=False), st.none(), st.sampled_from(["3", "x", b"\x01"]))
ROWS = st.tuples(RUN_SPELLINGS, st.one_of(STAMPS, st.integers(0, 10**5).map(trackio_stamp)),
                 STEPS, st.one_of(NUMBER_PAYLOADS, PAYLOADS))


def row_by_row(rows: list[tuple]) -> tuple[dict, dict, list]:
    """What the project state must hold, from the one-row definitions: runs, columns, rich refs."""
    runs: dict[str, dict] = {}
    rich = []
    for row_id, raw_key, raw_name, text, raw_step, payload in rows:
        ids = _run_key(raw_key, raw_name)
        if ids is None:
            continue
        key, name = ids
        stamp, step = parse(text), _number(raw_step)
        run = runs.setdefault(key, {"created": stamp, "ids": [], "steps": [], "times": [],
                                    "values": [], "last_time": math.nan})
        run["name"] = name
        found: list[tuple[str, str]] = []
        run["values"].append(scalar_metrics(decode_payload(payload), rich=found))
        rich += [(row_id, key, step, stamp, metric, kind) for metric, kind in found]
        run["ids"].append(row_id)
        run["steps"].append(step)
        run["times"].append(stamp)
        run["last_step"] = step
        if stamp == stamp:
            run["last_time"] = stamp
    columns = {}
    for key, run in runs.items():
        names = {name for values in run["values"] for name in values}
        columns[key] = {name: [values.get(name, math.nan) for values in run["values"]]
                        for name in names}
    return runs, columns, rich


def write_project(directory: Path, rows: list[tuple]) -> None:
    """A project file whose columns hold whatever a damaged or hand-made file can: no types."""
    conn = sqlite3.connect(directory / "p.db", isolation_level=None)
    conn.execute("CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id, timestamp, "
                 "run_name, step, metrics)")
    conn.execute("CREATE TABLE configs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id, run_name, "
                 "config, created_at)")
    conn.executemany("INSERT INTO metrics (run_id, run_name, timestamp, step, metrics) "
                     "VALUES (?, ?, ?, ?, ?)", rows)
    conn.close()


def assert_state_matches(state, rows: list[tuple]) -> None:
    runs, columns, rich = row_by_row(rows)
    assert list(state.runs) == list(runs)
    for key, run in runs.items():
        info, stored = state.runs[key], state.metrics[key]
        assert (info.name, info.rows) == (run["name"], len(run["ids"]))
        assert bits([info.created, info.first_time, info.last_step, info.last_time]) == \
            bits([run["created"], run["created"], run["last_step"], run["last_time"]])
        assert stored.ids[:stored.length].tolist() == run["ids"]
        assert bits(stored.steps[:stored.length]) == bits(run["steps"])
        assert bits(stored.times[:stored.length]) == bits(run["times"])
        assert set(stored.metrics) == set(columns[key])
        for name, values in columns[key].items():
            assert bits(stored.column(name)) == bits(values), (key, name)
    assert state.metric_names == {name for found in columns.values() for name in found}
    assert [comparable(ref) for ref in state.rich] == [comparable(ref) for ref in rich]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROWS, max_size=60), st.integers(1, 25))
def test_a_chunked_build_reads_every_row_as_one_row_at_a_time(drawn, chunk):
    rows = [(key, name, stamp, step, payload) for (key, name), stamp, step, payload in drawn]
    with tempfile.TemporaryDirectory() as directory, mock.patch.object(live, "CHUNK", chunk):
        write_project(Path(directory), rows)
        conn = sqlite3.connect(Path(directory) / "p.db")
        stored = conn.execute("SELECT id, run_id, run_name, timestamp, step, metrics "
                              "FROM metrics ORDER BY id").fetchall()
        conn.close()
        assert_state_matches(ProjectStore(Path(directory), 2**30).get("p"), stored)


def test_a_trackio_shaped_chunk_takes_the_whole_chunk_path_and_agrees(data_dir):
    """Interleaved runs of number-only rows (what trainers write), with a rename and media rows
    in between, across chunk boundaries."""
    rows = []
    for step in range(3000):
        for run in ("id-a", "id-b", "id-c"):
            name = "a renamed" if run == "id-a" and step >= 2000 else run[3:]
            payload = {"loss": 1 / (step + 1), "acc": step % 7}
            if step % 500 == 0:
                payload["sample"] = {"_type": "trackio.image", "file_path": "x.png"}
            if step % 777 == 0:
                payload["odd"] = "NaN"
            rows.append((run, name, trackio_stamp(step * 0.5), step, orjson.dumps(payload)))
    write_project(data_dir, rows)
    conn = sqlite3.connect(data_dir / "p.db")
    stored = conn.execute("SELECT id, run_id, run_name, timestamp, step, metrics "
                          "FROM metrics ORDER BY id").fetchall()
    conn.close()
    with mock.patch.object(live, "CHUNK", 1000):
        state = ProjectStore(data_dir, 2**30).get("p")
    assert_state_matches(state, stored)
    assert state.runs["id-a"].name == "a renamed" and len(state.rich) == 18
