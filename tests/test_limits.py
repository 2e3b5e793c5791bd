"""Rate limits: 429 with Retry-After, separate budgets, no spoofed fresh budgets; a fake clock."""

from __future__ import annotations

import pytest
from helpers import poll_url

from trackio_flask import create_app
from trackio_flask.app import gunicorn_workers


@pytest.fixture
def limited(data_dir, project_db, fake_time):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_REFRESH": "3 per minute",
                      "RATELIMIT_API": "2 per minute", "WRITE_TOKEN": "t",
                      "RATELIMIT_WRITE": "2 per minute"})
    return app


def test_refresh_over_the_limit_gets_429_with_retry_after(limited, fake_time):
    client = limited.test_client()
    url = poll_url(client.get("/projects/p").data)
    assert [client.get(url).status_code for _ in range(3)] == [204, 204, 204]
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 429
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert response.headers["Cache-Control"] == "no-store"
    assert len(response.data) < 100 and b"<html" not in response.data
    fake_time.now += retry + 1
    assert client.get(url).status_code == 204


def test_retry_after_counts_down_with_the_clock(limited, fake_time):
    client = limited.test_client()
    url = poll_url(client.get("/projects/p").data)
    for _ in range(3):
        client.get(url)
    first = int(client.get(url).headers["Retry-After"])
    fake_time.now += 20
    later = int(client.get(url).headers["Retry-After"])
    assert later == pytest.approx(first - 20, abs=1)


def test_api_and_refresh_have_separate_budgets(limited):
    client = limited.test_client()
    url = poll_url(client.get("/projects/p").data)
    for _ in range(4):
        client.get(url)
    assert client.post("/api/get_all_projects", json={}).status_code == 200
    assert client.post("/api/get_all_projects", json={}).status_code == 200
    limited_api = client.post("/api/get_all_projects", json={})
    assert limited_api.status_code == 429 and limited_api.json["error"].startswith("Too many")
    assert "Retry-After" in limited_api.headers


def test_writes_are_limited_per_token_not_per_reader(limited):
    client = limited.test_client()
    body = {"logs": []}
    headers = {"X-Trackio-Write-Token": "t"}
    assert [client.post("/api/bulk_log", json=body, headers=headers).status_code
            for _ in range(3)] == [200, 200, 429]
    assert client.post("/api/get_all_projects", json={}).status_code == 200


def test_spoofed_forwarded_for_does_not_buy_a_fresh_budget(limited):
    client = limited.test_client()
    url = poll_url(client.get("/projects/p").data)
    codes = [client.get(url, headers={"X-Forwarded-For": f"10.0.0.{n}"}).status_code
             for n in range(5)]
    assert codes[-1] == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(data_dir, project_db, fake_time):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_REFRESH": "2 per minute",
                      "PROXY_HOPS": 1})
    client = app.test_client()
    url = poll_url(client.get("/projects/p", headers={"X-Forwarded-For": "198.51.100.1"}).data)
    for _ in range(2):
        client.get(url, headers={"X-Forwarded-For": "198.51.100.1"})
    assert client.get(url, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
    assert client.get(url, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 204
    # A client cannot prepend its own hop: only the last (proxy-added) address counts.
    spoofed = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}
    assert client.get(url, headers=spoofed).status_code == 429


@pytest.mark.parametrize("argv,env,workers", [
    (["gunicorn", "-w", "4", "app"], {}, 4),
    (["/usr/bin/gunicorn", "--workers=3", "app"], {}, 3),
    (["gunicorn", "-w2", "app"], {}, 2),
    (["gunicorn", "app"], {"WEB_CONCURRENCY": "5"}, 5),
    (["gunicorn", "app"], {"GUNICORN_CMD_ARGS": "--workers 6"}, 6),
    (["flask", "run"], {"WEB_CONCURRENCY": "5"}, 1),
])
def test_gunicorn_worker_count_is_detected(argv, env, workers):
    assert gunicorn_workers(argv, env) == workers


def test_several_workers_on_memory_storage_are_reported_at_start(monkeypatch, data_dir, caplog):
    monkeypatch.setattr("sys.argv", ["gunicorn", "-w", "3", "trackio_flask:create_app()"])
    with caplog.at_level("WARNING"):
        create_app({"DATA_DIR": data_dir})
    assert "3 gunicorn workers" in caplog.text and "redis://" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        create_app({"DATA_DIR": data_dir, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"})
    assert "gunicorn workers" not in caplog.text
