"""Trackio's write API beyond the log batches: legacy log, traces, run rename and delete,
artifacts, mutation status, force_sync; and the rate limits sized from measured client traffic."""

from __future__ import annotations

import hashlib
import io
import sqlite3

import pytest
from test_trackio_api_reads import assert_same, kw, our_answers, trackio_answers

from trackio_flask import create_app

TOKEN = "s3cret-token"
AUTH = {"X-Trackio-Write-Token": TOKEN}


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                       "RATELIMIT_ENABLED": False})


def call(client, name, body, token=TOKEN):
    headers = {"X-Trackio-Write-Token": token} if token else {}
    response = client.post(f"/api/{name}", json=body, headers=headers)
    return response.status_code, response.get_json()


def rows(path, sql, params=()):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def stage(client, content: bytes, name: str) -> str:
    response = client.post("/api/upload", data={"files": (io.BytesIO(content), name)},
                           headers=AUTH, content_type="multipart/form-data")
    assert response.status_code == 200, response.json
    return response.json["paths"][0]


def log_run(client, run="r", run_id="rid", steps=3, project="p", extra=None):
    logs = [{"project": project, "run": run, "run_id": run_id, "step": step,
             "metrics": {"loss": 1.0 / (step + 1), **(extra or {})}, "log_id": f"{run_id}-{step}",
             "config": {"lr": 0.1} if step == 0 else None}
            for step in range(steps)]
    assert call(client, "bulk_log", {"logs": logs})[0] == 200


def with_image(client, run="r", run_id="rid", project="p", step=5) -> str:
    """Upload one image the way trackio's client does and log the row that refers to it."""
    path = stage(client, b"\x89PNG fake", "img.png")
    relative = f"{project}/{run}/{step}/img.png"
    status, body = call(client, "bulk_upload_media", kw(uploads=[{
        "project": project, "run": run, "run_id": run_id, "step": step, "relative_path": None,
        "uploaded_file": {"path": path, "orig_name": "img.png"}}], hf_token=None))
    assert status == 200, body
    row = {"project": project, "run": run, "run_id": run_id, "step": step, "log_id": f"img{step}",
           "metrics": {"img": {"_type": "trackio.image", "file_path": relative, "caption": None},
                       "tbl": {"_type": "trackio.table",
                               "_value": [{"i": {"_type": "trackio.image",
                                                 "file_path": relative}}]}}}
    assert call(client, "bulk_log", {"logs": [row]})[0] == 200
    return relative


class TestLegacyLog:
    def test_log_stores_one_row_and_continues_the_steps(self, client, data_dir):
        log_run(client, steps=2)
        body = kw(project="p", run="r", metrics={"loss": 0.5}, step=None, hf_token=None,
                  run_id="rid")
        assert call(client, "log", body) == (200, {"data": None})
        assert rows(data_dir / "p.db", "SELECT step FROM metrics ORDER BY id") == [(0,), (1,), (2,)]

    def test_log_needs_every_parameter_trackio_requires(self, client):
        status, body = call(client, "log", kw(project="p", run="r", metrics={}))
        assert status == 400 and body["error"] == "Missing required parameter: step"


