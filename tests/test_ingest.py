"""Trackio clients log into our server: the real `trackio` package, replays, bad batches, locks."""

from __future__ import annotations

import sqlite3

import pytest
from servers import serving
from trackio_zoo import run_trackio

from trackio_flask import create_app
from trackio_flask.trackio_api import TrackioApi

TOKEN = "s3cret-token"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                       "RATELIMIT_ENABLED": False})


def rows(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def entry(number, **extra):
    values = {"project": "p", "run": "r", "run_id": "rid", "metrics": {"loss": 1.0 / (number + 1)},
              "step": number, "log_id": f"log-{number}"}
    values.update(extra)
    return values


def post(client, name, body, token=TOKEN):
    headers = {"X-Trackio-Write-Token": token} if token else {}
    return client.post(f"/api/{name}", json=body, headers=headers)


def test_real_trackio_client_logs_into_our_server(app, data_dir, tmp_path):
    with serving(app) as url:
        run_trackio(tmp_path / "client-side", f"""
            import trackio
            trackio.init(project="remote", name="from-trackio", config={{"lr": 0.01}},
                         server_url="{url}/?write_token={TOKEN}")
            for step in range(1000):
                trackio.log({{"train/loss": 1.0 / (step + 1), "train/acc": step / 1000}})
                if step % 100 == 0:
                    trackio.log_system({{"cpu/0/utilization": float(step % 7)}})
            trackio.finish()
        """)
        client = app.test_client()
        page = client.get("/projects/remote")
        assert page.status_code == 200 and b"from-trackio" in page.data
    db = data_dir / "remote.db"
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT step), MIN(step), MAX(step) FROM metrics") \
        == [(1000, 1000, 0, 999)]
    assert rows(db, "SELECT COUNT(*) FROM system_metrics") == [(10,)]
    assert rows(db, "SELECT run_name, json_extract(CAST(config AS TEXT), '$.lr') FROM configs") \
        == [("from-trackio", 0.01)]


def test_trackio_client_with_a_wrong_token_writes_nothing(app, data_dir, tmp_path):
    with serving(app) as url:
        output = run_trackio(tmp_path / "client-side", f"""
            import trackio
            trackio.init(project="remote", name="nope", server_url="{url}/?write_token=wrong")
            for step in range(20):
                trackio.log({{"x": step}})
            trackio.finish()
        """)
    assert not (data_dir / "remote.db").exists()
    assert "403" in output  # the client is told why


def test_replayed_batch_is_stored_once(client, data_dir):
    batch = {"logs": [entry(step) for step in range(50)]}
    assert post(client, "bulk_log", batch).status_code == 200
    assert post(client, "bulk_log", batch).status_code == 200
    assert rows(data_dir / "p.db", "SELECT COUNT(*) FROM metrics") == [(50,)]


def test_missing_steps_continue_after_the_last_one(client, data_dir):
    post(client, "bulk_log", {"logs": [entry(4)]})
    post(client, "bulk_log", {"logs": [entry(0, step=None, log_id="a"),
                                       entry(0, step=None, log_id="b")]})
    assert rows(data_dir / "p.db", "SELECT step FROM metrics ORDER BY id") == [(4,), (5,), (6,)]


