"""A project's history over HTTP: closed chunks at content-addressed URLs that caches keep for
good, the open tail and the index for one tick, and a rewrite that moves every URL it touches."""

from __future__ import annotations

import re

import orjson
import pytest
from builders import ProjectDB
from servers import serving

from trackio_flask import cli, create_app
from trackio_flask.history_chunks import CHUNK_ROWS

TOKEN = "history-token-77c2"
FOREVER = "public, max-age=31536000, immutable"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                       "CACHE_TYPE": "SimpleCache", "TICK_S": 0,
                       "RATELIMIT_STORAGE_URI": "memory://"})


@pytest.fixture
def db(data_dir):
    """Project `p`: alpha with two closed metric chunks and a tail, beta with a tail only."""
    db = ProjectDB(data_dir / "p.db")
    db.config("alpha", {"lr": 0.1, "_Group": "g1", "_internal": "not shown on any page"})
    db.log_many("alpha", range(2 * CHUNK_ROWS + 100), lambda s: {"loss": 1 / (s + 1)})
    db.log_many("beta", range(30), lambda s: {"loss": 2 / (s + 1), "acc": s / 30})
    db.system("alpha", 0, {"cpu": 10.0})
    yield db
    db.close()


def index(client) -> dict:
    response = client.get("/projects/p/history")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=0, s-maxage=1"
    return orjson.loads(response.data)


def runs(client) -> dict:
    return {run["name"]: run for run in index(client)["runs"]}


def test_closed_chunks_are_immutable_with_a_strong_etag_and_the_tail_is_inline(client, db):
    alpha, beta = runs(client)["alpha"], runs(client)["beta"]
    assert len(alpha["metrics"]["chunks"]) == 2 and beta["metrics"]["chunks"] == []
    assert alpha["metrics"]["tail"]["rows"] == [2 * CHUNK_ROWS, 2 * CHUNK_ROWS + 100]
    assert beta["metrics"]["tail"]["metrics"]["acc"][3] == pytest.approx(0.1)
    # The config as the pages show it: Trackio's metadata, no other `_` keys.
    assert alpha["config"] == {"lr": 0.1, "_Group": "g1"}
    url = alpha["metrics"]["chunks"][1]
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == FOREVER
    assert {"Accept-Encoding", "Cookie"} <= {v.strip() for v in response.headers["Vary"].split(",")}
    etag = response.headers["ETag"]
    assert etag.startswith('"')  # strong: a cache may answer range requests from it
    chunk = orjson.loads(client.get(url).data)
    assert chunk["rows"] == [CHUNK_ROWS, 2 * CHUNK_ROWS] and chunk["name"] == "alpha"
    assert chunk["steps"][0] == CHUNK_ROWS and len(chunk["metrics"]["loss"]) == CHUNK_ROWS
    again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert TOKEN.encode() not in client.get(url).data
    client.set_cookie("trackio_write_token", TOKEN)
    assert client.get(url).headers["Cache-Control"] == "private, no-store"


def test_new_rows_leave_closed_chunk_urls_alone_and_close_the_tail(client, db):
    before = runs(client)["alpha"]["metrics"]["chunks"]
    db.log_many("alpha", range(2 * CHUNK_ROWS + 100, 3 * CHUNK_ROWS + 5),
                lambda s: {"loss": 1 / (s + 1), "new/metric": 1.0})
    after = runs(client)["alpha"]["metrics"]
    assert after["chunks"][:2] == before and len(after["chunks"]) == 3
    assert after["tail"]["rows"] == [3 * CHUNK_ROWS, 3 * CHUNK_ROWS + 5]
    assert all(client.get(url).status_code == 200 for url in after["chunks"])


@pytest.mark.parametrize("rewrite", ["rename", "delete"])
def test_a_rewrite_moves_the_urls_and_the_old_ones_answer_404_uncached(client, db, rewrite):
    old = runs(client)["alpha"]["metrics"]["chunks"]
    if rewrite == "rename":
        for table in ("metrics", "configs", "system_metrics"):
            db.conn.execute(f"UPDATE {table} SET run_name = 'alpha-2' WHERE run_name = 'alpha'")
        new = runs(client)["alpha-2"]["metrics"]["chunks"]
        assert len(new) == 2 and not set(new) & set(old)
    else:
        for table in ("metrics", "configs", "system_metrics"):
            db.conn.execute(f"DELETE FROM {table} WHERE run_name = 'alpha'")
        assert set(runs(client)) == {"beta"}
    for url in old:
        response = client.get(url)
        assert response.status_code == 404 and response.headers["Cache-Control"] == "no-store"


def test_hostile_or_unknown_chunk_addresses_are_404_not_500(client, db):
    url = runs(client)["alpha"]["metrics"]["chunks"][0]
    digest = re.search(r"/([0-9a-f]{32})\.json", url).group(1)
    for bad in (url.replace(digest, "0" * 32), url.replace("/metrics/", "/secrets/"),
                url.replace(digest, "zz"), url.replace("/0/", "/9/"),
                url.split("?")[0] + "?run=%3Cscript%3E", url.split("?")[0],
                "/projects/nope/history", "/projects/..%2Fp/history"):
        response = client.get(bad)
        assert response.status_code in (400, 404), bad
        assert b"<script>" not in response.data


def island(text: str) -> list:
    data = orjson.loads(re.search(r'id="export-data">(.*?)</script>', text, re.S).group(1))
    return [chart["spec"]["data"] for chart in data["charts"]]


def test_export_from_a_dashboard_url_reads_the_chunks_and_matches_the_local_file(
        app, data_dir, db, tmp_path, capsys):
    local, remote = tmp_path / "local.html", tmp_path / "remote.html"
    assert cli.main(["export", "p", "--dir", str(data_dir), "-o", str(local)]) == 0
    with serving(app) as base:
        assert cli.main(["export", "p", "--url", base, "-o", str(remote)]) == 0
    assert "2 closed chunks" in capsys.readouterr().out
    assert island(remote.read_text()) == island(local.read_text())


def test_export_from_a_url_refuses_a_chunk_that_does_not_match_its_digest(
        app, db, tmp_path, monkeypatch, capsys):
    from trackio_flask import history_client

    fetch = history_client._get

    def tampered(url: str) -> bytes:
        # Whatever sits between (a cache, a proxy) cannot slip in other rows: the bytes are
        # checked against the address the index gave.
        data = fetch(url)
        return data.replace(b'"alpha"', b'"mallory"') if "/history/" in url else data

    monkeypatch.setattr(history_client, "_get", tampered)
    with serving(app) as base:
        with pytest.raises(SystemExit) as stopped:
            cli.main(["export", "p", "--url", base, "-o", str(tmp_path / "x.html")])
    assert stopped.value.code == 2
    assert "does not match its digest" in capsys.readouterr().err


def test_export_from_a_url_waits_out_the_rate_limit_as_retry_after_says(
        data_dir, db, tmp_path, fake_time, monkeypatch):
    from trackio_flask import history_client

    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://",
                      "RATELIMIT_REFRESH": "1 per minute"})
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the limiter's clock moves instead of the test waiting
        waits.append(seconds)
        fake_time.now += seconds

    monkeypatch.setattr(history_client.time, "sleep", sleep)
    with serving(app) as base:
        state, fetched = history_client.fetch_state(base, "p")
    # Two chunks under a budget of one a minute (the index has its own): one wait.
    assert fetched == {"chunks": 2} and len(waits) == 1 and 0 < waits[0] <= 61
    assert state.metrics["id-alpha"].length == 2 * CHUNK_ROWS + 100