class TestTraces:
    TRACE = {"_type": "trackio.trace", "messages": [{"role": "user", "content": "Find ME"}],
             "metadata": {"model": "m1"}, "spans": [{"name": "tool", "input": "secret"}]}

    def test_trace_values_go_to_the_traces_table_once(self, client, data_dir):
        entry = {"project": "p", "run": "r", "run_id": "rid", "step": 4, "log_id": "L1",
                 "metrics": {"loss": 1.0, "chat": self.TRACE, "many": [self.TRACE, 3]}}
        for _ in range(2):  # a replayed batch stores its traces once
            assert call(client, "bulk_log", {"logs": [entry]})[0] == 200
        assert rows(data_dir / "p.db", "SELECT id, key, trace_index, step FROM traces ORDER BY id") \
            == [("rid:L1:chat", "chat", None, 4), ("rid:L1:many:0", "many", 0, 4)]
        kept = rows(data_dir / "p.db", "SELECT CAST(metrics AS TEXT) FROM metrics")
        assert kept == [('{"loss":1.0,"many":[3]}',)]
        status, body = call(client, "get_traces", kw(project="p", run="r", search="find me"))
        assert status == 200 and len(body["data"]) == 2
        assert call(client, "get_traces", kw(project="p", run="r", search="secret"))[1] == \
            {"data": []}  # span inputs are not searchable, as in trackio

    def test_trackio_reads_the_traces_we_stored(self, client, data_dir):
        entry = {"project": "p", "run": "r", "run_id": "rid", "step": 1, "log_id": "L2",
                 "metrics": {"chat": self.TRACE}}
        assert call(client, "bulk_log", {"logs": [entry]})[0] == 200
        calls = [("get_traces", kw(project="p", run="r")),
                 ("get_trace_steps", kw(project="p", run="r")),
                 ("get_tab_availability", kw(project="p"))]
        assert_same(calls, our_answers(client, calls), trackio_answers(data_dir, calls))


class TestRename:
    def test_rename_moves_rows_media_and_paths_and_trackio_agrees(self, client, data_dir):
        log_run(client)
        relative = with_image(client)
        status, body = call(client, "rename_run", kw(project="p", old_name="r", new_name=" new ",
                                                     run_id="rid"))
        assert (status, body) == (200, {"data": True})
        media = data_dir / "media" / "p"
        assert not (data_dir / "media" / relative).exists()
        assert (media / "new" / "5" / "img.png").read_bytes() == b"\x89PNG fake"
        assert rows(data_dir / "p.db", "SELECT DISTINCT run_name FROM metrics") == [("new",)]
        assert rows(data_dir / "p.db", "SELECT run_name FROM configs") == [("new",)]
        calls = [("get_logs", kw(project="p", run="new")),
                 ("get_run_summary", kw(project="p", run="new")),
                 ("get_runs_for_project", kw(project="p"))]
        ours = our_answers(client, calls)
        assert ours[0][1]["data"][-1]["img"]["file_path"] == "p/new/5/img.png"
        assert ours[0][1]["data"][-1]["tbl"]["_value"][0]["i"]["file_path"] == "p/new/5/img.png"
        assert_same(calls[:2], ours[:2], trackio_answers(data_dir, calls[:2]))
        assert [r["name"] for r in ours[2][1]["data"]] == ["new"]

    def test_renamed_files_are_served_at_their_new_path(self, client, data_dir):
        log_run(client)
        with_image(client)
        call(client, "rename_run", kw(project="p", old_name="r", new_name="renamed"))
        with client.get("/file?path=p/renamed/5/img.png") as response:
            assert response.status_code == 200
        assert client.get("/file?path=p/r/5/img.png").status_code == 404

    @pytest.mark.parametrize("body,message", [
        (kw(project="p", old_name="r", new_name="  "), "New run name cannot be empty"),
        (kw(project="p", old_name="ghost", new_name="x"), "Run 'ghost' does not exist in project 'p'"),
        (kw(project="zz", old_name="r", new_name="x"), "Project 'zz' does not exist"),
        (kw(project="p", old_name="r", new_name="a/../../etc"), "cannot be used as a folder"),
        (kw(project="p", old_name="r", new_name="tab\there"), "printable"),
        (kw(project="p", old_name="r", new_name=5), "new_name must be a string"),
        (kw(project="p", old_name="r"), "Missing required parameter: new_name"),
    ])
    def test_bad_renames_are_400_and_change_nothing(self, client, data_dir, body, message):
        log_run(client)
        status, answer = call(client, "rename_run", body)
        assert status == 400 and message in answer["error"]
        assert rows(data_dir / "p.db", "SELECT DISTINCT run_name FROM metrics") == [("r",)]
        assert not (data_dir / "zz.db").exists()

    def test_rename_needs_the_write_token(self, client, data_dir):
        log_run(client)
        assert call(client, "rename_run", kw(project="p", old_name="r", new_name="x"),
                    token=None)[0] == 403
        assert rows(data_dir / "p.db", "SELECT DISTINCT run_name FROM metrics") == [("r",)]