@pytest.mark.parametrize("bad,message", [
    ({"logs": "x"}, "'logs' must be a list"),
    ({"logs": [1]}, "entry 3 must be an object"),
    ({"logs": [{"project": "../etc", "run": "r", "metrics": {}}]}, "entry 3"),
    ({"logs": [{"project": "p", "run": "", "metrics": {}}]}, "'run'"),
    ({"logs": [{"project": "p", "run": "r", "metrics": []}]}, "'metrics'"),
    ({"logs": [{"project": "p", "run": "r", "metrics": {}, "step": 1.5}]}, "'step'"),
    ({"logs": [{"project": "p", "run": "r", "metrics": {}, "step": True}]}, "'step'"),
    ({"oops": []}, "bad arguments"),
])
def test_malformed_entries_are_400_and_nothing_is_written(client, data_dir, bad, message):
    good = [entry(step) for step in range(3)]
    if isinstance(bad.get("logs"), list):
        bad = {"logs": good + bad["logs"]}
    response = post(client, "bulk_log", bad)
    assert response.status_code == 400
    assert message in response.json["error"]
    assert not (data_dir / "p.db").exists()


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x"])
def test_writes_need_the_exact_token(client, data_dir, token):
    response = post(client, "bulk_log", {"logs": [entry(0)]}, token=token)
    assert response.status_code == 403
    assert not (data_dir / "p.db").exists()


def test_token_also_works_as_cookie_or_query(client, data_dir):
    client.set_cookie("trackio_write_token", TOKEN)
    assert post(client, "bulk_log", {"logs": [entry(0)]}, token=None).status_code == 200
    client.delete_cookie("trackio_write_token")
    response = client.post(f"/api/bulk_log?write_token={TOKEN}", json={"logs": [entry(1)]})
    assert response.status_code == 200


def test_writes_are_refused_when_no_token_is_configured(data_dir):
    client = create_app({"DATA_DIR": data_dir, "TESTING": True}).test_client()
    response = post(client, "bulk_log", {"logs": [entry(0)]})
    assert response.status_code == 403 and "TRACKIO_WRITE_TOKEN" in response.json["error"]


def test_token_never_appears_in_logs(client, caplog):
    with caplog.at_level("DEBUG"):
        post(client, "bulk_log", {"logs": [entry(0)]}, token="wrong-but-secret")
        post(client, "bulk_log", {"logs": [entry(0)]})
    assert "wrong-but-secret" not in caplog.text and TOKEN not in caplog.text


def test_oversized_body_is_413(data_dir):
    client = create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "MAX_BODY_MB": 1,
                         "TESTING": True}).test_client()
    huge = {"logs": [entry(0, metrics={"blob": "x" * (2 * 2**20)})]}
    response = post(client, "bulk_log", huge)
    assert response.status_code == 413
    assert not (data_dir / "p.db").exists()


def test_locked_database_answers_503_with_retry_after(data_dir):
    app = create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "BUSY_TIMEOUT_S": 0.2,
                      "TESTING": True})
    client = app.test_client()
    assert post(client, "bulk_log", {"logs": [entry(0)]}).status_code == 200
    blocker = sqlite3.connect(data_dir / "p.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = post(client, "bulk_log", {"logs": [entry(1)]})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert post(client, "bulk_log", {"logs": [entry(1)]}).status_code == 200
    assert rows(data_dir / "p.db", "SELECT COUNT(*) FROM metrics") == [(2,)]


def test_system_logs_and_alerts_are_stored(client, data_dir):
    system = {"logs": [{"project": "p", "run": "r", "run_id": "rid", "metrics": {"gpu": 1.0},
                        "timestamp": "2026-01-01T00:00:00+00:00", "log_id": "s1"}]}
    alerts = {"alerts": [{"project": "p", "run": "r", "title": "<b>diverged</b>", "level": "error",
                          "timestamp": "2026-01-01T00:00:00+00:00", "alert_id": "a1"}]}
    assert post(client, "bulk_log_system", system).status_code == 200
    assert post(client, "bulk_alert", alerts).status_code == 200
    assert post(client, "bulk_alert", alerts).status_code == 200
    assert rows(data_dir / "p.db", "SELECT COUNT(*) FROM alerts") == [(1,)]
    bad = {"alerts": [{**alerts["alerts"][0], "level": "panic"}]}
    assert post(client, "bulk_alert", bad).status_code == 400


def test_every_write_endpoint_is_registered():
    assert {"bulk_log", "bulk_log_system", "bulk_alert"} <= set(TrackioApi.WRITES)
