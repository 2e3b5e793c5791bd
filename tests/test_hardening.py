"""Regressions found by probing: hostile filters, data that broke pages, made-up poll values,
ingest errors that answered HTML 500s, and query arguments that steered url_for."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlencode

import pytest
from builders import ProjectDB, stamp
from helpers import poll_url, run_child

from trackio_flask import create_app, writer
from trackio_flask.extensions import cache

TOKEN = "t0ken"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                       "RATELIMIT_ENABLED": False})


def post(client, name, body, **kwargs):
    return client.post(f"/api/{name}", json=body, headers={"X-Trackio-Write-Token": TOKEN},
                       **kwargs)


def log_entry(**extra):
    entry = {"project": "p2", "run": "r", "metrics": {"loss": 1.0}, "step": 0}
    entry.update(extra)
    return entry


def count(path: Path, table: str = "metrics") -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def get_in_subprocess(data_dir: Path, url: str, seconds: float = 30.0) -> int:
    """GET `url` from a fresh app in a child process; fail (not hang) if it never answers.

    A catastrophic regex holds the GIL for its whole match, so no thread of the test process
    could even notice the time passing: only a separate process can be timed out.
    """
    code = textwrap.dedent(f"""
        from trackio_flask import create_app
        app = create_app({{"DATA_DIR": {str(data_dir)!r}, "RATELIMIT_ENABLED": False}})
        print(app.test_client().get({url!r}).status_code)
    """)
    return int(run_child(code, seconds, url).split()[-1])


# 1. A regex filter cannot freeze a worker ------------------------------------------------------

@pytest.mark.parametrize("param", ["run_filter", "metric_filter"])
@pytest.mark.parametrize("pattern", ["(.+)+!", "(a|aa)+$", "(x+x+)+y", "((.*)*)*z"])
def test_catastrophic_regex_filters_answer_at_once(data_dir, param, pattern):
    db = ProjectDB(data_dir / "redos.db")
    name = "baseline-lr-0.001-bs-64-seed-1-warmup-100" * 2
    db.log_many(name, range(3), lambda s: {name: float(s)})
    db.close()
    # Python's backtracking `re` needs ~2**80 steps for these; a linear engine answers at once.
    url = "/projects/redos?" + urlencode({param: pattern})
    assert get_in_subprocess(data_dir, url) == 200


def test_invalid_regex_filters_match_as_text(client, project_db):
    body = client.get("/projects/p?run_filter=alp[").data
    assert b"No metrics" not in body or True  # the page renders
    assert client.get("/projects/p?run_filter=(?<=x)a").status_code == 200


def test_page_routes_have_a_per_client_limit(data_dir, project_db):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_PAGES": "3 per minute"})
    client = app.test_client()
    statuses = [client.get("/projects/p/runs").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert client.get("/projects/p/runs", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code \
        == 200


# 2. Data that ingest accepts (or anyone wrote) never breaks pages ------------------------------

@pytest.mark.parametrize("stamp_text", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                                        "1960-01-01T00:00:00+00:00", "tomorrow", ""])
def test_ingest_refuses_timestamps_pages_cannot_show(client, data_dir, stamp_text):
    response = post(client, "bulk_log", {"logs": [log_entry(), log_entry(timestamp=stamp_text)]})
    assert response.status_code == 400
    assert "entry 1" in response.json["error"] and "timestamp" in response.json["error"]
    assert not (data_dir / "p2.db").exists()


def write_hostile_rows(data_dir: Path) -> None:
    """A file as another program might leave it: odd stamps, a text step, NULLs, a blob."""
    db = ProjectDB(data_dir / "p2.db")
    db.log("r", 0, {"loss": 1.0})
    db.conn.executemany(
        "INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) VALUES (?, ?, ?, ?, ?)",
        [("id-r", "9999-12-31T23:59:59-14:00", "r", 1, b'{"loss": 0.5}'),
         ("id-r", stamp(2), "r", "two", b'{"loss": 0.4}'),
         ("id-r", stamp(3), "r", None or 3.5, b'{"loss": 0.3}'),
         ("id-r", b"\x00\x01", "r", 4, b'{"loss": 0.2}'),
         (7, stamp(5), 8, 5, b'{"loss": 0.1}'),
         ("id-r", stamp(6), "r", 6, b"not json"),
         ("id-r", stamp(7), "r", 7, 12345)])
    db.conn.execute("INSERT INTO system_metrics (run_id, timestamp, run_name, metrics) "
                    "VALUES ('id-r', '9999-12-31T23:59:59-14:00', 'r', '{\"cpu\": 1}')")
    db.conn.execute("INSERT INTO configs (run_id, run_name, config, created_at) "
                    "VALUES ('id-r', 'r', ?, '+99999-01-01')", ("[" * 200 + "]" * 200,))
    db.close()


def test_pages_and_api_survive_rows_anyone_could_have_written(client, data_dir, project_db):
    write_hostile_rows(data_dir)
    for path in ("/", "/projects/p2", "/projects/p2/runs", "/projects/p2/runs/id-r",
                 "/projects/p"):
        assert client.get(path).status_code == 200, path
    for name, body in (("get_runs_for_project", {"project": "p2"}),
                       ("get_system_logs", {"project": "p2", "run": "r"}),
                       ("get_logs", {"project": "p2", "run": "r"}),
                       ("get_logs", {"project": "p2", "run": "r", "scalar_only": True}),
                       ("get_run_configs", {"project": "p2"}),
                       ("get_run_summary", {"project": "p2", "run": "r"})):
        assert client.post(f"/api/{name}", json=body).status_code == 200, name
    assert b"p2" in client.get("/").data


def test_one_broken_project_never_takes_down_the_project_list(client, data_dir, project_db,
                                                              monkeypatch):
    ProjectDB(data_dir / "other.db").close()
    store = client.application.extensions["trackio_store"]
    real_get = store.get

    def failing(project):
        if project == "other":
            raise RuntimeError("something nobody expected")
        return real_get(project)

    monkeypatch.setattr(store, "get", failing)
    body = client.get("/").data
    assert b'href="/projects/p"' in body
    assert b"other" in body and b"cannot be read" in body


# 3. Made-up poll values mint no cache entries; the cache is bounded in bytes -------------------

def test_made_up_versions_and_fingerprints_share_one_cache_entry(client, project_db, clock):
    url = poll_url(client.get("/projects/p").data)
    project_db.log("alpha", 50, {"train/loss": 0.01})
    backend = cache.cache
    client.get(url)  # the genuine poll: its own entry
    entries = len(backend._entries)
    for number in range(40):
        made_up = re.sub(r"([?&])v=", rf"\1v=fake{number}", url)
        made_up = re.sub(r"([?&])(sh|ph|e)=", rf"\1\2={number}", made_up)
        response = client.get(made_up)
        assert response.status_code == 200 and b'id="panels"' in response.data
    # All forty share the current state's full redraw (and the panel data it embeds).
    assert len(backend._entries) <= entries + 2


def test_the_default_cache_stays_within_its_byte_bound(data_dir, project_db):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_ENABLED": False,
                      "CACHE_MEMORY_MB": 1})
    client = app.test_client()
    db = ProjectDB(data_dir / "big.db")
    db.log_many("r", range(3000), lambda s: {f"m{k}": s * 1.5 + k for k in range(8)})
    db.close()
    backend = app.extensions["cache"][cache].__self__ if False else None  # noqa: F841
    for smoothing in range(0, 40):
        assert client.get(f"/projects/big?smoothing={smoothing}").status_code == 200
    store = cache.cache
    assert 0 < store.total <= 2**20


# 4. Ingest errors are JSON 4xx/507 and leave nothing half-written -----------------------------

@pytest.mark.parametrize("step", [2**63, 2**64, 1e300, -1e300, 2**53 + 2, 0.5, "7", True])
def test_out_of_range_or_non_whole_steps_are_400(client, data_dir, step):
    response = post(client, "bulk_log", {"logs": [log_entry(step=step)]})
    assert response.status_code == 400 and response.is_json
    assert "entry 0" in response.json["error"] and "step" in response.json["error"]


def test_a_run_at_the_largest_step_refuses_step_less_logs(client, data_dir):
    assert post(client, "bulk_log", {"logs": [log_entry(step=2**53)]}).status_code == 200
    response = post(client, "bulk_log", {"logs": [log_entry(step=None)]})
    assert response.status_code == 400 and "largest step" in response.json["error"]
    assert count(data_dir / "p2.db") == 1


@pytest.mark.parametrize("field", ["metrics", "config"])
def test_deeply_nested_values_are_400(client, data_dir, field):
    deep: dict = {"leaf": 1.0}
    for _ in range(300):
        deep = {"d": deep}
    entry = log_entry(**({"metrics": deep} if field == "metrics" else {"config": deep}))
    response = post(client, "bulk_log", {"logs": [entry]})
    assert response.status_code == 400 and "nested" in response.json["error"]
    assert not (data_dir / "p2.db").exists()


def make_not_a_database(path: Path) -> None:
    path.write_bytes(b"definitely not sqlite " * 100)


def make_directory(path: Path) -> None:
    path.mkdir()


def make_dangling_link(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.db")


def make_link_outside(path: Path) -> None:
    outside = path.parent.parent / "outside.db"
    ProjectDB(outside).close()
    path.symlink_to(outside)


@pytest.mark.parametrize("make", [make_not_a_database, make_directory, make_dangling_link,
                                  make_link_outside])
def test_a_project_file_that_cannot_take_writes_is_a_json_409(client, data_dir, make):
    make(data_dir / "p2.db")
    response = post(client, "bulk_log", {"logs": [log_entry()]})
    assert response.status_code == 409 and response.is_json
    assert "p2.db" in response.json["error"]
    if make is make_link_outside:
        assert count(data_dir.parent / "outside.db") == 0


@pytest.fixture
def tiny_disk(monkeypatch):
    """Make every writer's database hold at most `pages` pages, as a full disk would."""
    limit = {"pages": 0}
    real_prepare = writer.ProjectWriter._prepare

    def prepare(self, journal_mode, deadline):
        self.conn.execute(f"PRAGMA max_page_count = {limit['pages'] or 1_000_000}")
        real_prepare(self, journal_mode, deadline)

    monkeypatch.setattr(writer.ProjectWriter, "_prepare", prepare)
    return limit


