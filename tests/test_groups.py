"""Grouping runs and each group's aggregate line and band, on known numbers."""

from __future__ import annotations

import html
import math
import re
import sqlite3
import warnings
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from builders import ProjectDB
from helpers import assert_inert, delta, panel_data, poll_url
from hypothesis import given, settings
from hypothesis import strategies as st
from sweep_zoo import HOSTILE, SWEEP, log_sweep, loss
from sweep_zoo import RUNS as SWEEP_RUNS
from sweep_zoo import STEPS as SWEEP_STEPS

from trackio_flask import groups
from trackio_flask.groups import Grouping, GroupingError

STEPS = np.arange(5.0)
MEMBERS = [(STEPS, np.array([1.0, 2.0, 3.0, 4.0, 5.0])),
           (STEPS, np.array([3.0, 2.0, 5.0, 4.0, 9.0])),
           (STEPS, np.array([2.0, 8.0, 1.0, 4.0, 7.0]))]
CONFIGS = {
    "a": {"lr": 0.001, "model": {"depth": 4, "_secret": 1}, "_Created": "x", "_Group": "base"},
    "b": {"lr": 0.001, "model": {"depth": 8}, "_Created": "y", "_Group": "base"},
    "c": {"lr": 0.0003, "model": {"depth": 8}, "_Created": "z", "_Username": "eve"},
}
RUNS = [("a", "sweep-lr1-seed0"), ("b", "sweep-lr1-seed1"), ("c", "sweep-lr3-seed0")]


def test_band_is_members_min_and_max_and_line_their_mean_at_each_step():
    agg = groups.aggregate(MEMBERS, "mean", "minmax")
    assert agg.x.tolist() == STEPS.tolist()
    assert agg.lo.tolist() == [1.0, 2.0, 1.0, 4.0, 5.0]
    assert agg.hi.tolist() == [3.0, 8.0, 5.0, 4.0, 9.0]
    assert agg.y.tolist() == pytest.approx([2.0, 4.0, 3.0, 4.0, 7.0])
    assert agg.count.tolist() == [3] * 5


def test_median_line_and_std_band_around_it():
    agg = groups.aggregate(MEMBERS, "median", "std")
    assert agg.y.tolist() == [2.0, 2.0, 3.0, 4.0, 7.0]
    std = np.std(np.array([m[1] for m in MEMBERS]), axis=0, ddof=1)
    assert agg.hi - agg.y == pytest.approx(std)
    assert agg.y - agg.lo == pytest.approx(std)


def test_stderr_and_ci95_bands_around_the_mean():
    values = np.array([m[1] for m in MEMBERS])
    stderr = np.std(values, axis=0, ddof=1) / math.sqrt(3)
    se_band = groups.aggregate(MEMBERS, "mean", "stderr")
    assert se_band.hi - se_band.y == pytest.approx(stderr)
    ci = groups.aggregate(MEMBERS, "mean", "ci95")
    # t(0.975, df=2) = 4.303
    assert ci.hi - ci.y == pytest.approx(4.303 * stderr)
    assert ci.y - ci.lo == pytest.approx(4.303 * stderr)


def test_members_logged_at_different_steps_are_aligned_not_extrapolated():
    early = (np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    late = (np.array([5.0, 20.0]), np.array([100.0, 100.0]))
    agg = groups.aggregate([early, late], "mean", "minmax")
    assert agg.x.tolist() == [0.0, 5.0, 10.0, 20.0]
    # step 5: early interpolates to 5; step 0 and 20 have one member only
    assert agg.lo.tolist() == [0.0, 5.0, 10.0, 100.0]
    assert agg.hi.tolist() == [0.0, 100.0, 100.0, 100.0]
    assert agg.count.tolist() == [1, 2, 2, 1]


def test_a_step_logged_twice_keeps_every_value_in_the_band_and_the_others_in_place():
    # A resumed run logged step 2 again and skipped step 1: as many points as the aligned
    # steps of its range, which once made its values land one step early.
    resumed = (np.array([0.0, 2.0, 2.0, 3.0]), np.array([0.0, 20.0, 22.0, 30.0]))
    every = (np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 10.0, 21.0, 30.0]))
    agg = groups.aggregate([resumed, every], "mean", "minmax")
    assert agg.x.tolist() == [0.0, 1.0, 2.0, 3.0]
    # Step 1: the resumed run's line runs from step 0 to the first value at step 2 (20);
    # step 2: its line leaves from the last value (22), the band holds 20 as well.
    assert agg.y.tolist() == [0.0, 10.0, 21.5, 30.0]
    assert agg.lo.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert agg.hi.tolist() == [0.0, 10.0, 22.0, 30.0]


