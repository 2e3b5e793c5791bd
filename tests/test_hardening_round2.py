"""Issue 18's regressions outside the heavy reads: cookie writes, limits, media paths, headers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from builders import ProjectDB

from trackio_flask import create_app

TOKEN = "t0ken"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                       "RATELIMIT_ENABLED": False})


def runs_in(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute("SELECT DISTINCT run_name FROM metrics")}
    finally:
        conn.close()


# D6: the write cookie needs our own page and JSON ----------------------------------------------

DELETE = b'{"project": "p", "run": "alpha"}'


@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain", "Origin": "http://127.0.0.1:9999",
     "Sec-Fetch-Site": "same-site"},  # fetch(no-cors) from another port of the same host
    {"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example"},
    {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"},
    {"Content-Type": "application/json", "Origin": "https://evil.example"},
    {"Content-Type": "text/plain", "Sec-Fetch-Site": "same-origin"},  # JSON content type needed
])
def test_cookie_writes_from_another_origin_or_without_json_are_refused(client, data_dir,
                                                                         project_db, headers):
    client.set_cookie("trackio_write_token", TOKEN)
    response = client.post("/api/delete_run", data=DELETE, headers=headers)
    assert response.status_code == 403
    assert runs_in(data_dir / "p.db") == {"alpha", "beta"}


def test_cookie_writes_from_our_own_page_and_header_token_clients_still_work(client, data_dir,
                                                                             project_db):
    client.set_cookie("trackio_write_token", TOKEN)
    same = client.post("/api/delete_run", data=DELETE, headers={
        "Content-Type": "application/json", "Origin": "http://localhost",
        "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200 and same.json == {"data": True}
    client.delete_cookie("trackio_write_token")
    # trackio's client: the header token, whatever the content type says.
    header = client.post("/api/delete_run", data=b'{"project": "p", "run": "beta"}',
                         headers={"X-Trackio-Write-Token": TOKEN, "Content-Type": "text/plain"})
    assert header.status_code == 200
    assert runs_in(data_dir / "p.db") == set()


# D7: a hot journal left by a killed DELETE-mode writer is rolled back --------------------------

KILLED_WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size = 5")  # spill to the database file early, as a big batch does
conn.execute("BEGIN IMMEDIATE")
for i in range(5000):
    conn.execute("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                 "VALUES ('id-alpha', '2026-01-01T00:00:00', 'alpha', ?, ?)", (1000 + i, "x" * 500))
print("in the middle of a transaction", flush=True)
time.sleep(600)
"""


