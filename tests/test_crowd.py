"""A crowd costs what one viewer costs: counted, not timed (the crowd benchmark has the timings)."""

from __future__ import annotations

import threading

import brotli
import pytest
from helpers import delta, poll_url

import trackio_flask.live
from trackio_flask import caching, create_app


class Monotonic:
    """Stands in for `time` in live.py: the tick clock moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        import time

        return time.time()


@pytest.fixture
def tick_clock(monkeypatch):
    clock = Monotonic()
    monkeypatch.setattr(trackio_flask.live, "time", clock)
    return clock


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "TICK_S": 1.0,
                       "RATELIMIT_ENABLED": False})


def crowd(app, url: str, viewers: int, headers: dict | None = None) -> list[tuple[int, bytes]]:
    """`viewers` clients request `url` at the same moment."""
    barrier = threading.Barrier(viewers)
    answers: list[tuple[int, bytes]] = []

    def viewer() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.get(url, headers=headers or {})
        answers.append((response.status_code, response.data))

    threads = [threading.Thread(target=viewer) for _ in range(viewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_commits_within_a_tick_are_read_once_for_every_poll(app, project_db, tick_clock, clock):
    store = app.extensions["trackio_store"]
    url = poll_url(app.test_client().get("/projects/p").data)
    tick_clock.now += 1.5
    for step in range(50, 60):  # ten commits within one tick, as a live trainer makes
        project_db.log("alpha", step, {"train/loss": 0.01})
    catch_ups, computed = store.catch_ups, caching.computations["count"]
    answers = crowd(app, url, 40)
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert store.catch_ups - catch_ups == 1
    assert caching.computations["count"] - computed == 1
    # Within the same tick, more commits are not read: polls at the new version answer 204.
    fresh = poll_url(answers[0][1])
    project_db.log("alpha", 60, {"train/loss": 0.01})
    assert app.test_client().get(fresh).status_code == 204
    assert store.catch_ups - catch_ups == 1
    tick_clock.now += 1.5
    assert app.test_client().get(fresh).status_code == 200


def test_a_page_for_an_unchanged_view_is_rendered_once_and_served_compressed(app, project_db,
                                                                            tick_clock, clock):
    headers = {"Accept-Encoding": "gzip, br"}
    computed = caching.computations["count"]
    answers = crowd(app, "/projects/p?smoothing=5", 30, headers)
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    rendered = caching.computations["count"] - computed
    assert rendered <= 2  # the compressed page, and the panel data inside it
    response = app.test_client().get("/projects/p?smoothing=5", headers=headers)
    assert response.headers["Content-Encoding"] == "br"
    assert caching.computations["count"] - computed == rendered
    # New points alone do not re-render the page: its first poll brings them.
    tick_clock.now += 1.5
    project_db.log("alpha", 50, {"train/loss": 0.01})
    again = app.test_client().get("/projects/p?smoothing=5", headers=headers)
    assert again.data == response.data
    update = app.test_client().get(poll_url(brotli.decompress(again.get_data())))
    assert update.status_code == 200
    steps = [x for series in delta(update.data).values() for s in series for x in s["x"]]
    assert 50 in steps


def test_each_encoding_is_compressed_once(app, project_db, tick_clock, clock):
    computed = caching.computations["count"]
    plain = crowd(app, "/projects/p", 5, {"Accept-Encoding": "identity"})
    gz = crowd(app, "/projects/p", 5, {"Accept-Encoding": "gzip"})
    assert len({body for _, body in plain}) == 1 and len({body for _, body in gz}) == 1
    assert plain[0][1] != gz[0][1]
    # One body per encoding, plus the panel data they share.
    assert caching.computations["count"] - computed <= 3


def test_viewers_get_the_last_snapshot_while_the_next_is_built(app, project_db, monkeypatch):
    import trackio_flask.views.pages as pages

    bucket = {"now": 1}
    building, release = threading.Event(), threading.Event()
    real_render = pages.render_template

    def slow_render(*args, **kwargs):
        if bucket["now"] == 2:
            building.set()
            release.wait(30)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(pages, "snapshot_bucket", lambda: bucket["now"])
    monkeypatch.setattr(pages, "render_template", slow_render)
    old = app.test_client().get("/projects/p").data
    bucket["now"] = 2  # the snapshot ages out
    rebuilt: list[bytes] = []
    builder = threading.Thread(target=lambda: rebuilt.append(app.test_client().get(
        "/projects/p").data))
    builder.start()
    assert building.wait(30)
    # A viewer arriving mid-build is answered from the last snapshot, not made to wait
    # (a waiting viewer would still be waiting when the build is released below).
    answered: list[bytes] = []
    viewer = threading.Thread(target=lambda: answered.append(app.test_client().get(
        "/projects/p").data))
    viewer.start()
    viewer.join(20)
    answered_during_build = list(answered)
    release.set()
    viewer.join(30)
    assert answered_during_build == [old]
    builder.join(30)
    assert rebuilt and rebuilt[0].startswith(b"<!doctype html>")
