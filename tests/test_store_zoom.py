"""A zoom reads only its window's rows (#20): the answer equals the one computed over the
whole series, for dense, sparse, gappy and non-finite metrics, with and without smoothing."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from trackio_flask import dashboard
from trackio_flask.dashboard import Source, View
from trackio_flask.live import RunInfo
from trackio_flask.series import LOGGED_NAN, Columns

ROWS = 5_000


def columns() -> Columns:
    rng = np.random.default_rng(7)
    out = Columns()
    steps = np.arange(ROWS, dtype=np.float64)
    rows = []
    for step in range(ROWS):
        values = {"dense": float(rng.normal())}
        if step % 700 == 0:
            values["sparse"] = float(step)  # the window may hold no neighbour of it
        if 1000 <= step < 1200:
            values["dense"] = [math.inf, -math.inf, LOGGED_NAN][step % 3]
        rows.append(values)
    out.extend(list(range(1, ROWS + 1)), steps.tolist(), (steps * 2).tolist(), rows)
    return out


def answer(source: Source, view: View, x_range: tuple[float, float]):
    a, core = dashboard.logged(source, SimpleNamespace(view=view), False, x_range)
    return (a.rows.tolist(), a.x.tolist(), np.asarray(a.y).tobytes(),
            {k: v.tolist() for k, v in a.marks.items()}, core), a.s


@pytest.mark.parametrize("metric", ["dense", "sparse"])
@pytest.mark.parametrize("smoothing,smoother", [(0, "sma"), (9, "sma"), (40, "sma"), (20, "ema")])
@pytest.mark.parametrize("x_range", [(2500.0, 3499.0), (1100.5, 1150.2), (0.0, 40.0),
                                     (4990.0, 6000.0), (-50.0, 10.0), (7000.0, 8000.0)])
def test_a_zoom_from_its_window_equals_the_whole_series(monkeypatch, metric, smoothing,
                                                        smoother, x_range):
    source = Source(RunInfo("r", "r", 0.0, 0.0), columns(), metric, {})
    view = View(smoothing=smoothing, smoother=smoother)
    windowed, smoothed = answer(source, view, x_range)
    monkeypatch.setattr(dashboard, "_zoomed", lambda *args: None)
    whole, whole_smoothed = answer(source, view, x_range)
    assert windowed == whole
    # The centred mean is a difference of running sums: summed from the window's start it
    # may differ in the last bits (as the page's live deltas already do), never more.
    assert (smoothed is None) == (whole_smoothed is None)
    if smoothed is not None:
        np.testing.assert_allclose(smoothed, whole_smoothed, rtol=1e-9, atol=1e-12)


def test_unsorted_steps_read_the_whole_series():
    data = Columns()
    data.extend([1, 2, 3], [5.0, 1.0, 9.0], [0.0, 0.0, 0.0], [{"m": 1.0}] * 3)
    assert not data.steps_sorted()
    source = Source(RunInfo("r", "r", 0.0, 0.0), data, "m", {})
    assert dashboard._zoomed(source, View(), False, (0.0, 6.0)) is None
    data.extend([4], [10.0], [0.0], [{"m": 2.0}])
    assert not data.steps_sorted(), "once unsorted, appends cannot sort it again"
