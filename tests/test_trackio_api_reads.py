"""Trackio's read API: every name answers what trackio's own server answers on the same file.

A project written by the real `trackio` package (metrics of every kind, media, traces, alerts,
artifacts, a registry) is read through our app and through trackio's own ASGI app; the status
codes and JSON bodies must be equal, apart from the differences listed in KNOWN_DIFFERENCES.
"""

from __future__ import annotations

import inspect
import json
import re
import sqlite3
from pathlib import Path

import pytest
from trackio_zoo import run_trackio

from trackio_flask import create_app
from trackio_flask.trackio_api import NOT_SERVED, TrackioApi

README = Path(__file__).resolve().parent.parent / "README.md"

BUILD = """
    import math, os, pathlib, trackio, numpy as np
    work = pathlib.Path(os.environ["TRACKIO_DIR"]).parent
    (work / "model.txt").write_text("weights")
    (work / "notes.md").write_text("# notes")
    trackio.Api().create_registry("prod", description="production models")
    run = trackio.init(project="rich", name="alpha", config={"lr": 0.1, "nested": {"k": 1}},
                       auto_log_cpu=False)
    for step in range(30):
        trackio.log({"train/loss": 1 / (step + 1), "note": f"s{step}",
                     "nan": math.nan if step == 2 else step, "deep": {"a": step}})
    trackio.log({"img": trackio.Image(np.zeros((4, 4, 3), dtype=np.uint8), caption="c"),
                 "tbl": trackio.Table(columns=["a"], data=[[1], [2]]),
                 "hist": trackio.Histogram([1, 2, 3]), "md": trackio.Markdown("# report")}, step=30)
    trackio.log({"tr": trackio.Trace(messages=[{"role": "user", "content": "Hello world"}],
                                     metadata={"m": 1})}, step=31)
    trackio.log({"tr": [trackio.Trace(messages=[{"role": "assistant", "content": "second"}])]},
                step=32)
    trackio.log_system({"cpu/0/util": 5.0, "mem": 1.0})
    trackio.alert("warn one", text="t1", level=trackio.AlertLevel.WARN)
    trackio.alert("err one", level=trackio.AlertLevel.ERROR)
    art = trackio.Artifact("model", type="model")
    art.add_file(str(work / "model.txt"))
    art = trackio.log_artifact(art, aliases=["best"])
    run.link_artifact(art, "registry-prod/model", aliases=["staging"])
    trackio.save(str(work / "notes.md"))
    trackio.finish()
    trackio.init(project="rich", name="beta", config={"lr": 0.2}, auto_log_cpu=False)
    for step in range(10):
        trackio.log({"train/loss": 2 / (step + 1)})
    trackio.use_artifact("model:latest")
    trackio.alert("info b", level=trackio.AlertLevel.INFO)
    trackio.finish()
    # A second run named alpha: names resolve to the latest run, per table.
    trackio.init(project="rich", name="alpha", config={"lr": 0.3}, auto_log_cpu=False)
    trackio.log({"train/loss": 9.0})
    trackio.finish()
"""

TRACKIO_SERVER = """
    import json, sys
    from starlette.testclient import TestClient
    from trackio import server
    from trackio.asgi_app import create_trackio_starlette_app
    app = create_trackio_starlette_app([], server._api_registry(), write_apis=server.WRITE_APIS)
    client = TestClient(app)
    out = []
    for name, body in json.loads(sys.argv[1]):
        response = client.post(f"/api/{name}", json=body)
        out.append([response.status_code, response.json()])
    print(json.dumps(out))
"""

# (name, body) -> why our answer differs on purpose.
KNOWN_DIFFERENCES = {
    "query_project": "trackio answers 500 for refused or failing queries; we answer 400",
    "get_settings": "trackio's default logos are files of its own package; ours are null",
}


