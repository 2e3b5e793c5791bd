"""Renaming and deleting runs from the dashboard: token in a cookie, CSRF and origin checks."""

from __future__ import annotations

import re
import sqlite3

import pytest

from trackio_flask import create_app

TOKEN = "manage-token"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True})


@pytest.fixture
def writer_client(client, project_db):
    response = client.get(f"/projects/p/runs?write_token={TOKEN}&sort=name")
    assert response.status_code == 303
    assert response.headers["Location"] == "/projects/p/runs?sort=name"  # token stripped
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return client


def csrf(client) -> str:
    body = client.get("/projects/p/runs").data.decode()
    return re.search(r'name="csrf" value="([0-9a-f]+)"', body).group(1)


def names(data_dir):
    conn = sqlite3.connect(data_dir / "p.db")
    try:
        return sorted(r[0] for r in conn.execute("SELECT DISTINCT run_name FROM metrics"))
    finally:
        conn.close()


def test_rename_updates_every_table_and_the_dashboard(writer_client, data_dir):
    response = writer_client.post("/projects/p/runs/id-alpha/rename",
                                  data={"name": "<b>renamed</b>", "csrf": csrf(writer_client)})
    assert response.status_code == 303
    assert names(data_dir) == ["<b>renamed</b>", "beta"]
    conn = sqlite3.connect(data_dir / "p.db")
    assert conn.execute("SELECT run_name FROM configs WHERE run_id='id-alpha'").fetchone()[0] \
        == "<b>renamed</b>"
    page = writer_client.get("/projects/p").data.decode()
    assert "&lt;b&gt;renamed&lt;/b&gt;" in page and "<b>renamed</b>" not in page


def test_delete_asks_first_then_removes_every_row(writer_client, data_dir):
    confirm = writer_client.get("/projects/p/runs/id-beta/delete")
    assert confirm.status_code == 200 and b"cannot be undone" in confirm.data
    response = writer_client.post("/projects/p/runs/id-beta/delete", data={"csrf": csrf(writer_client)})
    assert response.status_code == 303
    assert names(data_dir) == ["alpha"]
    assert b">beta<" not in writer_client.get("/projects/p").data


def test_without_the_token_nothing_changes_and_no_buttons_show(client, project_db, data_dir):
    assert b"Rename" not in client.get("/projects/p/runs").data
    response = client.post("/projects/p/runs/id-alpha/rename", data={"name": "x", "csrf": "0"})
    assert response.status_code == 403
    assert client.post("/projects/p/runs/id-alpha/delete").status_code == 403
    assert client.get("/projects/p/runs/id-alpha/delete").status_code == 403
    assert names(data_dir) == ["alpha", "beta"]


def test_wrong_token_in_the_url_sets_no_cookie(client, project_db):
    response = client.get("/projects/p?write_token=nope")
    assert response.status_code == 303 and "Set-Cookie" not in response.headers


@pytest.mark.parametrize("form,headers", [
    ({"name": "x"}, {}),  # no CSRF token
    ({"name": "x", "csrf": "f" * 64}, {}),  # wrong CSRF token
    (None, {"Origin": "https://evil.example"}),  # cross-site post with a valid form
])
def test_cross_site_or_tokenless_forms_are_refused(writer_client, data_dir, form, headers):
    form = form or {"name": "x", "csrf": csrf(writer_client)}
    response = writer_client.post("/projects/p/runs/id-alpha/rename", data=form, headers=headers)
    assert response.status_code == 403
    assert names(data_dir) == ["alpha", "beta"]


@pytest.mark.parametrize("name", ["", "a" * 300, "tab\there"])
def test_bad_new_names_are_400(writer_client, data_dir, name):
    response = writer_client.post("/projects/p/runs/id-alpha/rename",
                                  data={"name": name, "csrf": csrf(writer_client)})
    assert response.status_code == 400
    assert names(data_dir) == ["alpha", "beta"]


def test_unknown_run_is_404(writer_client):
    response = writer_client.post("/projects/p/runs/ghost/delete", data={"csrf": csrf(writer_client)})
    assert response.status_code == 404
