"""Trackio's read API: same shapes and values as trackio's own server, and stricter validation."""

from __future__ import annotations

import json
import math

import pytest
from test_compat_trackio import run_trackio_json

import trackio_flask as tf


@pytest.fixture
def sdk_project(data_dir):
    """Two runs written by our SDK (so trackio's server code can read the same file)."""
    for index, name in enumerate(["a", "b"]):
        tf.init(project="api", name=name, data_dir=data_dir, config={"lr": index + 1.0})
        for step in range(40):
            tf.log({"train/loss": 1.0 / (step + 1), "odd": math.nan if step == 3 else step,
                    "media": {"_type": "trackio.image", "file_path": "x.png"}}, step=step)
        tf.log_system({"cpu/0/utilization": 5.0 + index})
        tf.finish()
    return data_dir


def call(client, name, body):
    response = client.post(f"/api/{name}", json=body)
    return response.status_code, response.get_json()


def trackio_server_result(data_dir, name: str, kwargs: dict):
    """What trackio's own server function returns for the same call on the same file."""
    return run_trackio_json(data_dir, f"""
        import json, math
        from trackio import server
        def safe(value):
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {{k: safe(v) for k, v in value.items()}}
            if isinstance(value, list):
                return [safe(v) for v in value]
            return value
        print(json.dumps(safe(server.{name}(**{kwargs!r}))))
    """)


@pytest.mark.parametrize("name,kwargs", [
    ("get_all_projects", {}),
    ("get_runs_for_project", {"project": "api"}),
    ("get_run_configs", {"project": "api"}),
    ("get_logs_batch", {"project": "api", "runs": [{"run": "a"}, {"run": "b"}],
                        "scalar_only": True}),
    ("get_system_logs_batch", {"project": "api", "runs": [{"run": "a"}]}),
])
def test_results_match_trackios_server_on_the_same_file(client, sdk_project, name, kwargs):
    status, ours = call(client, name, {"args": [], "kwargs": kwargs})
    assert status == 200
    theirs = json.loads(trackio_server_result(sdk_project, name, kwargs))
    if name == "get_runs_for_project":
        # trackio reports the first row's time; ours is the same instant, ISO formatted alike
        assert [(r["id"], r["name"]) for r in ours["data"]] == \
            [(r["id"], r["name"]) for r in theirs]
    else:
        assert ours["data"] == theirs


def test_full_logs_keep_rich_values_and_null_for_non_finite(client, sdk_project):
    status, body = call(client, "get_logs", {"project": "api", "run": "a"})
    assert status == 200
    rows = body["data"]
    assert len(rows) == 40 and rows[3]["odd"] is None
    assert rows[0]["media"]["_type"] == "trackio.image" and rows[0]["step"] == 0


@pytest.mark.parametrize("body", [
    {"args": ["api"], "kwargs": {}},
    {"data": ["api"]},
    {"project": "api"},
    ["api"],
])
def test_every_trackio_body_shape_is_accepted(client, sdk_project, body):
    status, result = call(client, "get_runs_for_project", body)
    assert status == 200 and [r["name"] for r in result["data"]] == ["a", "b"]


@pytest.mark.parametrize("kwargs,message", [
    ({"runs": [{"run": "a"}] * 65}, "more than 64"),
    ({"runs": "a"}, "runs must be a list"),
    ({"runs": ["a"]}, "must be an object"),
    ({"runs": [{}]}, "needs 'run' or 'run_id'"),
    ({"runs": [{"run": 5}]}, "must be a string"),
    ({"runs": [{"run": "a"}], "max_points": 1.5}, "whole number"),
    ({"runs": [{"run": "a"}], "max_points": True}, "number or null"),
    ({"runs": [{"run": "a"}], "max_points": "10"}, "integer or null"),
    ({"runs": [{"run": "a"}], "scalar_only": "maybe"}, "boolean"),
    ({"runs": [{"run": "a"}], "surprise": 1}, "bad arguments"),
])
def test_batch_validation_is_a_400_with_a_message(client, sdk_project, kwargs, message):
    status, body = call(client, "get_logs_batch", {"args": [], "kwargs": {"project": "api", **kwargs}})
    assert status == 400 and message in body["error"]


@pytest.mark.parametrize("max_points,expected", [(None, 40), (0, 40), (10, 10), (20_000, 40)])
def test_max_points_defaults_and_caps(client, sdk_project, max_points, expected):
    status, body = call(client, "get_logs_batch", {"project": "api", "runs": [{"run": "a"}],
                                                   "max_points": max_points, "scalar_only": True})
    assert status == 200 and len(body["data"][0]["logs"]) == expected
    assert body["data"][0]["logs"][-1]["step"] == 39  # the last point is always kept


def test_unknown_projects_and_runs_answer_empty_like_trackio(client, sdk_project):
    assert call(client, "get_runs_for_project", {"project": "nope"}) == (200, {"data": []})
    status, body = call(client, "get_logs_batch", {"project": "api", "runs": [{"run": "zz"}]})
    assert status == 200 and body["data"] == [{"run": "zz", "run_id": None, "logs": []}]


@pytest.mark.parametrize("project", ["../etc", "a/b", 5, None])
def test_hostile_project_names_are_400(client, sdk_project, project):
    status, body = call(client, "get_runs_for_project", {"project": project})
    assert status == 400 and "error" in body


def test_version_endpoint_announces_api_v1(client):
    body = client.get("/version").get_json()
    assert body["api_version"] == 1 and body["api_transport"] == "http"


def test_unknown_api_is_404_and_bad_json_is_400(client):
    assert client.post("/api/drop_tables", json={}).status_code == 404
    response = client.post("/api/get_all_projects", data=b"{not json",
                           content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]


def test_oversized_read_body_is_413(data_dir):
    from trackio_flask import create_app

    client = create_app({"DATA_DIR": data_dir, "MAX_BODY_MB": 1, "TESTING": True}).test_client()
    response = client.post("/api/get_all_projects", data=b"[" + b"1," * 600_000 + b"1]",
                           content_type="application/json")
    assert response.status_code == 413 and "error" in response.get_json()
