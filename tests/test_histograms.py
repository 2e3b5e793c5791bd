"""The Histograms page: geometry from known values, latest step per run, one ridge per step."""

from __future__ import annotations

import re

import numpy as np
import pytest
from builders import ProjectDB
from helpers import poll_url

from trackio_flask import histograms
from trackio_flask.live import RunInfo

HOSTILE = "<img src=x onerror=alert(1)>"


def hist(edges, counts) -> dict:
    return {"_type": "trackio.histogram", "bins": list(edges), "values": list(counts)}


@pytest.fixture
def hist_db(data_dir):
    """Project `h`: alpha logs `weights` at steps 0, 10, 20 (shifting right); beta at 0 and 5
    under a hostile name; beta also logs a malformed histogram at step 7."""
    db = ProjectDB(data_dir / "h.db")
    for step in (0, 10, 20):
        shift = step / 10
        db.log("alpha", step, {"weights": hist([shift, shift + 1, shift + 2], [1, 3]),
                               "train/loss": 1.0})
    db.log(HOSTILE, 0, {"weights": hist([0, 1, 2], [5, 5])})
    db.log(HOSTILE, 5, {"weights": hist([0, 1, 2, 3], [2, 6, 2])})
    db.log(HOSTILE, 7, {"weights": hist([0, 1], [1, 2])})  # one edge short: not drawable
    yield db
    db.close()


def test_parse_accepts_trackio_values_and_refuses_malformed_ones():
    parsed = histograms.parse(hist([0, 1, 2], [1, 3]))
    assert parsed is not None and parsed.total == 4
    for bad in (hist([0, 1], [1, 3]), hist([0, 2, 1], [1, 3]), hist([0, 1, 2], [-1, 3]),
                hist([0, "x", 2], [1, 3]), hist([], []), hist([0, 1, 2], [0, 0]),
                {"_type": "trackio.image", "bins": [0, 1], "values": [1]}, "text", None):
        assert histograms.parse(bad) is None, bad


def test_resampling_spreads_each_bin_evenly_and_keeps_the_total():
    source = histograms.parse(hist([0, 1, 2], [2, 4]))
    counts = histograms.resample(source, np.array([0, 0.5, 1, 1.5, 2, 3]))
    assert counts.tolist() == [1, 1, 2, 2, 0]


def test_percentiles_interpolate_within_bins_and_skip_empty_leading_bins():
    uniform = histograms.parse(hist([0, 1, 2, 3, 4], [1, 1, 1, 1]))
    assert histograms.percentiles(uniform, [0, 25, 50, 100]).tolist() == [0, 1, 2, 4]
    late = histograms.parse(hist([0, 1, 2], [0, 4]))
    assert histograms.percentiles(late, [0, 50]).tolist() == [1, 1.5]


def test_overlay_geometry_from_known_values():
    run = RunInfo("r", "r", 0.0, 0.0)
    edges = np.array([0.0, 1.0, 2.0])
    chart = histograms.overlay([(run, "#123456", 3.0, histograms.parse(hist(edges, [1, 3])))],
                               edges)
    frame = histograms.FRAME
    base = histograms.OVERLAY_HEIGHT - frame.bottom_pad
    low = base - (base - frame.top) / 3  # a third of the tallest bin
    middle = (frame.left + frame.right) / 2
    expected = (f"M{frame.left:.1f} {base:.1f}L{frame.left:.1f} {low:.1f}L{middle:.1f} {low:.1f}"
                f"L{middle:.1f} {frame.top:.1f}L{frame.right:.1f} {frame.top:.1f}"
                f"L{frame.right:.1f} {base:.1f}")
    assert chart.lines[0].path == expected
    assert [tick.text for tick in chart.x_ticks][0] == "0"


