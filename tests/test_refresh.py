"""The refresh protocol: 204 when unchanged, only new points when changed, one computation per version."""

from __future__ import annotations

import threading

import pytest
from helpers import delta, poll_interval, poll_url

from trackio_flask import caching, storage


@pytest.fixture
def page(client, project_db, clock):
    body = client.get("/projects/p").data
    return {"body": body, "url": poll_url(body)}


def test_unchanged_data_answers_204_without_reading_rows(client, page, monkeypatch):
    def no_reads(*args, **kwargs):
        raise AssertionError("a 204 refresh must not open the database")

    monkeypatch.setattr(storage, "open_readonly", no_reads)
    response = client.get(page["url"], headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Cache-Control"].startswith("public, max-age=0, s-maxage=")
    assert "Content-Encoding" not in response.headers and "Content-Type" not in response.headers


def test_new_steps_arrive_as_points_after_the_pages_cursor(client, page, project_db):
    project_db.log("alpha", 50, {"train/loss": 0.0196})
    project_db.log("beta", 30, {"train/loss": 0.0645})
    response = client.get(page["url"])
    assert response.status_code == 200
    changes = delta(response.data)
    assert len(changes) == 1  # only train/loss changed
    (series,) = changes.values()
    by_run = {s["n"]: s for s in series}
    assert by_run["alpha"]["x"] == [50.0] and by_run["alpha"]["y"] == [0.0196]
    assert by_run["beta"]["x"] == [30.0] and by_run["alpha"]["k"] == 50
    assert len(response.data) < 2000
    follow = poll_url(response.data)
    assert client.get(follow).status_code == 204


def test_smoothing_resends_the_tail_the_new_point_changes(client, project_db, clock):
    body = client.get("/projects/p?smoothing=10&runs=alpha").data
    project_db.log("alpha", 50, {"train/loss": 0.5})
    (series,) = next(iter(delta(client.get(poll_url(body)).data).values()))
    assert series["k"] == 45 and series["x"] == [45.0, 46.0, 47.0, 48.0, 49.0, 50.0]
    assert len(series["s"]) == 6


def test_new_run_updates_the_run_list_and_draws_its_line(client, page, project_db):
    project_db.log("gamma", 0, {"train/loss": 3.0}, at=49)
    body = client.get(page["url"]).data
    assert b'id="run-list" hx-swap-oob="true"' in body and b">gamma<" in body
    (series,) = delta(body).values()
    assert [s["n"] for s in series] == ["gamma"]
    # The counts beside "Runs" and on the phone's drawer button follow: 2 → 3 runs.
    assert b'id="run-count">(2)</span>' in page["body"]
    assert b'id="run-count" hx-swap-oob="true">(3)</span>' in body
    assert b'id="drawer-run-count" hx-swap-oob="true">(3/3)</span>' in body


def test_new_metric_redraws_the_panels(client, page, project_db):
    project_db.log("alpha", 50, {"train/loss": 0.01, "train/new_metric": 1.0})
    body = client.get(page["url"]).data
    assert b'id="panels" hx-swap-oob="true"' in body
    assert b'data-metric="train/new_metric"' in body
    assert b'id="delta"' not in body


def test_unselected_runs_send_nothing(client, project_db, clock):
    body = client.get("/projects/p?runs=beta").data
    project_db.log("alpha", 50, {"train/loss": 0.01})
    response = client.get(poll_url(body))
    assert response.status_code == 200 and delta(response.data) == {}


def test_refresh_interval_follows_the_host(client, project_db, clock):
    body = client.get("/projects/p", headers={"Host": "me.hf.space"}).data
    assert poll_interval(body) == 3.5
    project_db.log("alpha", 50, {"train/loss": 0.01})
    fragment = client.get(poll_url(body), headers={"Host": "me.hf.space"}).data
    assert poll_interval(fragment) == 3.5


def test_idle_projects_poll_less_often_and_snap_back_on_change(client, project_db, clock):
    body = client.get("/projects/p").data
    assert poll_interval(body) == 1.0
    url = poll_url(body)
    clock.now += 31  # 31 s idle after the last row: one doubling
    slower = client.get(url)
    assert slower.status_code == 200 and poll_interval(slower.data) == 2.0
    assert client.get(poll_url(slower.data)).status_code == 204
    clock.now += 300  # far past: capped
    capped = client.get(poll_url(slower.data))
    assert poll_interval(capped.data) == 30.0
    project_db.log("alpha", 50, {"train/loss": 0.01}, at=clock.now - 1 - 1767225600)
    snapped = client.get(poll_url(capped.data))
    assert poll_interval(snapped.data) == 1.0


def test_many_viewers_at_one_version_cost_one_computation(app, project_db, clock):
    client = app.test_client()
    url = poll_url(client.get("/projects/p").data)
    project_db.log("alpha", 50, {"train/loss": 0.01})
    before = caching.computations["count"]
    barrier = threading.Barrier(50)
    statuses = []

    def viewer():
        local = app.test_client()
        barrier.wait()
        response = local.get(url)
        statuses.append((response.status_code, response.data))

    threads = [threading.Thread(target=viewer) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [s for s, _ in statuses] == [200] * 50
    assert len({body for _, body in statuses}) == 1
    assert caching.computations["count"] - before == 1


def test_permuted_run_lists_share_a_cache_entry(client, project_db, clock):
    a = poll_url(client.get("/projects/p?runs=alpha,beta").data)
    b = poll_url(client.get("/projects/p?runs=beta,alpha,alpha").data)
    project_db.log("alpha", 50, {"train/loss": 0.01})
    before = caching.computations["count"]
    assert client.get(a).status_code == 200
    assert client.get(b).status_code == 200
    assert caching.computations["count"] - before == 1


@pytest.mark.parametrize("query", ["iv=abc", "iv=0", "iv=-1&v=x", "iv=1e9&v=x", "iv=nan&v=x"])
def test_malformed_poll_parameters_are_400(client, project_db, query):
    assert client.get(f"/projects/p/refresh?{query}").status_code == 400


def test_compressed_fragments_are_never_reused_for_another_request(client, project_db, clock):
    import gzip

    gz = {"Accept-Encoding": "gzip"}
    page = client.get("/projects/p", headers=gz)
    assert page.headers["Content-Encoding"] == "gzip"
    url = poll_url(gzip.decompress(page.data))
    bodies = []
    for step in range(50, 53):
        project_db.log("alpha", step, {"train/loss": 0.01, f"train/new_{step}": 1.0})
        response = client.get(url, headers=gz)
        body = gzip.decompress(response.data) if response.headers.get("Content-Encoding") \
            else response.data
        bodies.append(body)
        url = poll_url(body)
        assert f"train/new_{step}".encode() in body
    assert len(set(bodies)) == 3


def test_refresh_cost_follows_new_rows_not_run_length(client, data_dir, clock):
    from builders import ProjectDB

    sizes = {}
    for name, steps in (("short", 100), ("long", 20_000)):
        db = ProjectDB(data_dir / f"{name}.db")
        db.log_many("r", range(steps), lambda s: {"loss": 1.0 / (s + 1), "acc": s / 1e5})
        url = poll_url(client.get(f"/projects/{name}").data)
        db.log("r", steps, {"loss": 0.5, "acc": 0.5}, at=49)
        response = client.get(url)
        assert response.status_code == 200
        sizes[name] = len(response.data)
        db.close()
    assert abs(sizes["long"] - sizes["short"]) < 120  # digits of bigger step numbers only


@pytest.mark.parametrize("backend", ["SimpleCache", "FileSystemCache"])
def test_cache_backends_share_fragments(data_dir, project_db, clock, backend, tmp_path):
    from trackio_flask import create_app

    app = create_app({"DATA_DIR": data_dir, "CACHE_TYPE": backend, "TESTING": True, "TICK_S": 0,
                      "CACHE_DIR": str(tmp_path / "cache")})
    client = app.test_client()
    url = poll_url(client.get("/projects/p").data)
    project_db.log("alpha", 50, {"train/loss": 0.01})
    before = caching.computations["count"]
    first, second = client.get(url), client.get(url)
    assert first.data == second.data and first.status_code == 200
    assert caching.computations["count"] - before == 1


def test_entries_over_the_byte_bound_are_served_but_not_cached(data_dir, project_db, clock):
    from trackio_flask import create_app

    app = create_app({"DATA_DIR": data_dir, "CACHE_ENTRY_MAX_KB": 1, "TESTING": True, "TICK_S": 0})
    client = app.test_client()
    url = poll_url(client.get("/projects/p").data)
    project_db.log("alpha", 50, {"train/loss": 0.01, "train/brand_new": 1.0})  # full redraw
    before = caching.computations["count"]
    first = client.get(url)
    middle = caching.computations["count"]
    second = client.get(url)
    assert len(first.data) > 1024 and first.data == second.data
    # nothing was stored, so the second viewer pays the full computation again
    assert caching.computations["count"] - middle == middle - before > 0
