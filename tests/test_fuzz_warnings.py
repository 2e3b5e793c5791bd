"""numpy warnings (overflow, invalid value) set off by a request over extreme values are fuzz
findings: they mean an inf or NaN was computed where the user expects a number."""

from __future__ import annotations

import json

import pytest
from fuzzing import Req, make_app, seed_extreme, send

BASE = "/projects/extreme"
POLL = "iv=1&c=0&sc=0&e=0&v=stale"
REQUESTS = {
    "page": (BASE, ""),
    "poll": (f"{BASE}/refresh", POLL),
    "zoom": (f"{BASE}/series", "xmin=0&xmax=39"),
    "zoom past the floats": (f"{BASE}/series", "xmin=-1e308&xmax=1e308"),
    "sma": (BASE, "smoother=sma&smoothing=5"),
    "ema": (BASE, "smoother=ema&smoothing=90"),
    "ema poll": (f"{BASE}/refresh", f"smoother=ema&smoothing=90&{POLL}"),
    "log y": (BASE, "log_y=1"),
    "x axis metric": (BASE, "x_axis=metric:mix"),
    "grouped minmax": (BASE, "group=trackio&band=minmax&agg=mean&sel=all"),
    "grouped std": (BASE, "group=config:_Group&band=std&agg=mean&sel=all"),
    "grouped ci95 median": (BASE, "group=config:lr&band=ci95&agg=median&sel=all"),
    "grouped zoom": (f"{BASE}/series", "xmin=0&xmax=39&group=trackio&band=minmax&sel=all"),
    "runs table": (f"{BASE}/runs", "sort=metric:mix&order=desc"),
    "compare": (f"{BASE}/compare", "stat=mean&sel=all"),
    "sweep": (f"{BASE}/sweep", "group=config:_Group&metric=mix&x=lr&band=ci95&agg=mean"),
    "sweep groups a and b": (f"{BASE}/sweep", "group=config:_Group&metric=big&a=g0&b=g1"),
    "sweep max": (f"{BASE}/sweep", "group=trackio&metric=ramp&stat=max&band=std"),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    directory = tmp_path_factory.mktemp("extreme")
    seed_extreme(directory)
    return make_app(directory)


@pytest.mark.parametrize("name", REQUESTS)
def test_extreme_values_are_served_without_numpy_warnings(app, name):
    path, query = REQUESTS[name]
    outcome = send(app, Req(name, "GET", path, query))
    assert outcome.status == 200, outcome.report()
    assert not outcome.problems, outcome.report()


@pytest.mark.parametrize("query", ["", "&group=trackio&band=minmax&sel=all"])
def test_values_of_both_signs_near_the_largest_float_reach_the_chart_exactly(app, query):
    answer = app.test_client().get(f"{BASE}/series?xmin=0&xmax=39{query}")
    lines = [line for panel in json.loads(answer.get_data())["panels"].values() for line in panel
             if line["y"][:2] == [-1e308, 1e308]]
    assert lines, "no line carries the mix metric"
    for line in lines:
        for field in ("y", "lo", "hi"):
            assert line.get(field, [-1e308, 1e308] * 20) == [-1e308, 1e308] * 20, field
