"""EMA smoothing on a live run costs the new rows, not the run's length (issue 20's "a live
tick costs O(new rows)"): the EMA goes on from the state the last read left, and what it
draws equals smoothing every row again. Counted in rows the EMA sees, not timed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import ProjectDB
from tests.test_series import reference_ema
from trackio_flask import dashboard, series
from trackio_flask.dashboard import View
from trackio_flask.live import ProjectStore
from trackio_flask.series import EMA_START, ema_continued

STEPS = 50_000

values_lists = st.lists(st.one_of(
    st.floats(min_value=-1e6, max_value=1e6), st.just(math.nan), st.just(math.inf),
    st.floats(min_value=-1e300, max_value=1e300)), min_size=1, max_size=600)


@settings(max_examples=150, deadline=None)
@given(values=values_lists, weight=st.sampled_from([0.0, 0.01, 0.3, 0.6, 0.9, 0.99, 0.999]),
       cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=5))
def test_an_ema_continued_in_pieces_equals_tensorboards_loop(values, weight, cuts):
    expected = np.array(reference_ema(values, weight))
    array = np.array(values)
    state, parts = EMA_START, []
    for start, stop in zip([0, *sorted(cuts)], [*sorted(cuts), len(values)], strict=True):
        part, state = ema_continued(array[start:stop], weight, state)
        parts.append(part)
    got = np.concatenate(parts)
    assert state.rows == len(values)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected)
    assert np.allclose(got[finite], expected[finite], rtol=1e-9,
                       atol=1e-12 * max(1.0, float(np.abs(expected[finite]).max(initial=0))))


@pytest.fixture
def live_run(tmp_path):
    """One 50,000-step run of two metrics, served without a store (rows in memory)."""
    db = ProjectDB(tmp_path / "p.db")
    rng = np.random.default_rng(5)
    noise = rng.normal(size=(STEPS, 2))
    db.log_many("alpha", range(STEPS),
                lambda step: {"loss": float(noise[step, 0]), "acc": float(noise[step, 1])})
    yield db, ProjectStore(tmp_path, 2**30)
    db.close()


@pytest.fixture
def ema_rows(monkeypatch):
    """The rows the EMA kernel is handed, per call."""
    seen: list[int] = []
    kernel = series._ema_biased

    def counted(kept, weight, previous):
        seen.append(int(kept.size))
        return kernel(kept, weight, previous)

    monkeypatch.setattr(series, "_ema_biased", counted)
    return seen


@pytest.mark.parametrize("smoothing", [30, 90])
def test_a_poll_smooths_only_the_new_rows_and_draws_what_smoothing_everything_does(
        live_run, ema_rows, smoothing):
    db, live = live_run
    view = View(smoothing=smoothing, smoother="ema")
    state = live.get("p")
    page = dashboard.build_page("p", state, view, 2000)
    for panel in page.panels:
        dashboard.full_data(state, page, panel, 2000)
    assert sum(ema_rows) >= 2 * STEPS  # the page smooths every row of both metrics once
    weight = smoothing / 100
    for tick in range(3):
        since = state.metric_cursor
        db.log("alpha", STEPS + tick, {"loss": 100.0 + tick, "acc": -1.0})
        state = live.get("p")
        ema_rows.clear()
        changed = {panel.metric: dashboard.delta_data(state, page, panel, since)
                   for panel in page.panels}
        assert sum(ema_rows) <= 2, ema_rows  # one new row per metric, whatever the history
        columns = state.metrics[next(iter(state.metrics))]
        for metric, delta in changed.items():
            (line,) = delta
            assert line["x"] == [STEPS + tick]
            whole = series.ema_debiased(columns.column(metric), weight)
            assert line["s"][-1] == pytest.approx(whole[-1], rel=1e-6)


def test_a_viewer_polling_from_an_older_version_still_gets_the_whole_tail_right(
        live_run, ema_rows):
    db, live = live_run
    view = View(smoothing=60, smoother="ema")
    state = live.get("p")
    page = dashboard.build_page("p", state, view, 2000)
    lagging = state.metric_cursor
    for tick in range(6):  # more versions than the memo keeps states
        since = state.metric_cursor
        db.log("alpha", STEPS + tick, {"loss": float(tick), "acc": 2.0 * tick})
        state = live.get("p")
        for panel in page.panels:
            dashboard.delta_data(state, page, panel, since)
    columns = state.metrics[next(iter(state.metrics))]
    for panel in page.panels:
        (line,) = dashboard.delta_data(state, page, panel, lagging)
        assert line["x"] == list(range(STEPS, STEPS + 6))
        whole = series.ema_debiased(columns.column(panel.metric), 0.6)
        assert line["s"] == pytest.approx(whole[-6:].tolist(), rel=1e-6)


def test_the_memo_keeps_a_few_smoothing_amounts_however_many_are_asked_for(live_run):
    db, live = live_run
    state = live.get("p")
    for amount in range(1, 100):
        page = dashboard.build_page("p", state, View(smoothing=amount, smoother="ema"), 2000)
        for panel in page.panels:
            dashboard.full_data(state, page, panel, 2000)
    for columns in state.metrics.values():
        for memo in columns.memos.values():
            assert len(memo) <= series.EMA_MEMO_WEIGHTS
            assert all(len(states) <= series.EMA_MEMO_STATES for states in memo.values())