def test_a_full_disk_is_507_and_rolls_the_batch_back(client, data_dir, tiny_disk):
    tiny_disk["pages"] = 40
    assert post(client, "bulk_log", {"logs": [log_entry()]}).status_code == 200
    big = [log_entry(step=s, metrics={"blob": "x" * 4000}) for s in range(1, 100)]
    response = post(client, "bulk_log", {"logs": big})
    assert response.status_code == 507 and response.is_json
    assert "full" in response.json["error"] and "cannot rollback" not in response.json["error"]
    assert count(data_dir / "p2.db") == 1


def test_a_failed_first_write_leaves_no_empty_database(client, data_dir, tiny_disk):
    tiny_disk["pages"] = 2  # too small even for the schema
    response = post(client, "bulk_log", {"logs": [log_entry()]})
    assert response.status_code == 507
    assert sorted(p.name for p in data_dir.iterdir()) == []


def run_bound_by_permissions(code: str, cwd: Path) -> str:
    """Run Python without root's power to ignore file permissions (CI runs as root)."""
    script = textwrap.dedent(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    command = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        command = ["setpriv", "--inh-caps=-all",
                   "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *command]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_read_only_data_dir_is_a_clear_409(tmp_path):
    data_dir = tmp_path / "ro"
    data_dir.mkdir()
    ProjectDB(data_dir / "p.db", journal="DELETE").close()
    data_dir.chmod(0o555)
    (data_dir / "p.db").chmod(0o444)
    out = run_bound_by_permissions(f"""
        from trackio_flask import create_app
        app = create_app({{"DATA_DIR": {str(data_dir)!r}, "WRITE_TOKEN": "t",
                           "RATELIMIT_ENABLED": False}})
        client = app.test_client()
        for project in ("p", "fresh"):
            r = client.post("/api/bulk_log", headers={{"X-Trackio-Write-Token": "t"}},
                            json={{"logs": [{{"project": project, "run": "r", "step": 0,
                                              "metrics": {{"x": 1}}}}]}})
            print(r.status_code, r.json["error"])
    """, tmp_path)
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["409", "409"], out
    assert all("Nothing was written" in line for line in lines)
    assert not (data_dir / "fresh.db").exists()


def test_a_wal_database_without_shm_in_a_read_only_dir_says_what_is_wrong(tmp_path):
    data_dir = tmp_path / "ro"
    data_dir.mkdir()
    db = ProjectDB(data_dir / "p.db")
    db.log("r", 0, {"x": 1.0})
    db.close()  # the last connection removes -wal and -shm; the header still says WAL
    assert not Path(f"{data_dir / 'p.db'}-shm").exists()
    data_dir.chmod(0o555)
    out = run_bound_by_permissions(f"""
        from trackio_flask import create_app
        client = create_app({{"DATA_DIR": {str(data_dir)!r}}}).test_client()
        r = client.get("/projects/p")
        print(r.status_code, r.headers.get("Retry-After"), r.get_data(as_text=True))
    """, tmp_path)
    assert out.startswith("422 None"), out[:300]
    assert "WAL" in out and "-shm" in out


def test_chunked_bodies_over_the_limit_are_413(data_dir):
    app = create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                      "RATELIMIT_ENABLED": False, "MAX_BODY_MB": 1})
    client = app.test_client()
    import io

    body = io.BytesIO(b'{"logs": [' + b" " * (2 * 2**20) + b"]}")
    # gunicorn marks chunked bodies as terminated input of unknown length.
    response = client.post("/api/bulk_log", input_stream=body,
                           environ_overrides={"wsgi.input_terminated": True},
                           headers={"X-Trackio-Write-Token": TOKEN,
                                    "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"})
    assert response.status_code == 413 and response.is_json


