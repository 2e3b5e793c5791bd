"""Every read of a long store-mapped run lets its pages go once it has copied what it needs,
so a worker's memory does not grow with the history it has drawn (issue 20's RSS goal; the
pyramid's full views and the grey band are covered in test_store_pyramid / test_sweeps_scale).
Counted in /proc/self/smaps, not timed."""

from __future__ import annotations

import numpy as np
import pytest

from tests.builders import ProjectDB
from tests.test_store_pyramid import store_rss
from trackio_flask import dashboard, series_csv
from trackio_flask.dashboard import View
from trackio_flask.live import ProjectStore
from trackio_flask.store import SeriesStore

STEPS = 200_000


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """One 200,000-step run of four metrics, served from its series store."""
    folder = tmp_path_factory.mktemp("long")
    db = ProjectDB(folder / "p.db")
    values = np.random.default_rng(3).normal(size=(STEPS, 4))
    db.log_many("alpha", range(STEPS),
                lambda step: dict(zip("abcd", map(float, values[step]), strict=True)))
    live = ProjectStore(folder, 2**30, SeriesStore(folder / "store", 2**30))
    yield db, live, folder / "store"
    db.close()


def touch_everything(state) -> None:
    """Map every column of the run into this process, as an earlier request would have."""
    columns = state.metrics["id-alpha"]
    assert columns.shared
    for array in (columns.ids, columns.steps, columns.times, *columns.metrics.values()):
        float(np.asarray(array[: columns.length]).sum())


def run_bytes(state) -> int:
    return state.metrics["id-alpha"].ids.nbytes * 7  # ids, steps, times and four metrics


@pytest.mark.parametrize("view", [View(smoothing=10), View(smoothing=10, smoother="ema"),
                                  View(x_axis="time"), View(x_axis="metric:a")],
                         ids=["sma", "ema", "time-axis", "metric-axis"])
def test_a_row_reading_view_leaves_the_run_out_of_the_worker(long_run, view):
    _db, live, store = long_run
    state = live.get("p")
    touch_everything(state)
    assert store_rss(store) > run_bytes(state) / 2
    page = dashboard.build_page("p", state, view, 2000)
    for panel in page.panels:
        assert dashboard.full_data(state, page, panel, 2000)
    assert store_rss(store) < run_bytes(state) / 10


def test_zooms_extents_and_raw_downloads_leave_the_run_out_of_the_worker(long_run):
    _db, live, store = long_run
    state = live.get("p")
    for view in (View(), View(x_axis="time")):
        touch_everything(state)
        page = dashboard.build_page("p", state, view, 2000)
        low, high = dashboard.x_extent(state, page)
        middle = (low + high) / 2
        for panel in page.panels:
            assert dashboard.full_data(state, page, panel, 2000,
                                       x_range=(middle, middle + (high - low) / 200))
        assert store_rss(store) < run_bytes(state) / 10, view
    touch_everything(state)
    page = dashboard.build_page("p", state, View(), 2000)
    text = "".join(series_csv.panel_csv(state, page, page.panels[0], False, None, None))
    assert text.count("\n") == STEPS + 1  # every logged row, then the header
    assert store_rss(store) < run_bytes(state) / 10


def test_a_poll_leaves_the_run_out_of_the_worker(long_run):
    db, live, store = long_run
    state = live.get("p")
    page = dashboard.build_page("p", state, View(), 2000)
    since = state.metric_cursor
    db.log("alpha", STEPS + 5, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    state = live.get("p")
    touch_everything(state)
    changed = [dashboard.delta_data(state, page, panel, since) for panel in page.panels]
    assert all(series and series[0]["x"] == [STEPS + 5] for series in changed)
    assert store_rss(store) < run_bytes(state) / 10


def test_requests_let_go_of_what_they_read_when_they_end(long_run):
    """Through the app: a page, a smoothed page, a zoom and a poll each leave the run's store
    pages out of the process once answered (within a request, the run's shared columns stay
    mapped until its end, so each panel does not map them back)."""
    from helpers import poll_url

    from trackio_flask import create_app
    db, _live, store = long_run
    app = create_app({"DATA_DIR": store.parent, "SERIES_STORE_DIR": store, "TESTING": True,
                      "CACHE_TYPE": "SimpleCache", "TICK_S": 0,
                      "RATELIMIT_STORAGE_URI": "memory://"})
    client = app.test_client()
    size = STEPS * 8 * 7
    page = client.get("/projects/p")
    assert page.status_code == 200 and store_rss(store) < size / 10
    assert client.get("/projects/p?smoothing=10").status_code == 200
    assert store_rss(store) < size / 10
    zoom = client.get(f"/projects/p/series?xmin={STEPS // 2}&xmax={STEPS // 2 + 1000}")
    assert zoom.status_code == 200 and zoom.get_json()["panels"]
    assert store_rss(store) < size / 10
    db.log("alpha", STEPS + 9, {"a": 1.0})
    poll = client.get(poll_url(page.data))
    assert poll.status_code == 200 and b'"x": [200009]' in poll.data
    assert store_rss(store) < size / 10


def test_comparing_runs_by_their_max_leaves_the_run_out_of_the_worker(long_run):
    """The run comparer's min and max read whole columns: their pages go once summarised."""
    from trackio_flask import compare
    _db, live, store = long_run
    state = live.get("p")
    touch_everything(state)
    page = dashboard.build_page("p", state, View(), 2000)
    rows = compare._metric_rows(state, tuple(page.selected), "max")
    assert [row.key for row in rows] == ["a", "b", "c", "d"]
    assert store_rss(store) < run_bytes(state) / 10


def test_a_poll_that_finds_a_run_idle_leaves_it_out_of_the_worker(long_run):
    """A run with nothing new is still searched for its first new row: its pages go too."""
    _db, live, store = long_run
    state = live.get("p")
    page = dashboard.build_page("p", state, View(), 2000)
    touch_everything(state)
    assert all(not dashboard.delta_data(state, page, panel, state.metric_cursor)
               for panel in page.panels)
    assert store_rss(store) < run_bytes(state) / 10


@pytest.mark.parametrize("query", ["", "?sort=metric:b&metric=a&metric=b&metric=c&metric=d"])
def test_the_runs_table_leaves_the_run_out_of_the_worker(long_run, query):
    """Its final values read each metric's tail, which maps the folios under it."""
    from trackio_flask import create_app
    _db, _live, store = long_run
    app = create_app({"DATA_DIR": store.parent, "SERIES_STORE_DIR": store, "TESTING": True,
                      "CACHE_TYPE": "SimpleCache", "TICK_S": 0,
                      "RATELIMIT_STORAGE_URI": "memory://"})
    answer = app.test_client().get(f"/projects/p/runs{query}")
    assert answer.status_code == 200 and b"alpha" in answer.data
    assert store_rss(store) < STEPS * 8 * 7 / 10