def test_non_finite_values_are_left_out_of_the_aggregate():
    agg = groups.aggregate([(STEPS, np.array([1.0, np.nan, 3.0, np.inf, 5.0])),
                            (STEPS, np.array([3.0, 4.0, 5.0, 6.0, 7.0]))], "mean", "minmax")
    # the NaN and the Inf rows are dropped; that member is interpolated over them
    assert agg.y.tolist() == pytest.approx([2.0, 3.0, 4.0, 5.0, 6.0])


def test_downsampling_after_aggregation_keeps_the_bands_extremes():
    x = np.arange(1000.0)
    spike = np.zeros(1000)
    spike[501] = 50.0
    agg = groups.aggregate([(x, spike), (x, -spike)], "mean", "minmax")
    small = groups.downsample(agg, 10)
    assert small.x.size <= 11
    assert small.hi.max() == 50.0 and small.lo.min() == -50.0


def numpy_aggregate(members, agg: str, band: str) -> groups.Aggregate:
    """The aggregate spelled with numpy's nan-functions over the aligned matrix (what
    `aggregate` computed before it was written in fewer passes), a min–max band also holding
    each value of a repeated step."""
    cleaned = []
    for x, y in members:
        keep = np.isfinite(x) & np.isfinite(y)
        order = np.argsort(x[keep], kind="stable")
        cleaned.append((x[keep][order], y[keep][order]))
    xs, m = groups.align(cleaned)
    count = np.sum(np.isfinite(m), axis=0)
    has = count > 0
    xs, m, count = xs[has], m[:, has], count[has]
    centre = np.nanmean(m, axis=0) if agg == "mean" else np.nanmedian(m, axis=0)
    if band == "minmax":
        lo, hi = np.nanmin(m, axis=0), np.nanmax(m, axis=0)
        for x, y in cleaned:  # every value of a step a member logged more than once
            for step in np.unique(x[1:][x[1:] == x[:-1]]):
                at = int(np.searchsorted(xs, step))
                lo[at] = min(lo[at], y[x == step].min())
                hi[at] = max(hi[at], y[x == step].max())
        return groups.Aggregate(xs, centre, lo, hi, count)
    if band == "none":
        return groups.Aggregate(xs, centre, centre, centre, count)
    spread = np.zeros(xs.size)
    several = count > 1
    spread[several] = np.nanstd(m[:, several], axis=0, ddof=1)
    if band in ("stderr", "ci95"):
        spread = spread / np.sqrt(count)
    if band == "ci95":
        spread = spread * np.array([groups.t95(int(n) - 1) if n > 1 else 0.0 for n in count])
    around = centre if band == "std" else np.nanmean(m, axis=0)
    return groups.Aggregate(xs, centre, around - spread, around + spread, count)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), agg=st.sampled_from(groups.AGGREGATES),
       band=st.sampled_from(groups.BANDS),
       shapes=st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["every", "repeats",
                                                                         "shuffled", "strided"])),
                       min_size=1, max_size=6))
