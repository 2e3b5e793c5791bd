"""Grouped charts on long runs (#20): a group's min–max aggregate read from its members'
pyramids equals the one computed from every aligned step, a zoom aggregates only the rows
around its range and draws what the whole series gives, and both read O(buckets) values,
counted."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import ProjectDB
from trackio_flask import dashboard, group_pyramid, groups
from trackio_flask.dashboard import View
from trackio_flask.live import ProjectStore
from trackio_flask.series import LOGGED_NAN
from trackio_flask.store import SeriesStore, pyramid

SPECIAL = [math.nan, math.inf, -math.inf, LOGGED_NAN]


def member(steps: np.ndarray, values: np.ndarray, covered: int | None = None
           ) -> group_pyramid.Member:
    """A pyramid reader over `values` as a store run file holds them (room past the rows)."""
    rows = values.size
    capacity = rows + 64
    padded = np.concatenate((values, np.full(capacity - rows, math.nan)))
    covered = rows if covered is None else covered
    reader = pyramid.Reader(padded, rows, pyramid.build(padded, capacity, covered), capacity,
                            covered)
    return group_pyramid.Member(steps, reader, int(np.isfinite(values).sum()))


def make_series(rng: np.random.Generator, rows: int, stride: int, offset: int, holes: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Steps from `offset` by `stride`; stride 0: steps with repeats (a run resumed from a
    checkpoint logs some steps again)."""
    if stride:
        steps = (offset + stride * np.arange(rows)).astype(np.float64)
    else:
        steps = np.sort(offset + rng.integers(0, rows, rows)).astype(np.float64)
    values = np.cumsum(rng.normal(size=rows))
    values[rng.random(rows) < holes] = math.nan
    for at in rng.integers(0, rows, 3):
        values[at] = SPECIAL[int(at) % 4]
    return steps, values


def reference(series, agg: str, buckets: int) -> groups.Aggregate:
    """What the group's chart drew before: align every step, aggregate, then downsample."""
    return groups.downsample(groups.aggregate(series, agg, "minmax"), buckets)


def assert_same(got: groups.Aggregate, want: groups.Aggregate) -> None:
    assert got.x.tobytes() == want.x.tobytes()
    assert got.count.tolist() == want.count.tolist()
    # Interpolated values: the same straight line, computed in another order (a few ulps).
    for name in ("y", "lo", "hi"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-9,
                                   atol=1e-9, err_msg=name)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31), agg=st.sampled_from(groups.AGGREGATES),
       buckets=st.sampled_from([1, 7, 64, 300]),
       shapes=st.lists(st.tuples(st.integers(1, 3000), st.sampled_from([0, 1, 2, 3, 7]),
                                 st.integers(0, 900), st.sampled_from([0.0, 0.1, 0.9])),
                       min_size=1, max_size=5))
def test_a_groups_aggregate_from_pyramids_equals_the_one_from_every_step(seed, agg, buckets,
                                                                         shapes):
    rng = np.random.default_rng(seed)
    series = [make_series(rng, *shape) for shape in shapes]
    got = group_pyramid.reduce_group([member(*pair) for pair in series], agg, buckets)
    want = reference(series, agg, buckets)
    if got is None:
        # Left to the caller: every member's points fit the budget, so nothing is reduced.
        longest = max(int(np.isfinite(values).sum()) for _, values in series)
        assert longest <= 2 * buckets or want.x.size <= 1
        return
    if want.x.size <= 2 * buckets:
        # Steps repeated so often that the aligned steps fit the budget although a member's
        # rows do not: the pyramid still buckets them (each point drawn is an aligned one).
        assert set(got.x.tolist()) <= set(want.x.tolist())
        return
    assert_same(got, want)


def test_members_ending_early_and_logging_other_steps_are_aggregated_where_they_have_values():
    rng = np.random.default_rng(1)
    series = [make_series(rng, 40_000, 1, 0, 0.0),  # every step
              make_series(rng, 9_000, 3, 500, 0.0),  # every third, starting late, ending early
              make_series(rng, 15_000, 2, 1, 0.5)]  # odd steps, half of them missing
    for agg in groups.AGGREGATES:
        got = group_pyramid.reduce_group([member(*pair) for pair in series], agg, 256)
        want = reference(series, agg, 256)
        assert_same(got, want)
        assert set(got.count.tolist()) == {1, 2, 3}, "the count follows who has a value"


def test_rows_past_the_pyramid_are_read_raw():
    rng = np.random.default_rng(2)
    series = [make_series(rng, 30_000, 1, 0, 0.05) for _ in range(3)]
    # The pyramid covers the first 20,000 rows; the rest arrived since (a live run).
    got = group_pyramid.reduce_group([member(*pair, covered=20_000) for pair in series],
                                     "mean", 128)
    assert_same(got, reference(series, "mean", 128))


