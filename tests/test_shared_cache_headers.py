"""Read-only answers are storable by a shared cache for one tick; anything personal is private."""

from __future__ import annotations

import pytest
from helpers import poll_url

from trackio_flask import create_app

TOKEN = "sharing-token-53d1"
PUBLIC = "public, max-age=0, s-maxage=1"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                       "CACHE_TYPE": "SimpleCache", "TICK_S": 0,
                       "RATELIMIT_STORAGE_URI": "memory://"})


def read_only_urls(client) -> list[str]:
    body = client.get("/projects/p").data
    return ["/", "/projects/p", "/projects/p/runs", "/projects/p/runs/alpha", poll_url(body),
            "/projects/p/series?xmin=1&xmax=20", "/projects/p/reports", "/projects/p/compare"]


def test_read_only_answers_are_public_for_one_tick_with_etag_and_vary(client, project_db):
    for url in read_only_urls(client):
        response = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code in (200, 204), url
        assert response.headers["Cache-Control"] == PUBLIC, url
        vary = {v.strip() for v in response.headers["Vary"].split(",")}
        assert {"Accept-Encoding", "Cookie"} <= vary, url
        if response.status_code == 200:
            assert response.headers.get("ETag"), url
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        assert TOKEN.encode() not in plain.data, url


def test_a_matching_if_none_match_answers_304_without_a_body(client, project_db):
    first = client.get("/projects/p", headers={"Accept-Encoding": "br"})
    etag = first.headers["ETag"]
    again = client.get("/projects/p", headers={"Accept-Encoding": "br", "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == PUBLIC
    # Another encoding is another representation: its own ETag, so no false 304.
    plain = client.get("/projects/p", headers={"Accept-Encoding": "identity",
                                               "If-None-Match": etag})
    assert plain.status_code == 200 and plain.headers["ETag"] != etag


@pytest.mark.parametrize("headers", [
    {"Cookie": "unrelated=1"},
    {"Authorization": "Bearer x"},
    {"X-Trackio-Write-Token": "wrong"},
])
def test_anything_personal_in_the_request_makes_every_answer_private(client, project_db, headers):
    urls = read_only_urls(client)
    if "Cookie" in headers:  # the test client sends its own cookie jar instead of the header
        client.set_cookie("unrelated", "1")
        headers = {}
    for url in urls:
        response = client.get(url, headers=headers)
        assert response.headers["Cache-Control"] == "private, no-store", (url, headers)


def test_a_token_holder_sees_forms_only_in_private_answers(client, project_db):
    adopted = client.get(f"/projects/p/runs?write_token={TOKEN}")
    assert adopted.status_code == 303 and "public" not in adopted.headers.get("Cache-Control", "")
    holder = client.get("/projects/p/runs")  # the test client sends the cookie now
    assert 'name="csrf"' in holder.get_data(as_text=True)
    assert holder.headers["Cache-Control"] == "private, no-store"
    client.delete_cookie("trackio_write_token")
    anonymous = client.get("/projects/p/runs")
    assert anonymous.headers["Cache-Control"] == PUBLIC
    assert 'name="csrf"' not in anonymous.get_data(as_text=True)


def test_errors_and_rate_limits_are_never_shared(client, project_db):
    missing = client.get("/projects/nope")
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"
    bad = client.get("/projects/p/refresh?iv=abc")
    assert bad.status_code == 400 and bad.headers["Cache-Control"] == "no-store"


def test_the_tick_sets_the_shared_lifetime(data_dir, project_db):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 2.5, "RATELIMIT_STORAGE_URI": "memory://"})
    response = app.test_client().get("/projects/p")
    assert response.headers["Cache-Control"] == "public, max-age=0, s-maxage=3"