def test_the_aggregate_gives_numpys_nan_functions_numbers_bit_for_bit(seed, agg, band, shapes):
    rng = np.random.default_rng(seed)
    members = []
    for rows, kind in shapes:
        x = {"every": np.arange(rows), "repeats": np.sort(rng.integers(0, rows + 1, rows)),
             "shuffled": rng.permutation(rows),
             "strided": 3 * np.arange(rows) + int(rng.integers(0, 5))}[kind].astype(float)
        y = rng.normal(size=rows)
        y[rng.random(rows) < 0.2] = math.nan
        if rows:
            y[int(rng.integers(0, rows))] = math.inf
        members.append((x, y))
    got = groups.aggregate(members, agg, band)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanstd of one value: dof 0
        want = numpy_aggregate(members, agg, band)
    for name in ("x", "y", "lo", "hi"):
        assert getattr(got, name).tobytes() == getattr(want, name).tobytes(), name
    assert got.count.tolist() == want.count.tolist()


def test_group_by_nested_config_key_trackio_group_and_name_pattern():
    by_depth = groups.assign(Grouping("config", "model.depth"), RUNS, CONFIGS)
    assert by_depth == [("4", ["a"]), ("8", ["b", "c"])]
    by_lr = groups.assign(Grouping("config", "lr"), RUNS, CONFIGS)
    assert by_lr == [("0.0003", ["c"]), ("0.001", ["a", "b"])]  # numeric order
    by_trackio = groups.assign(Grouping("trackio"), RUNS, CONFIGS)
    assert by_trackio == [("base", ["a", "b"]), ("(none)", ["c"])]
    by_name = groups.assign(groups.parse_grouping(r"name:lr(\d+)-seed"), RUNS, CONFIGS)
    assert by_name == [("1", ["a", "b"]), ("3", ["c"])]
    no_capture = groups.assign(groups.parse_grouping("name:seed0"), RUNS, CONFIGS)
    assert no_capture == [("seed0", ["a", "c"]), ("(no match)", ["b"])]


def test_private_keys_are_never_offered_or_accepted():
    keys = groups.config_keys(CONFIGS.values())
    assert keys == ["lr", "model.depth"]
    assert groups.has_trackio_groups(CONFIGS.values())
    for spec in ("config:_Created", "config:_Username", "config:model._secret"):
        with pytest.raises(GroupingError):
            groups.parse_grouping(spec)


@pytest.mark.parametrize("spec", ["lr", "config:", "name:", "name:(", "name:" + "a" * 201,
                                  "config:" + "k" * 201, "other:x"])
def test_bad_groupings_are_refused_with_a_reason(spec):
    with pytest.raises(GroupingError):
        groups.parse_grouping(spec)


def test_name_patterns_run_in_linear_time_whatever_they_are():
    # A catastrophic-backtracking pattern for backtracking engines; RE2 answers at once.
    grouping = groups.parse_grouping(r"name:(a+)+$")
    runs = [("x", "a" * 5000 + "!")]
    assert groups.assign(grouping, runs, {}) == [("(no match)", ["x"])]


def test_welch_difference_matches_hand_computation():
    a = [0.80, 0.82, 0.81, 0.79]
    b = [0.85, 0.86, 0.84, 0.88]
    diff = groups.welch_difference("lr=1e-3", a, "lr=3e-4", b)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 4
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 3)
    assert diff.diff == pytest.approx(np.mean(b) - np.mean(a))
    assert diff.df == pytest.approx(df)
    half = groups.t95(int(df)) * math.sqrt(va + vb)
    assert (diff.low, diff.high) == pytest.approx((diff.diff - half, diff.diff + half))
    assert diff.significant
    noisy = groups.welch_difference("a", [0.1, 0.9, 0.5], "b", [0.2, 0.8, 0.6])
    assert not noisy.significant
    assert groups.welch_difference("a", [1.0], "b", [2.0, 3.0]) is None


def test_t_quantiles():
    assert groups.t95(1) == 12.706
    assert groups.t95(30) == 2.042
    assert 2.000 < groups.t95(50) < 2.021
    assert groups.t95(10**6) == pytest.approx(1.96, abs=1e-3)


# ---- the Metrics page with group bands ------------------------------------------------------

@pytest.fixture
def sweep(data_dir):
    log_sweep(data_dir)
    return data_dir