class TestDelete:
    def test_delete_removes_the_run_everywhere_and_answers_true(self, client, data_dir):
        log_run(client, run="keep", run_id="k")
        log_run(client, run="gone", run_id="g", extra={"chat": TestTraces.TRACE})
        call(client, "bulk_alert", {"alerts": [{"project": "p", "run": "gone", "run_id": "g",
                                                "title": "t", "level": "warn"}]})
        assert call(client, "delete_run", kw(project="p", run="gone")) == (200, {"data": True})
        for table in ("metrics", "configs", "alerts", "traces"):
            assert rows(data_dir / "p.db", f"SELECT COUNT(*) FROM {table} WHERE run_id = 'g'") \
                == [(0,)], table
        assert rows(data_dir / "p.db", "SELECT COUNT(*) FROM metrics") == [(3,)]
        names = call(client, "get_runs_for_project", kw(project="p"))[1]["data"]
        assert [r["name"] for r in names] == ["keep"]

    def test_unknown_runs_and_projects_answer_false_and_create_nothing(self, client, data_dir):
        log_run(client)
        assert call(client, "delete_run", kw(project="p", run="ghost")) == (200, {"data": False})
        assert call(client, "delete_run", kw(project="zz", run="r")) == (200, {"data": False})
        assert not (data_dir / "zz.db").exists()


class TestMutationStatusAndSync:
    def test_mutation_status_tells_whether_the_caller_holds_the_token(self, client):
        assert call(client, "get_run_mutation_status", kw(), token=None)[1]["data"] == \
            {"spaces": False, "allowed": False, "auth": "none"}
        assert call(client, "get_run_mutation_status", kw())[1]["data"] == \
            {"spaces": False, "allowed": True, "auth": "local"}

    def test_force_sync_answers_success(self, client):
        assert call(client, "force_sync", kw(), token=None) == (200, {"data": True})