def test_a_group_reads_o_buckets_log_rows_values():
    rng = np.random.default_rng(3)
    rows = 400_000
    members = [member(*make_series(rng, rows, 1, 0, 0.01)) for _ in range(4)]
    assert group_pyramid.reduce_group(members, "mean", 256) is not None
    for m in members:
        # Two raw edges of < 64 rows per bucket, two blocks per level, and a few values
        # at each bucket's edges: far from the 400,000 rows every step would read.
        assert m.reader.reads < 256 * (2 * 64 + 3 * 2 * 20 + 8), m.reader.reads
        assert m.reader.reads < rows // 4


def project(tmp_path: Path, steps: int = 6000) -> ProjectStore:
    """Six runs in three learning-rate groups, one logging every other step and stopping
    early, values with a NaN and an Inf; served from the store (pyramids built)."""
    db = ProjectDB(tmp_path / "p.db")
    rng = np.random.default_rng(7)
    runs = {f"lr{lr}-s{seed}": lr for lr in (1, 2, 3) for seed in range(2)}
    for name, lr in runs.items():
        db.config(name, {"lr": lr * 1e-3})
    db.conn.execute("BEGIN")
    for step in range(steps):
        for index, name in enumerate(runs):
            if index == 5 and (step % 2 or step > steps * 2 // 3):
                continue
            value = float(rng.normal()) + runs[name]
            if step == 1234 and index == 0:
                value = math.nan
            if step == 4321 and index == 3:
                value = math.inf
            db.log(name, step, {"loss": value, "acc": -value})
    db.conn.execute("COMMIT")
    return ProjectStore(tmp_path, 2**30, SeriesStore(tmp_path / "store", 2**30))


@pytest.mark.parametrize("agg", groups.AGGREGATES)
def test_a_grouped_page_from_pyramids_draws_what_every_step_gives(tmp_path, monkeypatch, agg):
    state = project(tmp_path).get("p")
    assert all(c.pyramid is not None for c in state.metrics.values())
    view = View(group="config:lr", agg=agg)
    page = dashboard.build_page("p", state, view, 2000)
    calls = []
    real = group_pyramid.reduce_group
    monkeypatch.setattr(group_pyramid, "reduce_group",
                        lambda *a: calls.append(1) or real(*a))
    drawn = {panel.id: dashboard.full_data(state, page, panel, 2000) for panel in page.panels}
    assert calls, "the groups were read through the pyramids"
    monkeypatch.setattr(dashboard, "_group_from_pyramids", lambda *a: None)
    whole = {panel.id: dashboard.full_data(state, page, panel, 2000) for panel in page.panels}
    assert drawn.keys() == whole.keys() and drawn
    for panel_id, series in drawn.items():
        assert [s["n"] for s in series] == [s["n"] for s in whole[panel_id]]
        assert {s["n"] for s in series} == {"0.001 (n=2)", "0.002 (n=2)", "0.003 (n=2)"}
        for got, want in zip(series, whole[panel_id], strict=True):
            assert got == want, (panel_id, got["n"])


def test_other_grouped_views_read_every_step_as_before(tmp_path, monkeypatch):
    state = project(tmp_path).get("p")
    calls = []
    monkeypatch.setattr(group_pyramid, "reduce_group", lambda *a: calls.append(1))
    for view in (View(group="config:lr", band="std"), View(group="config:lr", smoothing=5),
                 View(group="config:lr", x_axis="time")):
        page = dashboard.build_page("p", state, view, 2000)
        for panel in page.panels:
            assert dashboard.full_data(state, page, panel, 2000)
    assert not calls, "std bands, smoothing and time axes need every aligned step"


@pytest.mark.parametrize("x_range", [(1000.0, 1100.0), (1233.5, 1236.0), (3990.0, 4500.0),
                                     (-100.0, 30.0), (5990.0, 9000.0), (0.0, 6000.0)])
@pytest.mark.parametrize("view", [View(group="config:lr"), View(group="config:lr", band="ci95"),
                                  View(group="config:lr", agg="median", smoothing=3),
                                  View(group="config:lr", smoother="ema", smoothing=40)])
def test_a_grouped_zoom_reads_its_range_and_draws_what_the_whole_series_gives(
        tmp_path, monkeypatch, x_range, view):
    state = project(tmp_path).get("p")
    page = dashboard.build_page("p", state, view, 2000)
    panel = next(p for p in page.panels if p.metric == "loss")
    read = []
    real = dashboard.group_series

    def windowed(run, columns, view, metric, x_range):
        x, y = real(run, columns, view, metric, x_range)
        read.append(x.size)
        return x, y

    monkeypatch.setattr(dashboard, "group_series", windowed)
    zoomed = dashboard.group_data(state, page, panel, 2000, x_range)
    low, high = x_range
    inside = max(0.0, min(high, 6000) - max(low, 0)) + 1
    assert max(read) <= inside + 2 * 64, "each member read its range and a few neighbours"
    monkeypatch.setattr(dashboard, "group_series", lambda run, columns, view, metric, _:
                        real(run, columns, view, metric, None))
    assert zoomed == dashboard.group_data(state, page, panel, 2000, x_range)
