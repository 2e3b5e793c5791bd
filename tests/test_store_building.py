"""Pages during a cold store build (#20): the builder commits what it decoded as it goes;
another worker, or another thread of the builder, answers with that part and says so instead
of waiting; once the build is done the next tick serves the whole."""

from __future__ import annotations

import threading
import time

import pytest

from tests.builders import ProjectDB
from trackio_flask import live
from trackio_flask.live import ProjectStore
from trackio_flask.store import SeriesStore

RUNS = ("alpha", "beta", "gamma")


def make_project(data_dir, steps: int = 300) -> ProjectDB:
    db = ProjectDB(data_dir / "p.db")
    db.conn.execute("BEGIN")
    for run in RUNS:  # run after run, so a part of the rows holds some runs whole
        for step in range(steps):
            db.log(run, step, {"loss": 1.0 / (step + 1)})
    db.conn.execute("COMMIT")
    return db


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture
def paused_build(tmp_path, monkeypatch):
    """A builder (worker A) that commits a part of the rows, then waits until released."""
    make_project(tmp_path).close()
    monkeypatch.setattr(live, "CHUNK", 100)
    monkeypatch.setattr(live, "PROGRESS_S", 0.0)
    release, committed = threading.Event(), threading.Event()
    real = ProjectStore._commit_part

    def commit_then_wait(self, conn, state, read):
        real(self, conn, state, read)
        # Parts are committed as the rows double: 100, 200, 400 rows (alpha whole, beta part).
        if read >= 400 and state.store_generation and not committed.is_set():
            committed.set()
            assert release.wait(60), "the test never released the build"

    monkeypatch.setattr(ProjectStore, "_commit_part", commit_then_wait)
    builder = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))
    thread = threading.Thread(target=builder.get, args=("p",))
    thread.start()
    assert committed.wait(60), "the build committed a part"
    yield builder, release
    release.set()
    thread.join(60)


def test_another_worker_answers_with_the_committed_part_during_a_build(tmp_path, paused_build):
    builder, release = paused_build
    other = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))
    part = other.get("p")
    assert part.building.startswith("Building the history store: ")
    assert other.rows_read == 0, "it decoded nothing itself: the builder decodes once"
    assert 0 < part.metric_cursor < 900 and "id-alpha" in part.metrics
    assert part.metrics["id-alpha"].length == 300, "the rows committed so far are served"
    assert "~building" in part.version, "a poll sees the next part as new data"
    # The builder's own other threads do not wait for it either.
    own = builder.get("p")
    assert own.building and own.metric_cursor == part.metric_cursor
    release.set()
    wait_for(lambda: "p" in builder._states and not builder._states["p"].building,
             "the build finished")
    whole = other.get("p")
    assert not whole.building and whole.metric_cursor == 900 and len(whole.runs) == 3
    assert other.rows_read == 0, "the finished store was mapped, not decoded again"
    assert "~building" not in whole.version


def test_a_page_during_a_build_shows_the_ready_runs_and_a_notice(tmp_path, paused_build):
    from trackio_flask.app import create_app

    config = {"DATA_DIR": tmp_path, "TESTING": True, "CACHE_TYPE": "SimpleCache", "TICK_S": 0,
              "RATELIMIT_STORAGE_URI": "memory://", "SERIES_STORE_DIR": tmp_path / "store"}
    client = create_app(config).test_client()
    page = client.get("/projects/p")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Building the history store: " in text
    assert "run-alpha" in text or "alpha" in text
    assert "gamma" not in text, "runs the build has not reached are not shown yet"
    _builder, release = paused_build
    release.set()
    wait_for(lambda: "Building the history store" not in client.get("/projects/p")
             .get_data(as_text=True), "the page after the build has no notice")
    assert "gamma" in client.get("/projects/p").get_data(as_text=True)


def test_before_the_first_part_another_worker_answers_at_once_with_nothing_yet(
        tmp_path, monkeypatch):
    make_project(tmp_path).close()
    release, started = threading.Event(), threading.Event()
    real = ProjectStore._apply_metrics

    def apply_then_wait(self, state, rows):
        real(self, state, rows)
        if not started.is_set():
            started.set()
            assert release.wait(60), "the test never released the build"

    monkeypatch.setattr(ProjectStore, "_apply_metrics", apply_then_wait)
    builder = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))
    thread = threading.Thread(target=builder.get, args=("p",))
    thread.start()
    try:
        assert started.wait(60), "the build began decoding"
        answers = []
        other = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))
        asker = threading.Thread(target=lambda: answers.append(other.get("p")))
        asker.start()
        asker.join(60)
        assert answers, "the other worker waited on the build instead of answering"
        assert answers[0].building.startswith("Building the history store: 0%")
        assert answers[0].runs == {} and other.rows_read == 0
    finally:
        release.set()
        thread.join(60)