class TestArtifacts:
    CONTENT = b"model weights"
    DIGEST = hashlib.sha256(CONTENT).hexdigest()

    def manifest(self):
        return [{"path": "model.bin", "digest": self.DIGEST, "size": len(self.CONTENT)},
                {"path": "data", "digest": "etag-1", "size": 9, "ref": "s3://bucket/data"}]

    def upload_blob(self, client, content=CONTENT, digest=DIGEST):
        path = stage(client, content, "blob")
        return call(client, "bulk_upload_artifact_blob", kw(
            project="p", uploads=[{"project": "p", "digest": digest,
                                   "uploaded_file": {"path": path}}], hf_token=None))

    def log(self, client, **extra):
        body = dict(project="p", name="model", type="model", description="d", metadata={"a": 1},
                    manifest=self.manifest(), aliases=["best"], run_name="r", run_id="rid",
                    hf_token=None)
        body.update(extra)
        return call(client, "artifact_log", kw(**body))

    def test_blobs_upload_then_commit_then_download(self, client, data_dir):
        log_run(client)
        check = kw(project="p", digests=[self.DIGEST], hf_token=None)
        assert call(client, "check_artifact_blobs", check)[1] == {"data": {"present": []}}
        assert self.upload_blob(client) == (200, {"data": None})
        assert call(client, "check_artifact_blobs", check)[1] == \
            {"data": {"present": [self.DIGEST]}}
        status, record = self.log(client)
        assert status == 200, record
        record = record["data"]
        assert (record["version"], sorted(record["aliases"]), record["producer_run_name"]) == \
            (0, ["best", "latest"], "r")
        assert [e["path"] for e in record["manifest"]] == ["data", "model.bin"]
        with client.get(f"/artifact_blob/p/{self.DIGEST}") as blob:
            assert blob.status_code == 200 and blob.data == self.CONTENT
            assert blob.headers["X-Content-Type-Options"] == "nosniff"

    def test_relogging_the_same_content_keeps_its_version(self, client):
        log_run(client)
        self.upload_blob(client)
        assert self.log(client)[1]["data"]["version"] == 0
        assert self.log(client, aliases=[])[1]["data"]["version"] == 0

    def test_use_and_reads_agree_with_trackio(self, client, data_dir):
        log_run(client)
        log_run(client, run="consumer", run_id="cid")
        self.upload_blob(client)
        version_id = self.log(client)[1]["data"]["version_id"]
        assert call(client, "log_artifact_use", kw(project="p", version_id=version_id,
                                                   run_name="consumer", run_id="cid",
                                                   hf_token=None)) == (200, {"data": None})
        calls = [("get_artifacts", kw(project="p")), ("list_artifacts", kw(project="p")),
                 ("get_artifact_manifest", kw(project="p", name="model", spec="best")),
                 ("get_run_artifacts", kw(project="p", run="consumer")),
                 ("get_run_artifacts", kw(project="p", run="r")),
                 ("get_run_artifact_counts", kw(project="p")),
                 ("get_artifact_consumers", kw(project="p", version_id=version_id)),
                 ("get_artifact_lineage", kw(project="p", version_id=version_id))]
        assert_same(calls, our_answers(client, calls), trackio_answers(data_dir, calls))

    @pytest.mark.parametrize("extra,message", [
        ({"name": "bad name"}, "must match"),
        ({"type": ""}, "Artifact type must be a non-empty string"),
        ({"overwrite": "yes"}, "Artifact overwrite must be a boolean"),
        ({"aliases": ["v3"]}, "reserved for version pointers"),
        ({"manifest": []}, "non-empty list"),
        ({"manifest": [{"path": "../x", "digest": "0" * 64, "size": 1}]}, "Invalid artifact path"),
        ({"manifest": [{"path": "x", "digest": "nothex", "size": 1}]}, "Invalid sha256 digest"),
        ({"manifest": [{"path": "x", "digest": "0" * 64, "size": -1}]}, "invalid size"),
        ({"manifest": [{"path": "x", "digest": "0" * 64, "size": 1}]}, "blobs not on server"),
        ({"manifest": [{"path": "a", "digest": "0" * 64, "size": 1},
                       {"path": "a/b", "digest": "0" * 64, "size": 1}]}, "collides"),
    ])
    def test_bad_artifacts_are_400_with_trackios_message(self, client, extra, message):
        log_run(client)
        status, body = self.log(client, **extra)
        assert status == 400 and message in body["error"]

    def test_a_blob_that_does_not_match_its_digest_is_refused(self, client, data_dir):
        status, body = self.upload_blob(client, content=b"other bytes")
        assert status == 400 and "Digest mismatch" in body["error"]
        assert not list((data_dir / "artifacts").rglob(self.DIGEST))

    def test_relogging_with_another_type_is_refused(self, client):
        log_run(client)
        self.upload_blob(client)
        self.log(client)
        status, body = self.log(client, type="dataset")
        assert status == 400 and "cannot relog with type" in body["error"]

    def test_using_a_version_that_does_not_exist_is_400(self, client):
        log_run(client)
        status, body = call(client, "log_artifact_use", kw(project="p", version_id=42,
                                                           run_name="r", run_id="rid",
                                                           hf_token=None))
        assert status == 400 and "does not exist" in body["error"]

    @pytest.mark.parametrize("path", [f"/artifact_blob/p/{'0' * 64}", "/artifact_blob/p/short",
                                      f"/artifact_blob/..%2F..%2Fetc/{'0' * 64}"])
    def test_missing_or_malformed_blobs_are_404(self, client, path):
        assert client.get(path).status_code == 404


@pytest.fixture
def defaults(data_dir, project_db, fake_time):
    """The app with its default limits, on a clock the test controls."""
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "WRITE_TOKEN": TOKEN})