def _loss_panel(client, query: str) -> list[dict]:
    body = client.get(f"/projects/{SWEEP}?{query}").data
    panels = panel_data(body)
    for series_list in panels:
        if series_list and series_list[0].get("n", "").startswith("0.0003"):
            return series_list
    raise AssertionError("no grouped panel found")


def test_grouped_chart_draws_per_group_a_mean_line_and_min_max_band(client, sweep):
    res = client.get(f"/projects/{SWEEP}?group=config:lr")
    assert res.status_code == 200
    loss_series = [s for s in panel_data(res.data) if s and s[0]["y"][0] > 9][0]
    by_name = {s["n"]: s for s in loss_series}
    assert set(by_name) == {"0.0003 (n=3)", "0.001 (n=3)", f"{HOSTILE} (n=1)"}
    low = by_name["0.001 (n=3)"]
    assert low["g"] == 3 and low["x"] == list(SWEEP_STEPS)
    offsets = [SWEEP_RUNS[f"lr1-seed{i}"][3] for i in range(3)]
    for step in SWEEP_STEPS:
        values = [loss(o, step) for o in offsets]
        assert low["lo"][step] == pytest.approx(min(values), abs=1e-4)
        assert low["hi"][step] == pytest.approx(max(values), abs=1e-4)
        assert low["y"][step] == pytest.approx(sum(values) / 3, abs=1e-4)
    colours = {s["c"] for s in loss_series}
    assert len(colours) == 3  # a colour per group


def test_group_by_name_regex_median_and_ci_band(client, sweep):
    res = client.get(f"/projects/{SWEEP}", query_string={
        "group": "name", "group_re": r"^(lr\d)-seed", "agg": "median", "band": "ci95"})
    assert res.status_code == 200
    names = {s["n"] for series in panel_data(res.data) for s in series}
    assert {"lr1 (n=3)", "lr3 (n=3)", "(no match) (n=1)"} <= names
    # the page's poll and links carry the grouping in one canonical parameter
    query = parse_qs(urlsplit(poll_url(res.data)).query)
    assert query["group"] == [r"name:^(lr\d)-seed"] and query["band"] == ["ci95"]


def test_group_control_offers_public_keys_only(client, sweep):
    body = client.get(f"/projects/{SWEEP}").data.decode()
    for offered in ('value="config:lr"', 'value="config:model.depth"', 'value="trackio"'):
        assert offered in body
    for private in ("config:_Created", "config:_Username", "config:_Group"):
        assert private not in body
    assert_inert(body, "metrics page")


@pytest.mark.parametrize("query", ["group=config:_Created", "group=nonsense", "group=name:(",
                                   "group=config:lr&agg=max", "group=config:lr&band=iqr",
                                   "group=config:lr&x_axis=wall"])
def test_bad_groupings_are_400_on_strict_endpoints_and_a_notice_on_the_page(client, sweep, query):
    page = client.get(f"/projects/{SWEEP}?{query}")
    assert page.status_code == 200
    assert b"showing the default instead" in page.data
    refresh = client.get(f"/projects/{SWEEP}/refresh?{query}")
    assert refresh.status_code == 400


def test_grouped_page_polls_send_a_groups_new_steps(client, sweep):
    res = client.get(f"/projects/{SWEEP}?group=config:lr")
    db = ProjectDB.__new__(ProjectDB)  # the existing file: no schema statements
    db.conn = sqlite3.connect(sweep / f"{SWEEP}.db", isolation_level=None)
    db.legacy = db.as_text = False
    db.log("lr1-seed0", 20, {"loss": 100.0})
    db.close()
    again = client.get(poll_url(res.data))
    assert again.status_code == 200
    assert b"panel-data" not in again.data  # a delta of the groups that moved, not a redraw
    low = [s for series in delta(again.data).values() for s in series if s["n"] == "0.001 (n=3)"]
    # Only lr1-seed0 logged step 20 (its group mates end at 19): the group's point there is its.
    assert [(s["x"], s["y"], s["hi"]) for s in low] == [([20], [100], [100])] * len(low)
    assert len(low) == 1 and 19 < low[0]["k"] <= 20


