"""Heavy token-less reads (issue 18, D1-D4, D12, D2): query_project runs where it can be stopped,
heavy reads have budgets of their own, answers are bounded in rows and in bytes on the wire."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path

import pytest
from builders import ProjectDB
from helpers import run_child

from trackio_flask import create_app, storage


def make_app(data_dir: Path, **config):
    # A generous clock, so the limit under test (rows, bytes, memory) is the one that stops a
    # statement even when a busy machine leaves the idle-priority child little CPU.
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_ENABLED": False,
                       "QUERY_TIMEOUT_S": 60.0, **config})


def query(client, sql: str, project: str = "p"):
    response = client.post("/api/query_project", json={"project": project, "query": sql})
    return response.status_code, response.json, len(response.data)


def post_in_subprocess(data_dir: Path, name: str, body: dict, config: dict,
                       seconds: float = 40.0) -> tuple[int, dict]:
    """POST from a fresh app in a child process; fail (not hang) when it never answers.

    A statement stuck inside one SQLite function never returns to Python, so only a separate
    process can be timed out from the test."""
    code = textwrap.dedent(f"""
        import json
        from trackio_flask import create_app
        app = create_app({{"DATA_DIR": {str(data_dir)!r}, "RATELIMIT_ENABLED": False,
                           **{config!r}}})
        response = app.test_client().post({'/api/' + name!r}, json={body!r})
        print(json.dumps([response.status_code, response.json]))
    """)
    stdout = run_child(code, seconds, name)
    status, payload = json.loads(stdout.strip().splitlines()[-1])
    return status, payload


# D1: time spent inside one SQL function ----------------------------------------------------------

def test_a_statement_stuck_inside_one_sql_function_is_stopped(data_dir, project_db):
    # Each printf runs ~12 s inside SQLite with no progress callback; eight of them ran 74 s.
    sql = "SELECT " + ", ".join(f"length(printf('%.*c', 2147483647, 'x')) AS a{i}"
                                for i in range(8))
    status, body = post_in_subprocess(data_dir, "query_project", {"project": "p", "query": sql},
                                      {"QUERY_TIMEOUT_S": 1.0})
    assert status == 400
    assert "stopped" in body["error"]


# D3: the answer cap counts bytes on the wire -------------------------------------------------------

def test_query_answers_are_capped_in_bytes_on_the_wire(data_dir, project_db):
    client = make_app(data_dir).test_client()
    # 4 MB of NUL characters is 24 MB as JSON ("\u0000" each); four rows were a 96 MB answer.
    status, body, size = query(client, "SELECT zeroblob(4000000) AS z FROM metrics LIMIT 4")
    assert status == 400 and "larger than" in body["error"]
    assert size < 4096


# D4: nothing spills to disk ------------------------------------------------------------------------

def test_a_sort_bigger_than_the_memory_budget_fails_in_memory(data_dir, project_db):
    client = make_app(data_dir, QUERY_MEMORY_MB=64).test_client()
    # 6,400 rows of 50 kB to sort: ~320 MB, which SQLite used to spill into temp files.
    status, body, _ = query(client, "SELECT randomblob(50000) AS b FROM metrics a, metrics b "
                                    "ORDER BY random()")
    assert status == 400 and "memory" in body["error"]


# D12: functions outside the allow-list ---------------------------------------------------------

@pytest.mark.parametrize("sql", ["SELECT fts3_tokenizer('simple')",
                                 "SELECT hex(fts3_tokenizer('porter'))",
                                 "SELECT sqlite_log(1, 'x')"])
def test_functions_outside_the_allow_list_are_refused(data_dir, project_db, sql):
    status, body, _ = query(make_app(data_dir).test_client(), sql)
    assert status == 400 and "not authorized" in body["error"]


def test_ordinary_functions_still_work(data_dir, project_db):
    status, body, _ = query(make_app(data_dir).test_client(),
                            "SELECT COUNT(*) AS n, MAX(round(abs(step) * 1.0, 1)) AS top, "
                            "SUM(json_extract(metrics, '$.\"train/loss\"') > 0) AS losses, "
                            "printf('%05d', 7) AS padded FROM metrics WHERE json_valid(metrics)")
    assert status == 200
    assert body["data"]["rows"] == [{"n": 80, "top": 49.0, "losses": 80, "padded": "00007"}]


# Budgets of their own: never queued behind viewers -------------------------------------------------

@pytest.fixture
def blocked_heavy_read(monkeypatch):
    """Make get_snapshot wait until the test lets it go, so its slot stays taken."""
    from trackio_flask import trackio_reads

    entered, release = threading.Event(), threading.Event()
    original = trackio_reads.snapshot

    def slow_snapshot(*args, **kwargs):
        entered.set()
        release.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(trackio_reads, "snapshot", slow_snapshot)
    yield entered, release
    release.set()


def test_heavy_reads_past_their_slots_get_503_with_retry_after(data_dir, project_db,
                                                               blocked_heavy_read):
    entered, release = blocked_heavy_read
    app = make_app(data_dir, HEAVY_READ_SLOTS=1)
    body = {"project": "p", "run": "alpha"}
    first: list = []
    holder = threading.Thread(target=lambda: first.append(
        app.test_client().post("/api/get_snapshot", json=body)))
    holder.start()
    try:
        assert entered.wait(30)
        client = app.test_client()
        refused = client.post("/api/get_logs", json=body)
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
        assert "busy" in refused.json["error"]
        # Light reads and the version probe are not in that budget.
        assert client.get("/version").status_code == 200
        assert client.post("/api/get_runs_for_project", json={"project": "p"}).status_code == 200
    finally:
        release.set()
        holder.join(30)
    assert first[0].status_code == 200


def test_queries_past_their_slots_get_503(data_dir, project_db):
    app = make_app(data_dir, QUERY_SLOTS=1)
    api = app.extensions["trackio_api"]
    with api.query_slots.taken():
        status, body, _ = query(app.test_client(), "SELECT 1 AS x")
    assert status == 503 and "busy" in body["error"]
    assert query(app.test_client(), "SELECT 1 AS x")[0] == 200


# D2: get_logs_batch reads each run once and only the points it sends -------------------------------

@pytest.fixture
def long_run(data_dir):
    db = ProjectDB(data_dir / "long.db")
    db.log_many("r", range(3000), lambda s: {"loss": 1 / (s + 1), "acc": s / 3000})
    db.close()


class CountingConnection:
    """A read-only connection that counts the bytes of every value its reads fetch."""

    def __init__(self, conn, counted: list[int]) -> None:
        self._conn, self._counted = conn, counted

    def execute(self, *args):
        rows = self._conn.execute(*args).fetchall()
        self._counted[0] += sum(len(v) if isinstance(v, str | bytes) else 8
                                for row in rows for v in row)
        return FetchedRows(rows)

    def __getattr__(self, name):
        return getattr(self._conn, name)


class FetchedRows(list):
    def fetchall(self):
        return list(self)

    def fetchone(self):
        return self[0] if self else None


@pytest.fixture
def fetched_bytes(monkeypatch):
    """Count the bytes of rows the Trackio API reads from project databases."""
    counted = [0]
    original = storage.open_readonly
    monkeypatch.setattr(storage, "open_readonly",
                        lambda *args, **kwargs: CountingConnection(original(*args, **kwargs),
                                                                   counted))
    return counted


def batch_cost(client, counted, entries: int, max_points: int) -> int:
    counted[0] = 0
    response = client.post("/api/get_logs_batch", json={
        "project": "long", "runs": [{"run": "r"}] * entries, "max_points": max_points})
    assert response.status_code == 200
    assert all(len(item["logs"]) == min(max_points, 3000) for item in response.json["data"])
    return counted[0]


def test_logs_batch_reads_a_run_named_many_times_once(data_dir, long_run, fetched_bytes):
    client = make_app(data_dir).test_client()
    batch_cost(client, fetched_bytes, 1, 10)  # the project's first read catches its store up
    once = batch_cost(client, fetched_bytes, 1, 10)
    assert batch_cost(client, fetched_bytes, 64, 10) <= 2 * once


def test_logs_batch_reads_only_the_points_it_sends(data_dir, long_run, fetched_bytes):
    client = make_app(data_dir).test_client()
    batch_cost(client, fetched_bytes, 1, 10)  # the project's first read catches its store up
    few, every = batch_cost(client, fetched_bytes, 1, 10), batch_cost(client, fetched_bytes, 1, 3000)
    assert 3 * few < every, (few, every)


# D2: unfiltered snapshots and metric values are bounded ------------------------------------------

def test_unfiltered_snapshots_and_metric_values_read_a_bounded_number_of_rows(
        data_dir, long_run, monkeypatch):
    from trackio_flask import trackio_reads

    monkeypatch.setattr(trackio_reads, "WINDOW_MAX_ROWS", 100)
    client = make_app(data_dir).test_client()
    snapshot = client.post("/api/get_snapshot", json={"project": "long", "run": "r"}).json
    assert {key: len(points) for key, points in snapshot["data"].items()} == \
        {"loss": 100, "acc": 100}
    assert snapshot["data"]["loss"][-1]["step"] == 2999  # the newest row is always kept
    values = client.post("/api/get_metric_values",
                         json={"project": "long", "run": "r", "metric_name": "loss"}).json
    assert len(values["data"]) == 100
    windowed = client.post("/api/get_snapshot", json={"project": "long", "run": "r",
                                                      "around_step": 1000, "window": 5}).json
    assert len(windowed["data"]["loss"]) == 11  # a window under the bound is whole


def test_api_answers_over_the_byte_limit_are_refused_with_advice(data_dir, long_run):
    client = make_app(data_dir, API_ANSWER_MAX_MB=1).test_client()
    response = client.post("/api/get_logs_batch", json={
        "project": "long", "runs": [{"run": "r"}] * 64, "max_points": 3000})
    assert response.status_code == 413 and "max_points" in response.json["error"]
    small = client.post("/api/get_logs_batch", json={
        "project": "long", "runs": [{"run": "r"}], "max_points": 100})
    assert small.status_code == 200
