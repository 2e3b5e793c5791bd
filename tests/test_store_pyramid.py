"""The min/max pyramid (#20): its blocks equal numpy over the raw rows, appends extend it to
what a fresh build gives, a chart read through it equals one computed from every row, and a
zoom or a full view reads O(buckets × log rows) values, counted."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import ProjectDB
from trackio_flask import dashboard
from trackio_flask.dashboard import Source, View
from trackio_flask.live import ProjectStore, RunInfo
from trackio_flask.series import LOGGED_NAN, Columns
from trackio_flask.store import SeriesStore, pyramid

SPECIAL = [math.nan, math.inf, -math.inf, LOGGED_NAN]


def series(seed: int, rows: int, holes: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=rows)
    values[rng.random(rows) < holes] = math.nan
    for at in rng.integers(0, max(rows, 1), 3 if rows else 0):
        values[at] = SPECIAL[int(at) % 4]
    return values


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), rows=st.integers(1, 3000), room=st.integers(0, 500),
       holes=st.sampled_from([0.0, 0.5, 0.99]), data=st.data())
def test_range_stats_equal_numpy_over_the_raw_rows(seed, rows, room, holes, data):
    capacity = rows + room
    values = np.concatenate((series(seed, rows, holes), np.full(room, math.nan)))
    covered = data.draw(st.integers(0, rows))
    reader = pyramid.Reader(values, rows, pyramid.build(values, capacity, covered), capacity,
                            covered)
    starts = np.array(data.draw(st.lists(st.integers(0, rows), min_size=1, max_size=20)))
    ends = np.minimum(rows, starts + np.array(
        data.draw(st.lists(st.integers(0, rows), min_size=starts.size, max_size=starts.size))))
    got = reader.ranges(starts, ends)
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        part = values[start:end]
        finite = part[np.isfinite(part)]
        assert got.n[i] == finite.size
        if finite.size:
            assert (got.lo[i], got.hi[i]) == (finite.min(), finite.max())
        finite_rows = start + np.flatnonzero(np.isfinite(part))
        assert reader.finite_at(int(start), int(end), last=True) == \
            (int(finite_rows[-1]) if finite_rows.size else -1)
        assert reader.finite_at(int(start), int(end), last=False) == \
            (int(finite_rows[0]) if finite_rows.size else -1)
    marked = np.isinf(values[:rows]) | (values[:rows].view(np.uint64) == 0x7FF8_0000_0000_0BAD)
    assert reader.marked_rows().tolist() == np.flatnonzero(marked).tolist()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), rows=st.integers(0, 4000), room=st.integers(0, 300),
       cuts=st.lists(st.integers(0, 4000), max_size=6))
def test_updates_over_appended_rows_equal_a_fresh_build(seed, rows, room, cuts):
    capacity = rows + room
    values = np.concatenate((series(seed, rows, 0.3), np.full(room, math.nan)))
    grown = pyramid.empty(capacity)
    done = 0
    for cut in [*sorted(c for c in cuts if c <= rows), rows]:
        pyramid.update(grown, values, capacity, done, cut)
        done = max(done, cut)
    fresh = pyramid.build(values, capacity, rows)
    for name in pyramid.STATS:
        assert grown[name].tobytes() == fresh[name].tobytes(), name


def long_columns(rows: int, seed: int = 3, sparse_every: int = 7) -> Columns:
    """A store-like run: a dense metric with gaps and markers, a sparse one, repeated steps."""
    rng = np.random.default_rng(seed)
    steps = np.sort(rng.integers(0, rows + rows // 3, rows)).astype(np.float64)
    dense = series(seed, rows, 0.05)
    dense[rows // 3:rows // 3 + 500] = math.nan  # a long gap
    sparse = np.full(rows, math.nan)
    sparse[::sparse_every] = rng.normal(size=sparse[::sparse_every].size)
    capacity = rows + 100
    pad = np.full(capacity - rows, math.nan)
    metrics = {"dense": np.concatenate((dense, pad)), "sparse": np.concatenate((sparse, pad))}
    columns = Columns.from_arrays(np.arange(1, capacity + 1), np.concatenate((steps, pad)),
                                  np.concatenate((steps, pad)), metrics,
                                  {k: int(np.isfinite(v).sum()) for k, v in metrics.items()},
                                  rows, source="f.arrow")
    covered = rows - 1000  # rows past the committed length are read raw
    columns.pyramid = pyramid.RunPyramid(capacity, covered, {
        name: pyramid.build(column, capacity, covered) for name, column in metrics.items()})
    return columns


def whole(source: Source, view: View, x_range, buckets: int, raw_limit: int):
    """The reference: every finite row, then `_reduce` (the code path before the pyramid)."""
    a, core = dashboard.logged(source, SimpleNamespace(view=view), False, x_range)
    assert a.rows.size > raw_limit
    reduced_a, band = dashboard._reduce(a, buckets, core, x_range)
    return reduced_a, band, a.rows.size


@pytest.mark.parametrize("metric", ["dense", "sparse"])
@pytest.mark.parametrize("x_range", [None, (1000.0, 3000.0), (20_000.0, 20_999.0),
                                     (-50.0, 40_000.0), (0.0, 1e9), (55_000.0, 70_000.0)])
@pytest.mark.parametrize("buckets", [1, 37, 256])
def test_a_chart_read_through_the_pyramid_equals_one_from_every_row(monkeypatch, metric,
                                                                    x_range, buckets):
    monkeypatch.setattr(dashboard, "PYRAMID_MIN_ROWS_PER_BUCKET", 0)  # short windows too
    columns = long_columns(60_000)
    source = Source(RunInfo("r", "r", 0.0, 0.0), columns, metric, {})
    view = View()
    read = dashboard._from_pyramid(source, view, False, x_range, buckets, 2 * buckets)
    if read is None:  # few points in range: they are sent as they are, read from the rows
        a, _core = dashboard.logged(source, SimpleNamespace(view=view), False, x_range)
        assert a.rows.size <= 2 * buckets
        return
    a, band, total = read
    ref, ref_band, count = whole(source, view, x_range, buckets, 2 * buckets)
    assert a.rows.tolist() == ref.rows.tolist()
    assert a.x.tobytes() == ref.x.tobytes() and a.y.tobytes() == ref.y.tobytes()
    assert band.lo.tobytes() == ref_band.lo.tobytes()
    assert band.hi.tobytes() == ref_band.hi.tobytes()
    assert {k: v.tolist() for k, v in a.marks.items()} == \
        {k: v.tolist() for k, v in ref.marks.items()}
    assert total == count


def test_a_zoom_and_a_full_view_read_o_buckets_log_rows_values(monkeypatch):
    rows = 500_000
    columns = long_columns(rows)
    readers = []
    real = pyramid.Reader

    def counting(*args):
        readers.append(real(*args))
        return readers[-1]

    monkeypatch.setattr(pyramid, "Reader", counting)
    monkeypatch.setattr(dashboard, "PYRAMID_MIN_ROWS_PER_BUCKET", 0)  # the 1,000-step window too
    source = Source(RunInfo("r", "r", 0.0, 0.0), columns, "dense", {})
    for x_range in (None, (300_000.0, 300_999.0), (10_000.0, 400_000.0)):
        readers.clear()
        assert dashboard._from_pyramid(source, View(), False, x_range, 256, 512) is not None
        # 256 buckets: two raw edges of < 64 rows and two blocks per level each, the rows
        # past the committed length (1,000) and the few searches for markers and ends.
        assert readers[0].reads < 256 * (2 * 64 + 3 * 2 * 20) + 4 * 1000, x_range
        assert readers[0].reads < rows // 4


def test_other_views_read_every_row_as_before():
    source = Source(RunInfo("r", "r", 0.0, 0.0), long_columns(5_000), "dense", {})
    for view in (View(smoothing=5), View(x_axis="time"), View(smoother="ema", smoothing=50)):
        assert dashboard._from_pyramid(source, view, False, None, 64, 128) is None
    assert dashboard._from_pyramid(source, View(), True, None, 64, 128) is None
    few = dashboard._from_pyramid(source, View(), False, (100.0, 120.0), 64, 128)
    assert few is None, "a window of few points is sent as it is, read from its rows"
    short = dashboard._from_pyramid(source, View(), False, (100.0, 1500.0), 64, 128)
    assert short is None, "a window of a few thousand rows is read row by row (cheaper)"


def test_a_store_commit_extends_the_pyramid_as_a_fresh_build_would(tmp_path):
    db = ProjectDB(tmp_path / "p.db")
    db.conn.execute("BEGIN")
    for step in range(3000):
        db.log("alpha", step, {"loss": 1.0 / (step + 1), "acc": math.sin(step)})
    db.conn.execute("COMMIT")
    live = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30, append_rows=1))
    live.get("p")
    for step in range(3000, 3300):
        db.log("alpha", step, {"loss": -5.0 if step == 3100 else 0.5,
                               "acc": math.inf if step == 3200 else 0.1})
    state = live.get("p")
    assert live.series_store.appends == 1 and live.series_store.rewrites == 1, \
        "the new rows went into the file's room, and the pyramid was extended, not rewritten"
    columns = state.metrics["id-alpha"]
    held = columns.pyramid
    assert held.length == columns.length == 3300
    for name in ("loss", "acc"):
        fresh = pyramid.build(columns.metrics[name], held.capacity, columns.length)
        for stat in pyramid.STATS:
            assert held.series[name][stat].tobytes() == fresh[stat].tobytes(), (name, stat)
    restarted = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))
    again = restarted.get("p").metrics["id-alpha"].pyramid
    assert again.length == 3300
    for name in ("loss", "acc"):
        for stat in pyramid.STATS:
            assert again.series[name][stat].tobytes() == held.series[name][stat].tobytes()


def test_a_page_from_the_store_draws_what_every_row_gives(tmp_path, monkeypatch):
    db = ProjectDB(tmp_path / "p.db")
    db.conn.execute("BEGIN")
    rng = np.random.default_rng(5)
    for step in range(6000):
        for run in ("alpha", "beta"):
            values = {"loss": float(rng.normal())}
            if step % 3 == 0:
                values["eval"] = float(rng.normal())
            if step == 4000:
                values["loss"] = math.nan
            db.log(run, step, values)
    db.conn.execute("COMMIT")
    live = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))
    state = live.get("p")
    assert all(c.pyramid is not None for c in state.metrics.values())
    page = dashboard.build_page("p", state, View(), 2000)
    drawn = {panel.id: dashboard.full_data(state, page, panel, 2000) for panel in page.panels}
    calls = []
    real = dashboard._from_pyramid
    monkeypatch.setattr(dashboard, "_from_pyramid", lambda *a: calls.append(1) or real(*a))
    assert {panel.id: dashboard.full_data(state, page, panel, 2000)
            for panel in page.panels} == drawn
    assert calls, "the page's charts were read through the pyramid"
    monkeypatch.setattr(dashboard, "_from_pyramid", lambda *args: None)
    assert {panel.id: dashboard.full_data(state, page, panel, 2000)
            for panel in page.panels} == drawn


def test_a_run_without_metric_names_is_stored_and_ticks_in_place(tmp_path):
    db = ProjectDB(tmp_path / "p.db")
    for step in range(5):
        db.log("pics", step, {"sample": {"_type": "trackio.image", "file_path": "x.png"}})
    live = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30, append_rows=1))
    assert live.get("p").metrics["id-pics"].length == 5
    written = live.series_store.rewrites
    db.log("pics", 5, {"sample": {"_type": "trackio.image", "file_path": "y.png"}})
    assert live.get("p").metrics["id-pics"].length == 6
    assert live.series_store.appends == 1 and live.series_store.rewrites == written, \
        "no pyramid to extend: the new row is committed in place"
    restarted = ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))
    assert restarted.get("p").metrics["id-pics"].length == 6 and restarted.rows_read == 0


def test_short_runs_get_no_pyramid_and_still_tick_in_place(tmp_path):
    """Every mapping holds a file descriptor: a project of many short runs (a sweep) must not
    double them with pyramids its charts never read, nor rewrite a run's file on every tick."""
    db = ProjectDB(tmp_path / "p.db")
    db.conn.execute("BEGIN")
    for run in range(40):
        for step in range(200):
            db.log(f"r{run}", step, {"loss": 1.0 / (step + 1)})
    db.conn.execute("COMMIT")
    store = SeriesStore(tmp_path / "store", 2**30, append_rows=1)
    live = ProjectStore(tmp_path, 2**30, store)
    live.get("p")
    written = store.rewrites
    assert not list((tmp_path / "store").rglob("*.pyr.arrow"))
    db.log("r0", 200, {"loss": 0.5})
    state = live.get("p")
    assert store.appends == 1 and store.rewrites == written, "the tick went into the file's room"
    assert state.metrics["id-r0"].length == 201 and state.metrics["id-r0"].pyramid is None