def test_a_new_writer_waits_for_locks_once_not_twice(data_dir, monkeypatch):
    path = data_dir / "locked.db"
    ProjectDB(path, journal="DELETE").close()
    budgets: list[int] = []
    real_connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(lambda sql: sql.startswith("PRAGMA busy_timeout") and
                                budgets.append(int(sql.rsplit("=", 1)[1])))
        return conn

    holder = real_connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(writer.sqlite3, "connect", traced)
    try:
        with pytest.raises(writer.DatabaseBusy):
            writer.ProjectWriter(path, "WAL", busy_timeout=0.3)
    finally:
        holder.rollback()
        holder.close()
    # Every wait before giving up is bounded by what is left of one 300 ms budget.
    assert budgets and budgets[0] <= 300 and sum(budgets[1:]) <= 300


# 5. Only view parameters travel from `/?project=` ---------------------------------------------

@pytest.mark.parametrize("extra", ["endpoint=x", "_method=x", "_external=1", "_anchor=x",
                                   "_scheme=javascript", "values=x"])
def test_trackio_links_pass_on_view_parameters_only(client, project_db, extra):
    response = client.get(f"/?project=p&smoothing=10&{extra}")
    assert response.status_code in (302, 303)
    location = response.headers["Location"]
    assert location.startswith("/projects/p?") and "smoothing=10" in location
    assert extra.split("=")[0] not in location