def test_grouped_chart_csv_lists_each_groups_line_and_band(client, sweep):
    body = client.get(f"/projects/{SWEEP}?group=config:lr").data.decode()

    loss_panel = re.search(r'<figure class="panel" id="(\w+)"[^>]*data-metric="loss"', body).group(1)
    link = next(html.unescape(m) for m in re.findall(r'href="([^"]*series\.csv[^"]*)"', body)
                if "raw=1" not in m and f"panel={loss_panel}" in m)
    text = client.get(link).data.decode()
    header, *rows = text.splitlines()
    assert header == "group,runs,step,mean,minmax_low,minmax_high"
    row = next(r.split(",") for r in rows if r.startswith("0.001,3,19,"))
    values = [loss(SWEEP_RUNS[f"lr1-seed{i}"][3], 19) for i in range(3)]
    assert float(row[3]) == pytest.approx(sum(values) / 3)
    assert (float(row[4]), float(row[5])) == pytest.approx((min(values), max(values)))
    # A hostile label is a text cell, not a formula
    assert any(r.startswith("<img") for r in rows)


def test_a_hidden_group_is_left_out_of_the_charts_but_listed_to_show_again(client, sweep):
    res = client.get(f"/projects/{SWEEP}?group=config:lr&hide_group=0.001")
    names = {s["n"] for series in panel_data(res.data) for s in series}
    assert "0.0003 (n=3)" in names and not any(n.startswith("0.001 ") for n in names)
    body = res.data.decode()
    chips = re.search(r'<div id="group-chips".*?</div>', body, re.S).group(0)
    assert '<input type="hidden" name="hide_group" value="0.001" form="controls">' in chips
    assert chips.count('class="group-chip off"') == 1
    assert "3 groups of 7 runs" in chips
    query = parse_qs(urlsplit(poll_url(res.data)).query)
    assert query["hide_group"] == ["0.001"]
    # hide_group means nothing without a grouping, and an overlong one is refused
    assert client.get(f"/projects/{SWEEP}/refresh?hide_group=" + "x" * 300 + "&group=config:lr"
                      ).status_code == 400


@pytest.mark.parametrize("extra", ["smoothing=5", "smoothing=30&smoother=ema", "log_y=1",
                                   "x_axis=time", "band=none", "band=std&agg=median"])
def test_grouped_charts_follow_the_other_settings(client, sweep, extra):
    res = client.get(f"/projects/{SWEEP}?group=config:lr&{extra}")
    assert res.status_code == 200 and b"showing the default instead" not in res.data
    low = [s for series in panel_data(res.data) for s in series if s["n"] == "0.001 (n=3)"]
    assert len(low) == 2  # acc and loss
    for series in low:
        assert len(series["x"]) == len(series["y"]) == len(series["lo"]) == len(series["hi"]) == 20
        # every band here is centred on the line or spans the members: the line lies inside
        assert all(lo <= y + 1e-4 and y <= hi + 1e-4
                   for lo, y, hi in zip(series["lo"], series["y"], series["hi"], strict=True))
        if "smoothing" in extra:
            assert len(series["s"]) == 20


def test_past_forty_groups_the_largest_are_drawn_and_the_page_says_so(client, data_dir):
    db = ProjectDB(data_dir / "many.db")
    for run in range(50):
        db.config(f"r{run}", {"seed": run, "lr": 0.1})
        db.log(f"r{run}", 0, {"loss": float(run)})
    db.config("r-extra", {"seed": 7, "lr": 0.2})  # seed 7 is the one group of two
    db.log("r-extra", 0, {"loss": 1.0})
    db.close()
    res = client.get("/projects/many?group=config:seed")
    names = {s["n"] for series in panel_data(res.data) for s in series}
    assert len(names) == groups.MAX_GROUPS and "7 (n=2)" in names
    assert "the 40 largest of 50 groups of 51 runs" in res.data.decode()