def test_thinning_keeps_oldest_and_newest():
    assert histograms.thin(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert histograms.thin([1, 2], 5) == [1, 2]


def test_page_overlays_the_latest_step_of_each_run(client, hist_db):
    body = client.get("/projects/h/histograms").data.decode()
    latest = body.split('class="panel hist-panel hist-latest"')[1].split("</figure>")[0]
    legend = re.findall(r'<span class="hist-run">([^<]*)</span> <span class="muted">step (\d+)',
                        latest)
    # The hostile run's step 7 value is malformed: its latest drawable step is 5.
    assert sorted(legend) == [("&lt;img src=x onerror=alert(1)&gt;", "5"), ("alpha", "20")]
    assert latest.count('class="hist-line"') == 2


def test_ridge_has_one_row_per_logged_step_newest_in_front(client, hist_db):
    body = client.get("/projects/h/histograms").data.decode()
    ridges = re.findall(r'<figure class="panel hist-panel hist-ridge".*?</figure>', body, re.S)
    rows = {re.search(r'class="hist-run">([^<]*)<', ridge).group(1):
            re.findall(r'class="ridge-row" data-step="(\d+)"', ridge) for ridge in ridges}
    assert rows == {"alpha": ["0", "10", "20"], "&lt;img src=x onerror=alert(1)&gt;": ["0", "5"]}
    # Painted in order, so the newest step (last, lowest baseline) is drawn in front.
    alpha = next(r for r in ridges if 'class="hist-run">alpha<' in r)
    baselines = [float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)">\d+</text>', alpha)]
    assert baselines == sorted(baselines) and len(set(baselines)) == 3
    assert "1 logged value(s) were empty or malformed" in body


def test_bands_display_draws_percentile_bands(client, hist_db):
    body = client.get("/projects/h/histograms?display=bands").data.decode()
    assert body.count('class="panel hist-panel hist-bands"') == 2
    assert body.count('class="hist-band"') == 2 * 4 and body.count('class="hist-median"') == 2
    assert 'class="ridge-row"' not in body


def test_run_selection_comes_from_the_url(client, hist_db):
    body = client.get("/projects/h/histograms?run_ids=id-alpha").data.decode()
    assert 'class="hist-run">alpha<' in body
    assert "onerror=alert(1)&gt;</span> <span class=\"muted\">step" not in body
    assert body.count('class="panel hist-panel hist-ridge"') == 1


def test_hostile_names_are_escaped_and_the_page_runs_no_inline_script(client, hist_db):
    response = client.get("/projects/h/histograms")
    body = response.data.decode()
    assert HOSTILE not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<script>" not in body and "onclick" not in body
    assert body.count('id="poller"') == 1
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_project_without_histograms_says_how_to_log_one(client, project_db):
    body = client.get("/projects/p/histograms").data.decode()
    assert "No histograms for the selected runs" in body


@pytest.mark.parametrize("query", ["display=pie", "smoothing=x", "run_filter=" + "a" * 300,
                                   "__theme=neon"])
def test_bad_parameters_fall_back_with_a_notice(client, hist_db, query):
    response = client.get(f"/projects/h/histograms?{query}")
    assert response.status_code == 200
    assert f'{query.split("=")[0]} ' in response.data.decode().split('class="notices"', 1)[1]


def test_the_refresh_still_refuses_bad_parameters(client, hist_db):
    assert client.get("/projects/h/histograms/refresh?display=pie&iv=1").status_code == 400


def test_unknown_project_is_404(client, hist_db):
    assert client.get("/projects/nope/histograms").status_code == 404


def test_poll_is_204_until_a_histogram_is_logged(client, hist_db):
    url = poll_url(client.get("/projects/h/histograms").data)
    assert client.get(url).status_code == 204
    hist_db.log("alpha", 21, {"train/loss": 0.5})  # a scalar only: charts unchanged
    moved = client.get(url)
    assert moved.status_code == 200 and 'id="histograms"' not in moved.data.decode()
    next_url = poll_url(moved.data)
    assert client.get(next_url).status_code == 204
    hist_db.log("alpha", 30, {"weights": hist([5, 6, 7], [2, 2])})
    fresh = client.get(next_url).data.decode()
    assert 'id="histograms" hx-swap-oob="true"' in fresh
    assert 'data-step="30"' in fresh and fresh.count('id="poller"') == 1


@pytest.mark.parametrize("iv", ["", "x", "0", "99999"])
def test_poll_with_a_bad_interval_is_400(client, hist_db, iv):
    assert client.get(f"/projects/h/histograms/refresh?v=1&iv={iv}").status_code == 400


@pytest.mark.parametrize("lo,hi", [(0, 1), (-3.2, 7.9), (1e16, 1e16 + 4), (-1e299, 1e299),
                                   (5, 5)])
def test_ticks_are_few_and_inside_the_range(lo, hi):
    ticks = histograms.nice_ticks(lo, hi)
    assert 1 <= len(ticks) <= 18 and all(lo <= t <= hi or t == lo for t in ticks)


def test_extreme_edges_are_refused_rather_than_overflowing_the_scale():
    assert histograms.parse(hist([-1e308, 0, 1e308], [1, 1])) is None
    assert histograms.parse(hist([0, float("nan"), 2], [1, 1])) is None
    assert histograms.parse(hist([0, 1, 2], [1e308, 1e308])) is None