class TestLimitsAtDefaults:
    """Sized from measured traffic of trackio 0.43's client (see settings.py): 32 runs started
    together on one machine, each logging 1,000 steps, plus the CLI, never see a 429."""

    def run_pattern(self, client, runs=32):
        codes = []
        for index in range(runs):
            # trackio.init(name=..., resume="allow"): 2 run lists and a run summary.
            codes.append(client.post("/api/get_runs_for_project", json=kw(project="p")).status_code)
            codes.append(client.post("/api/get_runs_for_project", json=kw(project="p")).status_code)
            codes.append(client.post("/api/get_run_summary",
                                     json=kw(project="p", run=f"r{index}")).status_code)
        for index in range(runs):
            # 1,000 steps in 0.5 s ticks of 50 steps; 2 system samples, 4 images, an alert.
            run = f"r{index}"
            for tick in range(20):
                logs = [{"project": "p", "run": run, "metrics": {"x": step}, "step": step}
                        for step in range(tick * 50, tick * 50 + 50)]
                codes.append(client.post("/api/bulk_log", json={"logs": logs},
                                         headers=AUTH).status_code)
            for _ in range(2):
                codes.append(client.post("/api/bulk_log_system", json={"logs": [
                    {"project": "p", "run": run, "metrics": {"cpu": 1.0}}]},
                    headers=AUTH).status_code)
            for _ in range(4):
                codes.append(client.post("/api/upload", data={"files": (io.BytesIO(b"x"), "a.png")},
                                         headers=AUTH,
                                         content_type="multipart/form-data").status_code)
                codes.append(client.post("/api/bulk_upload_media", json={"uploads": []},
                                         headers=AUTH).status_code)
            codes.append(client.post("/api/bulk_alert", json={"alerts": []},
                                     headers=AUTH).status_code)
        for name, body in [("get_all_projects", []), ("get_runs_for_project", ["p"]),
                           ("get_metrics_for_run", ["p", "r0"]), ("get_run_summary", ["p", "r0"]),
                           ("get_metric_values", ["p", "r0", "x"]),
                           ("get_system_metrics_for_run", ["p", "r0"]),
                           ("get_alerts", ["p"]), ("get_project_summary", ["p"])]:
            codes.append(client.post(f"/api/{name}", json=body).status_code)
        return codes

    def test_32_runs_starting_together_and_the_cli_never_see_a_429(self, defaults):
        codes = self.run_pattern(defaults.test_client())
        assert 429 not in codes and set(codes) == {200}

    def test_a_scraper_still_gets_a_429_with_retry_after(self, defaults):
        scraper = defaults.test_client()
        scraper.environ_base["REMOTE_ADDR"] = "203.0.113.7"
        for _ in range(1000):
            response = scraper.post("/api/get_logs", json=kw(project="p", run="alpha"))
            if response.status_code == 429:
                break
        assert response.status_code == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.json["error"].startswith("Too many")
        # Training jobs on another address are not affected.
        assert self.run_pattern(defaults.test_client(), runs=4).count(429) == 0

    def test_unknown_names_spend_no_read_budget(self, data_dir, project_db):
        app = create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_API": "2 per minute"})
        client = app.test_client()
        for _ in range(20):
            response = client.post("/api/upload_everything", json={})
            assert response.status_code == 404
            assert response.json == {"error": "Unknown API: upload_everything"}
        assert [client.post("/api/get_all_projects", json={}).status_code
                for _ in range(3)] == [200, 200, 429]

    def test_writes_have_their_own_budget_per_token(self, data_dir, project_db):
        app = create_app({"DATA_DIR": data_dir, "TESTING": True, "WRITE_TOKEN": TOKEN,
                          "RATELIMIT_API": "1 per minute", "RATELIMIT_WRITE": "2 per minute"})
        client = app.test_client()
        assert client.post("/api/get_all_projects", json={}).status_code == 200
        codes = [client.post("/api/upload", data={"files": (io.BytesIO(b"x"), "a")}, headers=AUTH,
                             content_type="multipart/form-data").status_code for _ in range(2)]
        limited = client.post("/api/delete_run", json=kw(project="p", run="x"), headers=AUTH)
        assert codes == [200, 200] and limited.status_code == 429
        assert "Retry-After" in limited.headers
