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
