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