def trackio_answers(data_dir: Path, calls: list[tuple[str, object]]) -> list[list]:
    """[status, body] per call from trackio's own ASGI app over `data_dir`."""
    import os
    import subprocess
    import sys
    import textwrap

    env = {**os.environ, "TRACKIO_DIR": str(data_dir), "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(TRACKIO_SERVER),
                           json.dumps(calls)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def our_answers(client, calls: list[tuple[str, object]]) -> list[list]:
    out = []
    for name, body in calls:
        response = client.post(f"/api/{name}", json=body)
        out.append([response.status_code, response.get_json()])
    return out


def assert_same(calls, ours, theirs):
    mismatches = [f"{name} {json.dumps(body)[:200]}\n  ours:   {json.dumps(a)[:400]}\n"
                  f"  theirs: {json.dumps(b)[:400]}"
                  for (name, body), a, b in zip(calls, ours, theirs, strict=True) if a != b]
    assert not mismatches, "\n".join(mismatches)


@pytest.fixture(scope="module")
def rich_dir(tmp_path_factory) -> Path:
    """A data dir written by trackio itself: two runs named alpha, one beta, every value kind."""
    data_dir = tmp_path_factory.mktemp("rich") / "trackio"
    data_dir.mkdir()
    run_trackio(data_dir, BUILD)
    return data_dir


@pytest.fixture
def rich_client(rich_dir):
    return create_app({"DATA_DIR": rich_dir, "TESTING": True,
                       "RATELIMIT_ENABLED": False}).test_client()


def kw(**values):
    return {"args": [], "kwargs": values}


READS = [
    ("get_all_projects", kw()),
    ("get_runs_for_project", kw(project="rich")),
    ("get_run_configs", kw(project="rich")),
    ("get_project_summary", kw(project="rich")),
    ("get_run_summary", kw(project="rich", run="alpha")),
    ("get_run_summary", kw(project="rich", run="beta")),
    ("get_metrics_for_run", kw(project="rich", run="alpha")),
    ("get_metrics_for_run", kw(project="rich", run="nope")),
    ("get_system_metrics_for_run", kw(project="rich", run="alpha")),
    ("get_logs", kw(project="rich", run="alpha")),
    ("get_logs", kw(project="rich", run="beta", scalar_only=True)),
    ("get_system_logs", kw(project="rich", run="alpha")),
    ("get_logs_batch", kw(project="rich", runs=[{"run": "alpha"}, {"run": "beta"}],
                          scalar_only=True)),
    ("get_system_logs_batch", kw(project="rich", runs=[{"run": "alpha"}])),
    ("get_metric_values", kw(project="rich", run="alpha", metric_name="train/loss")),
    ("get_metric_values", kw(project="rich", run="alpha", metric_name="nan", around_step=3,
                             window=2)),
    ("get_metric_values", kw(project="rich", run="alpha", metric_name="note", step=5)),
    ("get_metric_values", kw(project="rich", run="alpha", metric_name="train/loss",
                             max_points=4)),
    ("get_metric_values", kw(project="rich", run="alpha", metric_name="train/loss",
                             at_time="2000-01-01T00:00:00", window=5)),
    ("get_snapshot", kw(project="rich", run="alpha", step=30)),
    ("get_snapshot", kw(project="rich", run="alpha", around_step=2, window=1)),
    ("get_alerts", kw(project="rich")),
    ("get_alerts", kw(project="rich", level="error")),
    ("get_alerts", kw(project="rich", run="beta")),
    ("get_alerts", kw(project="rich", since="2000-01-01")),
    ("get_alerts", kw(project="rich", run="nope")),
    ("get_traces", kw(project="rich", run="alpha")),
    ("get_traces", kw(project="rich", run="alpha", search="hello", sort="step_asc")),
    ("get_traces", kw(project="rich", run="alpha", limit=1, offset=1)),
    ("get_traces", kw(project="rich", run="alpha", sort="weird", step=31)),
    ("get_trace_steps", kw(project="rich", run="alpha")),
    ("get_trace_steps", kw(project="rich", run="beta")),
    ("get_tab_availability", kw(project="rich")),
    ("get_project_files", kw(project="rich")),
    ("query_project", kw(project="rich", query="SELECT run_name, COUNT(*) AS n FROM metrics "
                                               "GROUP BY run_name ORDER BY run_name")),
    ("query_project", kw(project="rich", query="PRAGMA table_info(alerts)")),
    ("get_artifacts", kw(project="rich")),
    ("list_artifacts", kw(project="rich")),
    ("get_artifact_manifest", kw(project="rich", name="model", spec="best")),
    ("get_artifact_manifest", kw(project="rich", name="model", spec=None)),
    ("get_artifact_manifest", kw(project="rich", name="model", spec="v0")),
    ("get_artifact_manifest", kw(project="rich", name="zzz", spec=None)),
    ("get_run_artifacts", kw(project="rich", run="beta")),
    ("get_run_artifacts", kw(project="rich", run="alpha")),
    ("get_run_artifacts", kw(project="rich")),
    ("get_run_artifact_counts", kw(project="rich")),
    ("get_artifact_consumers", kw(project="rich", version_id=1)),
    ("get_artifact_lineage", kw(project="rich", version_id=1)),
    ("get_artifact_lineage", kw(project="rich", version_id=99)),
    ("get_registries", kw()),
    ("get_registry_details", kw(registry="prod")),
    # Positional bodies, as trackio's CLI sends them.
    ("get_metrics_for_run", ["rich", "alpha"]),
    ("get_alerts", {"data": ["rich", None, None, "warn", None]}),
    ("get_metric_values", ["rich", "alpha", "train/loss", None, 10, None, 3]),
    ("get_traces", ["rich", "alpha", None, "second", None, 50, 0, None]),
]

UNKNOWN_PROJECT_AND_ERRORS = [
    ("get_runs_for_project", kw()),
    ("get_metric_values", kw(project="rich", run="alpha")),
    ("get_alerts", kw()),
    ("get_run_summary", kw(project="nope", run="x")),
    ("get_run_summary", kw(project="rich", run_id="missing-id")),
    ("get_metrics_for_run", kw(project="nope")),
    ("get_alerts", kw(project="nope")),
    ("get_traces", kw(project="nope")),
    ("get_tab_availability", kw(project="nope")),
    ("get_project_files", kw(project="nope")),
    ("get_snapshot", kw(project="rich", run="nope", step=1)),
    ("get_project_summary", kw(project="nope")),
    ("get_artifacts", kw(project="nope")),
    ("get_artifact_manifest", kw(project="rich", name="model")),
    ("get_registry_details", kw(registry="bad name!")),
    ("get_registry_details", kw(registry="nope")),
]


def test_every_read_answers_like_trackios_server_on_a_file_trackio_wrote(rich_dir, rich_client):
    ours = our_answers(rich_client, READS)
    theirs = trackio_answers(rich_dir, READS)
    assert_same(READS, ours, theirs)


def test_get_run_summary_lists_every_logged_key_not_only_numbers(rich_client):
    body = rich_client.post("/api/get_run_summary", json=kw(project="rich", run="alpha")).json
    assert body["data"]["metrics"] == ["train/loss"]  # the latest "alpha" logged one number
    first = rich_client.post("/api/get_runs_for_project", json=["rich"]).json["data"][0]
    summary = rich_client.post("/api/get_run_summary",
                               json=kw(project="rich", run_id=first["id"])).json["data"]
    assert summary["metrics"] == ["deep", "hist", "img", "md", "nan", "note", "tbl", "train/loss"]


def test_errors_and_unknown_projects_answer_like_trackio(rich_dir, rich_client):
    calls = UNKNOWN_PROJECT_AND_ERRORS
    assert_same(calls, our_answers(rich_client, calls), trackio_answers(rich_dir, calls))


def test_a_missing_argument_names_the_parameter_like_trackio(rich_client):
    response = rich_client.post("/api/get_runs_for_project", json={})
    assert response.status_code == 400
    assert response.json == {"error": "Missing required parameter: project"}


def test_known_differences_are_only_status_codes_and_logo_urls(rich_dir, rich_client):
    calls = [("query_project", kw(project="rich", query="DELETE FROM metrics")),
             ("query_project", kw(project="nope", query="select 1")),
             ("query_project", kw(project="rich", query="select 1; select 2")),
             ("get_settings", kw())]
    ours, theirs = our_answers(rich_client, calls), trackio_answers(rich_dir, calls)
    for (status, body), (their_status, their_body) in zip(ours[:3], theirs[:3], strict=True):
        assert (status, their_status) == (400, 500) and body == their_body
    settings, their_settings = ours[3][1]["data"], theirs[3][1]["data"]
    assert {k: v for k, v in settings.items() if k != "logo_urls"} == \
        {k: v for k, v in their_settings.items() if k != "logo_urls"}
    assert set(KNOWN_DIFFERENCES) == {"query_project", "get_settings"}


def test_the_api_names_and_signatures_are_trackios():
    from trackio import server

    registry = server._api_registry()
    ours = set(TrackioApi.READS) | set(TrackioApi.WRITES) | set(NOT_SERVED)
    assert ours == set(registry) and len(ours) == 44
    assert not set(TrackioApi.READS) & set(TrackioApi.WRITES)
    assert not (set(TrackioApi.READS) | set(TrackioApi.WRITES)) & set(NOT_SERVED)
    for name in set(TrackioApi.READS) | set(TrackioApi.WRITES):
        theirs = [p for p in inspect.signature(registry[name]).parameters if p != "request"]
        mine = [p for p in inspect.signature(getattr(TrackioApi, name)).parameters
                if p not in ("self", "caller")]
        assert mine == theirs, name


def test_the_readme_table_lists_all_44_names_with_what_they_do_here():
    text = README.read_text()
    section = text.split("## Trackio's HTTP API", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.MULTILINE))
    assert set(rows) == set(TrackioApi.READS) | set(TrackioApi.WRITES) | set(NOT_SERVED)
    for name, status in rows.items():
        expected = "501" if name in NOT_SERVED else "write" if name in TrackioApi.WRITES \
            else "read"
        assert expected in status, (name, status)