def kill_a_writer_mid_transaction(path: Path) -> None:
    """SIGKILL a real process in the middle of a big DELETE-mode transaction on `path`."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().startswith("in the middle")
        assert Path(f"{path}-journal").exists()
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_a_hot_journal_left_by_a_killed_writer_is_rolled_back_on_read(data_dir):
    db = ProjectDB(data_dir / "p.db", journal="DELETE")
    db.log_many("alpha", range(20), lambda s: {"loss": float(s)})
    db.close()
    kill_a_writer_mid_transaction(data_dir / "p.db")
    client = create_app({"DATA_DIR": data_dir, "TESTING": True, "TICK_S": 0,
                         "RATELIMIT_ENABLED": False}).test_client()
    assert client.get("/projects/p").status_code == 200
    logs = client.post("/api/get_logs", json={"project": "p", "run": "alpha"})
    assert logs.status_code == 200 and len(logs.json["data"]) == 20  # none of the dead batch
    assert not Path(f"{data_dir}/p.db-journal").exists()
    conn = sqlite3.connect(data_dir / "p.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


# D8: a deleted or replaced database never swallows acknowledged writes ---------------------------

def log_body(step: int, project: str = "p") -> dict:
    return {"logs": [{"project": project, "run": "r", "metrics": {"loss": 1.0}, "step": step,
                      "log_id": f"{project}-{step}"}]}


def post_log(client, step: int):
    return client.post("/api/bulk_log", json=log_body(step),
                       headers={"X-Trackio-Write-Token": TOKEN})


def test_writes_after_the_database_is_deleted_land_in_a_new_file(client, data_dir):
    assert post_log(client, 0).status_code == 200
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{data_dir}/p.db{suffix}").unlink(missing_ok=True)
    for step in range(1, 11):
        assert post_log(client, step).status_code == 200
    conn = sqlite3.connect(data_dir / "p.db")
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 10
    conn.close()


def test_writes_after_the_database_is_replaced_land_in_the_new_file(client, data_dir):
    assert post_log(client, 0).status_code == 200
    replacement = ProjectDB(data_dir / "new.db")
    replacement.log("other", 0, {"loss": 2.0})
    replacement.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{data_dir}/p.db{suffix}").unlink(missing_ok=True)
    (data_dir / "new.db").replace(data_dir / "p.db")
    assert post_log(client, 1).status_code == 200
    assert runs_in(data_dir / "p.db") == {"other", "r"}


# D9: existing files keep their journal mode; refused writes change nothing ------------------------

def test_the_writer_never_changes_the_journal_mode_of_an_existing_file(client, data_dir):
    ProjectDB(data_dir / "p.db", journal="DELETE").close()
    assert post_log(client, 0).status_code == 200  # the app's default for new files is WAL
    conn = sqlite3.connect(data_dir / "p.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_a_file_refused_as_not_a_database_is_left_byte_for_byte_as_it_was(client, data_dir):
    path = data_dir / "p.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("CREATE TABLE metrics (x)")
    conn.commit()
    conn.close()
    damaged = bytearray(path.read_bytes())
    damaged[20] = 64  # "reserved bytes per page": SQLite opens the header, then refuses the file
    path.write_bytes(bytes(damaged))
    response = post_log(client, 0)
    assert response.status_code == 409 and "not a SQLite database" in response.json["error"]
    assert path.read_bytes() == bytes(damaged)


@pytest.fixture
def full_disk(tmp_path):
    """A 3 MB tmpfs as the data dir: a real ENOSPC, as a small volume gives (needs root)."""
    import os
    import shutil
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must mount a tmpfs for the full-disk test")
        pytest.skip("mounting a tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_write_that_fills_the_disk_leaves_the_project_readable_and_writable(full_disk):
    app = create_app({"DATA_DIR": full_disk, "WRITE_TOKEN": TOKEN, "TESTING": True,
                      "TICK_S": 0, "RATELIMIT_ENABLED": False, "SQLITE_JOURNAL_MODE": "DELETE"})
    client = app.test_client()
    headers = {"X-Trackio-Write-Token": TOKEN}
    small = [{"project": "p", "run": "r", "metrics": {"loss": 1.0}, "step": s} for s in range(10)]
    assert client.post("/api/bulk_log", json={"logs": small}, headers=headers).status_code == 200
    big = [{"project": "p", "run": "r", "metrics": {"blob": "x" * 2000}, "step": 100 + s}
           for s in range(2000)]
    assert client.post("/api/bulk_log", json={"logs": big}, headers=headers).status_code == 507
    assert client.get("/projects/p").status_code == 200
    logs = client.post("/api/get_logs", json={"project": "p", "run": "r"})
    assert logs.status_code == 200 and len(logs.json["data"]) == 10
    again = [{"project": "p", "run": "r", "metrics": {"loss": 0.5}, "step": 10}]
    assert client.post("/api/bulk_log", json={"logs": again}, headers=headers).status_code == 200


# D10: staging n files costs n, not n² ------------------------------------------------------------

def test_staging_many_files_sweeps_the_staging_folder_once(client, data_dir, monkeypatch):
    from trackio_flask import media

    scans = []
    real_scandir = media.os.scandir
    monkeypatch.setattr(media.os, "scandir", lambda path: scans.append(path) or
                        real_scandir(path))
    files = [("files", (io_bytes(b"x"), f"f{i}.txt")) for i in range(40)]
    response = client.post("/api/upload", data={"files": [f[1] for f in files]},
                           headers={"X-Trackio-Write-Token": TOKEN},
                           content_type="multipart/form-data")
    assert response.status_code == 200 and len(response.json["paths"]) == 40
    assert len(scans) <= 1


def io_bytes(data: bytes):
    import io

    return io.BytesIO(data)


# D13: the token never reaches the access log, however its name is encoded -----------------------

@pytest.mark.parametrize("line", ["GET /?write%5Ftoken=s3cret&x=1 HTTP/1.1",
                                  "GET /projects/p?%77rite_token=s3cret HTTP/1.1",
                                  "GET /projects/p?a=1&write%5ftoken=s3cret HTTP/1.1"])
def test_encoded_token_parameters_are_redacted_from_access_logs(client, project_db, line):
    from trackio_flask.gunicorn_logging import redact

    path = line.split()[1]
    # The app reads the encoded name as the token parameter (it moves it into a cookie) ...
    assert client.get(path.replace("s3cret", TOKEN)).status_code == 303
    # ... so the access log must not show it either.
    assert "s3cret" not in redact(line)


# D14: X-Forwarded-For counts only when a trusted proxy sent it -------------------------------------

def test_forwarded_for_from_an_untrusted_address_buys_no_fresh_budget(data_dir, project_db,
                                                                     fake_time):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_PAGES": "2 per minute",
                      "PROXY_HOPS": 1, "TRUSTED_PROXIES": ("10.0.0.0/8",)})
    client = app.test_client()
    direct = {"REMOTE_ADDR": "203.0.113.7"}
    codes = [client.get("/projects/p/runs", environ_base=direct,
                        headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
             for n in range(4)]
    assert codes == [200, 200, 429, 429]
    # Through the trusted proxy each client has its own budget.
    proxy = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/projects/p/runs", environ_base=proxy,
                      headers={"X-Forwarded-For": "198.51.100.50"}).status_code == 200


def test_the_image_trusts_forwarded_headers_only_from_private_addresses():
    from trackio_flask.settings import parse_networks

    dockerfile = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()
    networks = parse_networks(dockerfile.split("TRACKIO_FLASK_TRUSTED_PROXIES=")[1].split()[0])
    import ipaddress

    assert networks and all(ipaddress.ip_network(n).is_private for n in networks)


# D15: wrong tokens are limited per client ---------------------------------------------------------

def test_wrong_write_tokens_are_limited_per_client_address(data_dir, fake_time):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "WRITE_TOKEN": TOKEN,
                      "RATELIMIT_BAD_TOKEN": "3 per minute"})
    client = app.test_client()
    guesses = [client.post("/api/bulk_log", json={"logs": []},
                           headers={"X-Trackio-Write-Token": f"guess-{n}"}).status_code
               for n in range(5)]
    assert guesses == [403, 403, 403, 429, 429]
    # The real token from another address, and reads from this one, are unaffected.
    assert client.post("/api/bulk_log", json={"logs": []}, environ_base={
        "REMOTE_ADDR": "10.9.9.9"}, headers={"X-Trackio-Write-Token": TOKEN}).status_code == 200
    assert client.post("/api/get_all_projects", json={}).status_code == 200


# D16: a media batch is placed whole or not at all, and errors name no server paths -----------

def test_a_media_batch_that_fails_midway_keeps_nothing_and_hides_server_paths(client, data_dir,
                                                                             monkeypatch):
    from trackio_flask import media

    headers = {"X-Trackio-Write-Token": TOKEN}
    staged = client.post("/api/upload", data={"files": [(io_bytes(b"1"), "a.png"),
                                                        (io_bytes(b"2"), "b.png")]},
                         headers=headers, content_type="multipart/form-data").json["paths"]
    real_place, calls = media.place, []

    def failing_second(staged_path, target, root):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(target))
        real_place(staged_path, target, root)

    monkeypatch.setattr(media, "place", failing_second)
    uploads = [{"project": "p", "run": "r", "step": 0,
                "uploaded_file": {"path": path, "orig_name": name}}
               for path, name in zip(staged, ["a.png", "b.png"], strict=True)]
    response = client.post("/api/bulk_upload_media", json={"uploads": uploads}, headers=headers)
    assert response.status_code == 400
    assert str(data_dir) not in response.json["error"]
    assert not any((data_dir / "media").rglob("*.png"))


# D17: run names that differ only in empty or "." parts never share a media folder ------------------

@pytest.mark.parametrize("run", ["a//b", "./a/./b/", "a/b/", ".hidden/b", "a/.b"])
def test_run_names_that_would_alias_or_hide_media_are_refused_for_media(client, data_dir, run):
    headers = {"X-Trackio-Write-Token": TOKEN}
    staged = client.post("/api/upload", data={"files": [(io_bytes(b"x"), "same.png")]},
                         headers=headers, content_type="multipart/form-data").json["paths"]
    response = client.post("/api/bulk_upload_media", json={"uploads": [{
        "project": "p", "run": run, "step": 0,
        "uploaded_file": {"path": staged[0], "orig_name": "same.png"}}]}, headers=headers)
    assert response.status_code == 400 and "folder name" in response.json["error"]
    assert not (data_dir / "media").exists() or not any((data_dir / "media").rglob("*.png"))


# D18: six well-behaved tabs of one address are never throttled -----------------------------------

def test_six_tabs_polling_at_the_local_interval_for_a_minute_get_no_429(data_dir, project_db,
                                                                       fake_time):
    from helpers import poll_url

    app = create_app({"DATA_DIR": data_dir, "TESTING": True})  # the default limits
    tabs = [app.test_client() for _ in range(6)]
    urls = [poll_url(tab.get("/projects/p").data) for tab in tabs]
    statuses = []
    for _second in range(60):  # each visible tab polls once per second on localhost
        statuses += [tab.get(url).status_code for tab, url in zip(tabs, urls, strict=True)]
        fake_time.now += 1
    assert 429 not in statuses


# D19: a read-only staging folder is a 409 like every other refused write -------------------------

def test_an_upload_the_storage_refuses_is_409(client, data_dir, monkeypatch):
    import errno

    from trackio_flask import media

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(media, "stage", read_only)
    response = client.post("/api/upload", data={"files": [(io_bytes(b"x"), "a.png")]},
                           headers={"X-Trackio-Write-Token": TOKEN},
                           content_type="multipart/form-data")
    assert response.status_code == 409 and response.is_json


# D20: read-only views embeddable, anything a token holder sees only by us ----------------------

def frame_ancestors(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    return policy.split("frame-ancestors", 1)[1].split(";")[0].strip()


def test_frame_ancestors_keep_read_views_embeddable_and_write_views_ours(data_dir, project_db):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "WRITE_TOKEN": TOKEN,
                      "RATELIMIT_ENABLED": False, "FRAME_ANCESTORS": "https://huggingface.co"})
    viewer, owner = app.test_client(), app.test_client()
    assert frame_ancestors(viewer.get("/projects/p")) == "https://huggingface.co"
    owner.set_cookie("trackio_write_token", TOKEN)
    for path in ("/projects/p", "/projects/p/runs"):
        assert frame_ancestors(owner.get(path)) == "'self'", path
