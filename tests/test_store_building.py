"""Pages during a cold store build (#20): the builder commits what it decoded as it goes;
another worker, or another thread of the builder, answers with that part and says so instead
of waiting; once the build is done the next tick serves the whole."""

from __future__ import annotations

import queue
import re
import threading
import time

import pytest
from helpers import poll_interval, poll_url

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


class SteppedBuild:
    """A builder (worker A) that waits after each part it commits until the test lets it go on."""

    def __init__(self, builder: ProjectStore) -> None:
        self.builder = builder
        self.landed: queue.Queue[int] = queue.Queue()  # rows of each part committed
        self.go: queue.Queue[bool] = queue.Queue()
        self.free = False

    def commit_then_wait(self, real, store, conn, state, read) -> None:
        before = state.stored_rows
        real(store, conn, state, read)
        if state.stored_rows != before and not self.free:  # a part was committed
            self.landed.put(read)
            assert self.go.get(timeout=300), "the test never let the build go on"

    def next_part(self) -> int:
        """Let the build commit its next part; the rows that part holds."""
        self.go.put(True)
        return self.landed.get(timeout=60)

    def finish(self) -> None:
        """Let the build run to its end, and wait for that."""
        self.free = True
        self.go.put(True)
        wait_for(lambda: "p" in self.builder._states and not self.builder._states["p"].building,
                 "the build finished")


@pytest.fixture
def stepped_build(tmp_path, monkeypatch):
    """A build paused after its first part (100 of 900 rows: alpha's first steps)."""
    make_project(tmp_path).close()
    monkeypatch.setattr(live, "CHUNK", 100)
    monkeypatch.setattr(live, "PROGRESS_S", 0.0)
    monkeypatch.setattr(live, "PARTIAL_AFTER_S", 0.0)  # the app's store answers in parts at once
    builder = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))
    build = SteppedBuild(builder)
    real = ProjectStore._commit_part
    monkeypatch.setattr(ProjectStore, "_commit_part",
                        lambda store, conn, state, read: build.commit_then_wait(
                            real, store, conn, state, read))
    thread = threading.Thread(target=builder.get, args=("p",))
    thread.start()
    assert build.landed.get(timeout=60) == 100, "the build committed its first part"
    yield build
    build.free = True
    build.go.put(True)
    thread.join(60)


def app_client(data_dir):
    from trackio_flask.app import create_app

    return create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                       "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://",
                       "SERIES_STORE_DIR": data_dir / "store"}).test_client()


NOTICE = re.compile(r'<div id="build-notice" role="status"( hx-swap-oob="innerHTML")?>(.*?)</div>',
                    re.S)


def build_notice(body: str) -> tuple[str, bool]:
    """The text of a page's or a fragment's build notice, and whether it is out of band."""
    found = NOTICE.findall(body)
    assert len(found) == 1, f"one build notice, not {len(found)}"
    oob, inner = found[0]
    return re.sub(r"<[^>]+>", "", inner), bool(oob)


def poll(client, url: str, redraw: bool):
    """A poll of the page's URL; `redraw`: as from a page whose panels the server no longer
    knows (an unknown fingerprint), which is answered with the full redraw."""
    if redraw:
        url = re.sub(r"([?&]ph=)[^&]*", r"\g<1>unknown", url)
    answer = client.get(url)
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert ('id="delta" hx-swap-oob' not in body) == redraw, "the answer is the kind asked for"
    return body


@pytest.mark.parametrize("redraw", [False, True], ids=["delta", "redraw"])
def test_a_poll_during_a_build_brings_the_new_percentage_to_the_notice(tmp_path, stepped_build,
                                                                       redraw):
    client = app_client(tmp_path)
    page = client.get("/projects/p").get_data(as_text=True)
    text, oob = build_notice(page)
    assert text.startswith("Building the history store: 11% of the rows are ready (1 run so far)")
    assert not oob and page.count("Building the history store") == 1, "shown once, in its place"
    assert poll_interval(page.encode()) == 1.0, "an idle project being built polls at the base pace"
    other_tab = client.get("/projects/p/histograms").get_data(as_text=True)
    assert other_tab.count("Building the history store: 11%") == 1, "other tabs say it as before"
    assert stepped_build.next_part() == 200
    fragment = poll(client, poll_url(page.encode()), redraw)
    text, oob = build_notice(fragment)
    assert oob and text.startswith("Building the history store: 22% of the rows are ready")
    assert stepped_build.next_part() == 400
    text, oob = build_notice(poll(client, poll_url(fragment.encode()), redraw))
    assert oob and "44% of the rows are ready (2 runs so far)" in text


@pytest.mark.parametrize("redraw", [False, True], ids=["delta", "redraw"])
def test_the_first_poll_after_the_build_empties_the_notice(tmp_path, stepped_build, redraw):
    client = app_client(tmp_path)
    page = client.get("/projects/p").get_data(as_text=True)
    assert "11% of the rows are ready" in build_notice(page)[0]
    stepped_build.finish()
    fragment = poll(client, poll_url(page.encode()), redraw)
    assert build_notice(fragment) == ("", True), "the notice is emptied in place"
    assert "gamma" in fragment, "the runs the build reached since arrive with it"
    later = client.get(poll_url(fragment.encode()))
    assert later.status_code == 204, "then nothing changes until new rows"