@pytest.mark.parametrize("name", sorted(NOT_SERVED))
def test_names_that_need_the_hub_answer_501_saying_why(client, name):
    response = client.post(f"/api/{name}", json={})
    assert response.status_code == 501
    assert "not served" in response.json["error"]


@pytest.mark.parametrize("body", [kw(bucket_id="me/bucket"), kw(registry="prod",
                                                                bucket_id="me/bucket")])
def test_bucket_registries_answer_501(client, body):
    name = "get_registry_details" if "registry" in body["kwargs"] else "get_registries"
    response = client.post(f"/api/{name}", json=body)
    assert response.status_code == 501 and "Hugging Face" in response.json["error"]


def test_arguments_a_name_does_not_take_are_refused(client):
    response = client.post("/api/get_all_projects", json=["surplus"])
    assert response.status_code == 400 and "bad arguments" in response.json["error"]
    response = client.post("/api/get_run_mutation_status", json={"caller": {"can_write": True}})
    assert response.status_code == 400 and "bad arguments" in response.json["error"]


class TestQueryProject:
    """query_project is read-only and bounded in time, rows and bytes."""

    @pytest.fixture
    def app(self, data_dir, project_db):
        # A generous clock: the limit under test stops the statement, also on a busy machine.
        return create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_ENABLED": False,
                           "QUERY_TIMEOUT_S": 60.0})

    def query(self, client, sql):
        response = client.post("/api/query_project", json=kw(project="p", query=sql))
        return response.status_code, response.json

    def test_selects_rows_with_columns_and_count(self, client):
        status, body = self.query(client, "SELECT run_name, COUNT(*) AS n FROM metrics "
                                          "GROUP BY run_name ORDER BY run_name;")
        assert status == 200
        assert body["data"]["columns"] == ["run_name", "n"]
        assert body["data"]["rows"] == [{"run_name": "alpha", "n": 50},
                                        {"run_name": "beta", "n": 30}]
        assert body["data"]["row_count"] == 2

    @pytest.mark.parametrize("sql,message", [
        ("DELETE FROM metrics", "Only read-only"),
        ("UPDATE metrics SET step = 0", "Only read-only"),
        ("WITH x AS (SELECT 1) DELETE FROM metrics", "not authorized"),
        ("SELECT 1; DELETE FROM metrics", "one statement"),
        ("PRAGMA query_only = 0", "not authorized"),
        ("PRAGMA writable_schema = 1", "not authorized"),
        ("SELECT * FROM pragma_database_list", "not authorized"),
        ("SELECT load_extension('x')", "not authorized"),
        ("   ", "cannot be empty"),
    ])
    def test_anything_but_one_read_is_refused_and_nothing_changes(self, client, data_dir, sql,
                                                                  message):
        status, body = self.query(client, sql)
        assert status == 400 and message in body["error"]
        conn = sqlite3.connect(data_dir / "p.db")
        assert conn.execute("SELECT COUNT(*), MIN(step) FROM metrics").fetchone() == (80, 0)
        conn.close()

    def test_more_than_10000_rows_is_refused(self, client):
        status, body = self.query(client, "SELECT a.id FROM metrics a, metrics b, metrics c")
        assert status == 400 and "more than 10000 rows" in body["error"]

    def test_huge_values_are_refused(self, client):
        status, body = self.query(client, "SELECT randomblob(50000000)")
        assert status == 400 and "too big" in body["error"]

    def test_a_query_that_runs_too_long_is_stopped(self, data_dir, project_db):
        client = create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_ENABLED": False,
                             "QUERY_TIMEOUT_S": 0.05}).test_client()
        status, body = self.query(client, "SELECT COUNT(*) FROM metrics a, metrics b, metrics c, "
                                          "metrics d, metrics e")
        assert status == 400 and "took longer than" in body["error"]

    def test_recursive_queries_are_refused_like_trackio(self, client):
        status, body = self.query(client, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                                          "SELECT x + 1 FROM c) SELECT COUNT(*) FROM c")
        assert status == 400 and "not authorized" in body["error"]

    def test_non_string_query_is_400(self, client):
        response = client.post("/api/query_project", json=kw(project="p", query=["x"]))
        assert response.status_code == 400