def store_rss(folder, suffix: str = "") -> int:
    """Bytes of this process's RSS in mappings of the store's files (/proc/self/smaps), or of
    those whose name ends with `suffix`."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's header line
            inside = len(head) >= 6 and head[5].startswith(str(folder)) \
                and head[5].endswith(suffix)
        elif inside and line.startswith("Rss:"):
            total += int(head[1]) * 1024
    return total


def test_a_full_view_through_the_pyramid_leaves_the_store_out_of_the_worker(tmp_path):
    """A chart of a long run reads a few values at each pixel column's edges, but the kernel
    maps whole folios: the worker lets the run's pages go once read, so the store it has
    drawn does not stay counted in its memory (counted in /proc, not timed)."""
    db = ProjectDB(tmp_path / "p.db")
    values = np.random.default_rng(9).normal(size=(200_000, 4))
    db.log_many("alpha", range(200_000),
                lambda step: dict(zip("abcd", map(float, values[step]), strict=True)))
    folder = tmp_path / "store"
    live = ProjectStore(tmp_path, 2**30, SeriesStore(folder, 2**30))
    state = live.get("p")
    columns = state.metrics["id-alpha"]
    assert columns.pyramid is not None and columns.shared
    size = columns.ids.nbytes * 7  # ids, steps, times and four metrics
    np.asarray(columns.ids).sum()  # touch one column: the measure below sees mapped pages
    (sidecar,) = folder.rglob("*.pyr.arrow")
    for stats in columns.pyramid.series.values():  # and the whole pyramid
        sum(float(np.asarray(array).sum()) for array in stats.values())
    assert store_rss(folder) > 0 and store_rss(folder, ".pyr.arrow") > sidecar.stat().st_size / 2
    page = dashboard.build_page("p", state, View(), 2000)
    for panel in page.panels:
        dashboard.full_data(state, page, panel, 2000)
    assert store_rss(folder) < size / 10
    # The pyramid's sidecar file is let go too (the 100 M-point project's are ~100 MB).
    assert store_rss(folder, ".pyr.arrow") < sidecar.stat().st_size / 10
