"""The Settings page: how to log here with server_url and the write token (never shown), the
CLI pointed at this server, and this server's settings."""

from __future__ import annotations

import re

import pytest
from builders import ProjectDB

from trackio_flask import create_app

TOKEN = "s3cret-token-value"


@pytest.fixture
def client(data_dir):
    ProjectDB(data_dir / "p.db").log("alpha", 0, {"loss": 1.0})
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "WRITE_TOKEN": TOKEN,
                       "CACHE_TYPE": "SimpleCache", "TICK_S": 0}).test_client()


def test_settings_show_server_url_snippet_and_cli_for_the_project(client):
    body = client.get("/settings?project=p").data.decode()
    assert 'server_url="http://localhost/?write_token=&lt;TRACKIO_WRITE_TOKEN&gt;"' in body
    assert "trackio --space http://localhost/ list runs --project &#34;p&#34;" in body
    assert re.search(r'<td title="[^"]*">WRITE_TOKEN</td><td><code>TRACKIO_WRITE_TOKEN</code>'
                     r"</td><td>set</td>", body)
    assert "does not hold the write token" in body


def test_the_token_is_never_printed_even_to_its_holder(client):
    for query in ("", "?project=p"):
        anonymous = client.get("/settings" + query)
        assert TOKEN not in anonymous.data.decode()
    client.set_cookie("trackio_write_token", TOKEN)
    holder = client.get("/settings?project=p")
    assert "This browser holds the write token" in holder.data.decode()
    assert TOKEN not in holder.data.decode()
    assert holder.headers["Cache-Control"] == "private, no-store"


def test_an_unknown_project_is_a_404(client):
    assert client.get("/settings?project=nope").status_code == 404