@pytest.mark.parametrize("name,body", [
    ("get_metric_values", kw(project="p", run="alpha", metric_name="x", step="soon")),
    ("get_metric_values", kw(project="p", run="alpha", metric_name="x", window=[1])),
    ("get_traces", kw(project="p", run="alpha", limit=-1)),
    ("get_alerts", kw(project="p", level=3)),
    ("get_artifact_lineage", kw(project="p", version_id="one")),
    ("get_run_summary", kw(project="p", run=7)),
    ("get_metrics_for_run", kw(project="../p")),
    ("get_registry_details", kw(registry="../x")),
])
def test_hostile_arguments_are_a_clear_400(client, project_db, name, body):
    response = client.post(f"/api/{name}", json=body)
    assert response.status_code == 400 and response.json["error"]


def test_system_logs_resolve_a_name_among_runs_with_system_rows(rich_client):
    logs = rich_client.post("/api/get_system_logs", json=kw(project="rich", run="alpha")).json
    assert [row["mem"] for row in logs["data"]] == [1.0]


def test_a_project_only_trackio_knows_reads_alike(tmp_path):
    """An old run_name-only file (Trackio 0.15 era) answers like trackio too."""
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "old.db")
    conn.executescript("""
        CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT, run_name TEXT,
                              step INTEGER, metrics TEXT);
        CREATE TABLE configs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_name TEXT, config TEXT,
                              created_at TEXT, UNIQUE(run_name));
        INSERT INTO metrics (timestamp, run_name, step, metrics) VALUES
            ('2024-01-01T00:00:00', 'r', 0, '{"a": 1, "s": "x"}'),
            ('2024-01-01T00:00:01', 'r', 1, '{"a": 2, "b": "NaN"}');
        INSERT INTO configs (run_name, config, created_at) VALUES ('r', '{"lr": 1}', '2024');
    """)
    conn.commit()
    conn.close()
    calls = [("get_run_summary", kw(project="old", run="r")),
             ("get_metrics_for_run", kw(project="old", run="r")),
             ("get_metric_values", kw(project="old", run="r", metric_name="b")),
             ("get_snapshot", kw(project="old", run="r", step=1)),
             ("get_alerts", kw(project="old")),
             ("get_traces", kw(project="old", run="r")),
             ("get_tab_availability", kw(project="old"))]
    client = create_app({"DATA_DIR": data_dir, "TESTING": True,
                         "RATELIMIT_ENABLED": False}).test_client()
    ours = our_answers(client, calls)  # before trackio's server migrates the file
    assert_same(calls, ours, trackio_answers(data_dir, calls))


@pytest.mark.parametrize("module", ["trackio_reads.py", "media.py", "artifacts.py"])
def test_the_api_helpers_do_not_import_web_frameworks(module):
    from test_architecture import PACKAGE, imported_modules

    found = imported_modules(PACKAGE / module) & {"flask", "werkzeug", "flask_caching",
                                                  "flask_limiter", "jinja2"}
    assert not found, f"{module} imports {found}"