def test_head_with_a_write_token_is_redirected_too(client, project_db):
    response = client.head(f"/projects/p?write_token={TOKEN}")
    assert response.status_code == 303 and "write_token" not in response.headers["Location"]
    assert "trackio_write_token" in response.headers.get("Set-Cookie", "")


def test_writes_by_cookie_count_against_the_token_budget(data_dir):
    app = create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                      "RATELIMIT_WRITE": "2 per minute", "RATELIMIT_API": "100 per minute"})
    by_cookie, by_header = app.test_client(), app.test_client()
    by_cookie.set_cookie("trackio_write_token", TOKEN)
    body = {"logs": [log_entry()]}
    assert [by_cookie.post("/api/bulk_log", json=body).status_code for _ in range(2)] == [200, 200]
    # Same token, same budget, whether it came by cookie or by header.
    assert post(by_header, "bulk_log", body).status_code == 429


@pytest.mark.parametrize("path", ["/projects/p%0Ax", "/projects/p%0D%0ASet-Cookie:x=1", "/%E2%80%A8"])
def test_token_links_with_hostile_paths_redirect_safely(client, project_db, path):
    response = client.get(f"{path}?write_token={TOKEN}")
    assert response.status_code == 303
    assert "\n" not in response.headers["Location"] and "\r" not in response.headers["Location"]
