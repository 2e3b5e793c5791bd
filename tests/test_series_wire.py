"""The chart payload: point budget, min/max bands, compact numbers, NaN/Inf markers, zoom ranges."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from builders import ProjectDB
from hypothesis import given, settings
from hypothesis import strategies as st

from trackio_flask import caching, charts, dashboard
from trackio_flask.series import (
    LOGGED_NAN,
    Columns,
    bucket_by_x,
    json_values,
    logged_nan,
    quantise,
    scalar_metrics,
    thin_positions,
)
from trackio_flask.views.series import snap


def test_buckets_keep_each_columns_last_point_and_its_extremes():
    x = np.arange(10.0)
    y = np.array([0, 9, 1, 2, -5, 3, 4, 5, 6, 7], dtype=float)
    picked, lo, hi = bucket_by_x(x, y, 2)
    assert picked.tolist() == [0, 4, 9]  # the first sample, then the last of each half
    assert lo.tolist() == [0, -5, 3] and hi.tolist() == [0, 9, 7]  # the spike and dip survive


def test_buckets_follow_x_not_row_count():
    x = np.array([0.0, 1, 2, 3, 100])  # a gap: the last bucket holds one point
    picked, lo, hi = bucket_by_x(x, np.arange(5.0), 4)
    assert picked.tolist() == [0, 3, 4]


def test_marker_positions_are_thinned_to_one_per_bucket():
    assert thin_positions(np.array([5.0, 1.0]), 10).tolist() == [5.0, 1.0]
    thinned = thin_positions(np.arange(1000.0), 10)
    assert thinned.size == 10 and thinned[0] == 0


def test_values_are_rounded_to_a_hundred_thousandth_of_their_range():
    values = np.array([2.302585093, 2.302600001, 0.012345678])
    assert quantise(values, 2.3).tolist() == [2.30259, 2.3026, 0.01235]
    # A series that moves by 1e-6 keeps digits enough to show it.
    assert quantise(np.array([1.0000012345678]), 1e-6).tolist() == [1.00000123457]
    # Flat: 7 significant digits.
    assert quantise(np.array([0.123456789]), 0.0).tolist() == [0.1234568]


def test_whole_numbers_travel_without_decimal_point():
    assert json.dumps(json_values(np.array([0.0, 5.0, 12.0]))) == "[0, 5, 12]"
    assert json.dumps(json_values(np.array([0.5, 2.0]))) == "[0.5, 2.0]"
    assert json_values(np.array([1.0, math.inf])) == [1.0, None]


def test_a_logged_nan_differs_from_a_missing_value():
    assert scalar_metrics({"a": "NaN"})["a"] is LOGGED_NAN
    columns = Columns()
    columns.extend([1, 2, 3], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0],
                   [{"a": 1.0}, {"a": LOGGED_NAN}, {"b": 1.0}])
    assert logged_nan(columns.column("a")).tolist() == [False, True, False]
    assert math.isnan(columns.column("a")[2])  # absent, not logged as NaN


@pytest.mark.parametrize("runs,expected", [(1, 256), (8, 256), (16, 256), (32, 128),
                                           (200, 32), (5000, 32)])
def test_runs_of_a_chart_share_its_point_budget(runs, expected):
    assert dashboard.buckets_per_series(runs, 1500) == expected
    assert dashboard.buckets_per_series(runs, 10) == 10  # MAX_POINTS still caps a series


def _page(client, project, query=""):
    """The panel data of a page, by metric."""
    from helpers import panel_data

    body = client.get(f"/projects/{project}{query}").data
    import re

    metrics = re.findall(rb'data-metric="([^"]*)"', body)
    return dict(zip([m.decode() for m in metrics], panel_data(body), strict=True))


@pytest.fixture
def long_run(data_dir):
    """One run of 20,000 steps with a double spike inside one pixel column, and NaN/Inf rows."""
    db = ProjectDB(data_dir / "long.db")

    def values(step):
        if step in (10_001, 10_003):
            return {"loss": 5.0 if step == 10_001 else 4.0}
        if step == 500:
            return {"loss": "NaN"}
        if step == 600:
            return {"loss": "Infinity"}
        if step == 700:
            return {"loss": "-Infinity"}
        return {"loss": 1.0 + 0.1 * math.sin(step / 50)}

    db.log_many("solo", range(20_000), values)
    db.close()
    return db


def test_short_series_are_sent_whole_with_no_index_when_it_equals_the_step(client, project_db):
    loss = _page(client, "p")["train/loss"]
    alpha = next(s for s in loss if s["n"] == "alpha")
    assert alpha["x"] == list(range(50)) and "i" not in alpha
    assert not {"lo", "hi", "t"} & set(alpha)


def test_long_series_are_bucketed_with_a_band_and_their_total(client, long_run):
    (solo,) = _page(client, "long")["loss"]
    assert solo["t"] == 20_000 - 3  # NaN, +Inf and -Inf are not drawable points
    # A bucket per assumed pixel, and the first point.
    assert len(solo["x"]) == len(solo["y"]) == len(solo["lo"]) == len(solo["hi"]) <= 257
    assert all(lo <= y <= hi for lo, y, hi in zip(solo["lo"], solo["y"], solo["hi"], strict=True))
    assert max(solo["hi"]) == 5.0  # the spike is in the band …
    assert max(solo["y"]) < 2  # … though no line point stands on it
    assert solo["nan"] == [500] and solo["inf"] == [600] and solo["ninf"] == [700]


def test_page_bytes_stay_small_for_many_runs(client, data_dir):
    db = ProjectDB(data_dir / "many.db")
    for run in range(40):
        db.log_many(f"r{run}", range(2000), lambda s, run=run: {"m": 1 / (s + 1) + run * 1e-3})
    db.close()
    (series,) = _page(client, "many").values()
    drawn = sum(len(s["x"]) for s in series)
    assert drawn <= dashboard.CHART_POINTS + 40  # shared by the 40 runs (+ their first points)


def test_zoom_answers_the_range_at_full_resolution_and_is_cached(client, long_run):
    before = caching.computations["count"]
    response = client.get("/projects/long/series?xmin=9990.34&xmax=10010.65")
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("public, max-age=0, s-maxage=")
    answer = response.get_json()
    assert (answer["xmin"], answer["xmax"]) == (9990.3, 10010.7)  # 3 digits of the width
    (solo,) = answer["panels"].values()
    (solo,) = solo
    assert solo["x"] == list(range(9990, 10012))  # every step, plus a neighbour each side
    assert 5.0 in solo["y"] and 4.0 in solo["y"] and "t" not in solo
    # The same snapped range from other raw numbers: the same cache entry.
    again = client.get("/projects/long/series?xmin=9990.3&xmax=10010.7").get_json()
    assert again == answer
    assert caching.computations["count"] - before == 1


def test_zoom_range_is_clamped_to_the_data(client, long_run):
    answer = client.get("/projects/long/series?xmin=-1e200&xmax=1e200").get_json()
    assert (answer["xmin"], answer["xmax"]) == (0.0, 20_000.0)
    empty = client.get("/projects/long/series?xmin=1e9&xmax=2e9").get_json()
    assert empty == {"xmin": None, "xmax": None, "panels": {}}


@pytest.mark.parametrize("query", ["", "xmin=1", "xmin=a&xmax=2", "xmin=5&xmax=5",
                                   "xmin=nan&xmax=1", "xmin=1&xmax=inf"])
def test_bad_zoom_ranges_are_a_400(client, long_run, query):
    assert client.get(f"/projects/long/series?{query}").status_code == 400


def test_zoom_requests_share_the_refresh_rate_limit(data_dir, long_run):
    from trackio_flask import create_app

    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_REFRESH": "2 per minute"})
    client = app.test_client()
    statuses = [client.get("/projects/long/series?xmin=0&xmax=10").status_code for _ in range(3)]
    assert statuses[:2] == [200, 200] and statuses[2] == 429


def test_snapping_keeps_three_significant_digits_of_the_width():
    assert snap(0.123456, 0.987654) == (0.123, 0.988)
    assert snap(100_001.3, 100_199.6) == (100_001.0, 100_200.0)
    assert snap(*snap(9990.34, 10010.65)) == snap(9990.34, 10010.65) == (9990.3, 10010.7)


def test_deltas_carry_new_points_raw_and_their_markers(client, data_dir, clock):
    from helpers import delta, poll_url

    db = ProjectDB(data_dir / "d.db")
    db.log_many("a", range(10), lambda s: {"m": float(s)})
    body = client.get("/projects/d").data
    db.log("a", 10, {"m": "NaN"})
    db.log("a", 11, {"m": 2.5})
    db.close()
    (series,) = next(iter(delta(client.get(poll_url(body)).data).values()))
    assert series["k"] == 10 and series["x"] == [11] and series["y"] == [2.5]
    assert "i" not in series  # the row index equals the step
    assert series["nan"] == [10]


def test_specs_are_vega_with_no_per_row_expressions():
    for shape in (charts.Shape("line", "step", False, False), charts.Shape("line", "wall", True, True),
                  charts.Shape("line", "metric", False, True), charts.Shape("bar", "step", False, False)):
        for theme in charts.THEMES:
            spec = charts.spec_for(shape, theme)
            assert "vega/v" in spec["$schema"] and "vega-lite" not in spec["$schema"]
            text = json.dumps(_without(spec, "tooltip"))  # tooltips run on hover only
            assert "isValid(datum" not in text and "toNumber(" not in text and "toDate(" not in text
            assert "description" not in text  # no ARIA text per item on a canvas
            filters = [t for d in spec["data"] for t in d.get("transform", [])
                       if t["type"] in ("filter", "formula")]
            assert filters == []
            if shape.kind == "line":
                assert {d["name"] for d in spec["data"]} >= set(charts.DATASETS)
                x_scale = next(s for s in spec["scales"] if s["name"] == "x")
                assert x_scale["domain"] == {"signal": "xext"} and "domainRaw" in x_scale


def _without(node, key):
    if isinstance(node, dict):
        return {k: _without(v, key) for k, v in node.items() if k != key}
    if isinstance(node, list):
        return [_without(v, key) for v in node]
    return node


def test_themes_differ_only_in_axis_colours():
    shape = charts.Shape("line", "step", False, False)
    light, dark = charts.spec_for(shape, "light"), charts.spec_for(shape, "dark")
    assert light["config"]["axis"] != dark["config"]["axis"]
    light["config"].pop("axis"), dark["config"].pop("axis")
    assert light == dark


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                          st.integers(-2**60, 2**60).map(float)), max_size=16))
def test_short_lists_are_written_as_long_ones_are(numbers):
    """A poll's one or two points per series take a pure-Python path: same JSON as numpy's."""
    from trackio_flask import series
    values = np.array(numbers, dtype=np.float64)
    short = series.json_values(values)
    saved, series.SMALL_LIST = series.SMALL_LIST, -1
    try:
        long = series.json_values(values)
    finally:
        series.SMALL_LIST = saved
    assert json.dumps(short) == json.dumps(long)
    assert [type(v) for v in short] == [type(v) for v in long]
