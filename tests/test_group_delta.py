"""A grouped page's refresh sends only what changed in each group's line and band (`k` on),
and the page patched with it draws what a fresh page at the new version draws."""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
import sqlite3

import numpy as np
import pytest
from builders import ProjectDB
from helpers import delta, poll_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackio_flask import create_app, dashboard, groups

PANEL = re.compile(rb'<figure class="panel" id="([^"]+)"[^>]*data-metric="([^"]*)".*?'
                   rb'<script type="application/json" class="panel-data">(.*?)</script>', re.S)
FIELDS = ("y", "lo", "hi", "s")
projects = itertools.count()


def unlimited(data_dir):
    """Without rate limits: a hypothesis run asks for hundreds of pages."""
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_ENABLED": False})
    return app.test_client()


@pytest.fixture
def client(data_dir):
    return unlimited(data_dir)


def fresh_page(data_dir, path: str) -> bytes:
    """A page from a new server over the same files: drawn from the data (a page of a
    structure a server served before may come from its cache, brought up to date by a poll)."""
    return unlimited(data_dir).get(path).data


def kinds(body: bytes) -> dict[str, str]:
    """Each panel's chart kind (line or bar), by panel id."""
    return {m.group(1).decode(): m.group(2).decode()
            for m in re.finditer(rb'<figure class="panel" id="([^"]+)"[^>]*data-kind="(\w+)"', body)}


def panels(body: bytes) -> dict[str, list[dict]]:
    """Each metric panel's series, by panel id."""
    return {m.group(1).decode(): json.loads(m.group(3)) for m in PANEL.finditer(body)}


def merge(series: list[dict], d: dict) -> list[dict]:
    """app.js mergeSeries: drop the group's points at x >= k, append the delta's."""
    out = [dict(s) for s in series]
    old = next((s for s in out if s["r"] == d["r"]), None)
    if old is None:
        old = {"r": d["r"], "x": [], "y": []}
        out.append(old)
    cut = len(old["x"])
    while cut and old["x"][cut - 1] >= d["k"]:
        cut -= 1
    for name in ("x", *FIELDS):
        if name in old or name in d:
            old[name] = old.get(name, [])[:cut] + d.get(name, [])
    old["n"], old["c"] = d["n"], d["c"]
    return out


def assert_same_lines(patched: list[dict], fresh: list[dict]) -> None:
    assert sorted(s["r"] for s in patched) == sorted(s["r"] for s in fresh)
    for want in fresh:
        got = next(s for s in patched if s["r"] == want["r"])
        assert got["n"] == want["n"] and got["c"] == want["c"]
        assert got["x"] == want["x"]
        # Each answer rounds values to 1/100,000 of the range it sends (band included), and a
        # page's range may have held band edges its deltas since replaced (a CI band narrows
        # as members join): equal to a thousandth of the range, far below a pixel.
        drawn = [v for line in (got, want) for name in FIELDS for v in line.get(name, [])
                 if v is not None]
        tolerance = 1e-3 * (max(drawn) - min(drawn)) + 1e-6 * max(map(abs, drawn)) + 1e-9
        for name in FIELDS:
            if name in want:
                assert got[name] == pytest.approx(want[name], abs=tolerance), name


def write(db_path, rows) -> None:
    """Rows (run, step, metrics) appended to an existing project in one transaction."""
    db = ProjectDB.__new__(ProjectDB)  # the existing file: no schema statements
    db.conn = sqlite3.connect(db_path, isolation_level=None)
    db.legacy = db.as_text = False
    db.conn.execute("BEGIN")
    for run, step, metrics in rows:
        db.log(run, step, metrics)
    db.conn.execute("COMMIT")
    db.close()


def row(value: float | None, positive: bool = False) -> dict:
    # A row without the metric leaves a gap in that member's line. On a log axis values <= 0
    # are drawn at a floor each answer picks from its own values: only positive ones there.
    if value is None:
        return {"other": 1.0}
    return {"loss": abs(value) + 1e-3 if positive else value, "other": 1.0}


values = st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False))
member = st.tuples(st.integers(1, 30), st.lists(values, min_size=1, max_size=30))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=st.lists(st.lists(member, min_size=1, max_size=3), min_size=1, max_size=3),
       rounds=st.lists(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 4), st.booleans(),
                                          values), min_size=1, max_size=12),
                       min_size=1, max_size=3),
       view=st.sampled_from(["", "&band=std", "&band=ci95&agg=median", "&band=stderr",
                             "&smoothing=5", "&smoothing=12&band=std", "&band=none&log_y=1",
                             "&smoother=ema&smoothing=60", "&smoother=ema&smoothing=95&agg=median"]))
def test_patched_grouped_page_equals_a_fresh_page(client, data_dir, groups, rounds, view):
    project = f"g{next(projects)}"
    path = data_dir / f"{project}.db"
    db = ProjectDB(path)
    runs, last = [], {}
    for g, members in enumerate(groups):
        for m, (length, logged) in enumerate(members):
            name = f"lr{g}-run{m}"
            db.config(name, {"lr": 10.0 ** -g, "seed": m})
            db.conn.execute("BEGIN")
            for step in range(length):
                db.log(name, step, row(logged[step % len(logged)], "log_y" in view))
            db.conn.execute("COMMIT")
            runs.append(name)
            last[name] = length - 1
    db.close()
    query = f"group=config:lr{view}"
    page = client.get(f"/projects/{project}?{query}")
    assert page.status_code == 200
    shown, shapes, url = panels(page.data), kinds(page.data), poll_url(page.data)
    for more in rounds:
        # Each member goes on from its last step (or logs it again, as a resumed run does).
        new_rows = []
        for index, ahead, again, value in more:
            name = runs[index % len(runs)]
            start = last[name] + (0 if again else 1)
            for step in range(start, start + ahead + 1):
                new_rows.append((name, step, row(value, "log_y" in view)))
            last[name] = start + ahead
        write(path, new_rows)
        refresh = client.get(url)
        assert refresh.status_code == 200
        now = panels(fresh_page(data_dir, f"/projects/{project}?{query}"))
        if b"panel-data" in refresh.data:
            # A redraw only when the panels changed: a metric's first values, or bars (one
            # point per run) that become a line.
            assert "bar" in shapes.values() or set(shown) != set(now)
            shown, shapes = panels(refresh.data), kinds(refresh.data)
        else:
            changes = delta(refresh.data) if b'id="delta"' in refresh.data else {}
            shown = {panel_id: functools.reduce(merge, changes.get(panel_id, []), series)
                     for panel_id, series in shown.items()}
        assert set(shown) == set(now)
        for panel_id, series in shown.items():
            assert_same_lines(series, now[panel_id])
        url = poll_url(refresh.data)


def sweep_of(data_dir, project: str, lengths: dict[str, int]) -> None:
    db = ProjectDB(data_dir / f"{project}.db")
    for name, length in lengths.items():
        db.config(name, {"lr": 0.1 if name.startswith("a") else 0.01})
        db.log_many(name, range(length), lambda step, n=name: {"loss": len(n) + math.sin(step / 50)})
    db.close()


def test_a_poll_sends_the_new_steps_of_a_long_group_not_its_whole_line(client, data_dir):
    sweep_of(data_dir, "long", {"a1": 4000, "a2": 4000, "b1": 4000})
    page = client.get("/projects/long?group=config:lr")
    write(data_dir / "long.db", [(name, 4000, {"loss": 7.0}) for name in ("a1", "a2", "b1")])
    refresh = client.get(poll_url(page.data))
    assert b"panel-data" not in refresh.data
    (loss,) = delta(refresh.data).values()
    assert sorted(len(d["x"]) for d in loss) == [1, 1]
    assert all(d["x"] == [4000] and d["y"] == [7.0] and d["k"] > 3999 for d in loss)
    assert len(refresh.data) < 2_000  # the page held ~500 points per group


def test_a_member_catching_up_from_far_behind_resends_its_groups_line_once_per_version(
        client, data_dir, monkeypatch):
    """Its change reaches back 3,000 steps: the group's whole line (as a page draws it, from
    the pyramids where it can) instead of 3,000 raw points, computed once for every page."""
    sweep_of(data_dir, "lag", {"a1": 4000, "a2": 1000, "b1": 4000})
    old_page = client.get("/projects/lag?group=config:lr")
    write(data_dir / "lag.db", [("b1", 4000, {"loss": 1.0})])
    url = poll_url(client.get(poll_url(old_page.data)).data)  # a page at the next version
    assert url != poll_url(old_page.data)
    write(data_dir / "lag.db", [("a2", 1000, {"loss": 9.0})])
    lines = []
    whole = dashboard.group_line

    def counted(*args, **kwargs):
        lines.append(args[3])
        return whole(*args, **kwargs)

    monkeypatch.setattr(dashboard, "group_line", counted)
    refresh = client.get(url)
    assert b"panel-data" not in refresh.data
    ((panel_id, loss),) = delta(refresh.data).items()
    (d,) = loss  # only a2's group moved
    assert d["k"] == -dashboard.groups.FLOAT_MAX and d["n"] == "0.1 (n=2)"
    # The older page's refresh (another version, so another answer) reuses the line.
    again = delta(client.get(poll_url(old_page.data)).data)
    assert any(s["k"] == -dashboard.groups.FLOAT_MAX for series in again.values() for s in series)
    assert lines == ["0.1"]
    now = panels(fresh_page(data_dir, "/projects/lag?group=config:lr"))[panel_id]
    assert_same_lines(merge([], d), [s for s in now if s["r"] == d["r"]])


def test_a_time_axis_is_redrawn(client, data_dir):
    """A member's x is then its time, not a step that only grows."""
    sweep_of(data_dir, "time", {"a1": 30, "b1": 30})
    page = client.get("/projects/time?group=config:lr&x_axis=time")
    write(data_dir / "time.db", [("a1", 30, {"loss": 5.0})])
    refresh = client.get(poll_url(page.data))
    assert b"panel-data" in refresh.data


def test_a_run_going_back_in_steps_or_a_new_member_redraws(client, data_dir):
    sweep_of(data_dir, "back", {"a1": 30, "b1": 30})
    page = client.get("/projects/back?group=config:lr")
    write(data_dir / "back.db", [("a1", 3, {"loss": 5.0})])  # steps no longer sorted
    refresh = client.get(poll_url(page.data))
    assert b"panel-data" in refresh.data
    sweep_of(data_dir, "joins", {"a1": 30, "b1": 30})
    page = client.get("/projects/joins?group=config:lr")
    sweep_of(data_dir, "joins", {"a9": 5})  # a new run joins group 0.1
    refresh = client.get(poll_url(page.data))
    assert b"panel-data" in refresh.data


def test_a_grouped_ema_refresh_reads_only_the_new_rows(client, data_dir, monkeypatch):
    """Counted: the EMA goes on from where the page's left off, for every panel and group."""
    metrics = [f"m{i:02d}" for i in range(30)]
    db = ProjectDB(data_dir / "ema.db")
    runs = [f"{g}-{m}" for g in "abc" for m in range(2)]
    for run in runs:
        db.config(run, {"lr": run[0]})
        db.log_many(run, range(200), lambda step: {name: step % 7 for name in metrics})
    db.close()
    page = client.get("/projects/ema?group=config:lr&smoother=ema&smoothing=80")
    write(data_dir / "ema.db", [(run, 200, {name: 1.0 for name in metrics}) for run in runs])
    read = []
    whole = dashboard.group_series

    def counted(*args):
        x, values = whole(*args)
        read.append(x.size)
        return x, values

    monkeypatch.setattr(dashboard, "group_series", counted)
    refresh = client.get(poll_url(page.data))
    changes = delta(refresh.data)
    assert len(changes) == 30 and all(len(groups) == 3 for groups in changes.values())
    # 30 panels × 3 groups × 2 members, each its new row and the one before: not 200 rows each.
    assert len(read) == 180 and sum(read) == 360


def test_an_ema_state_kept_by_a_time_axis_page_is_not_continued(client, data_dir):
    """A time-axis page of the same group line keeps no EMA state (its x are seconds)."""
    db = ProjectDB(data_dir / "axis.db")
    for run, steps, value in (("a1", 50, lambda s: float((s * 7) % 11)),
                              ("a2", 10, lambda s: float((s * 3) % 5) + 20)):
        db.config(run, {"lr": 0.1})
        db.conn.execute("BEGIN")
        for step in range(steps):
            db.log(run, step, {"loss": value(step)}, at=step / 10)  # ten steps a second
        db.conn.execute("COMMIT")
    db.close()
    query = "group=config:lr&smoother=ema&smoothing=60"
    page = client.get(f"/projects/axis?{query}")
    assert client.get(f"/projects/axis?{query}&x_axis=time").status_code == 200
    write(data_dir / "axis.db", [("a2", 10, {"loss": 21.0})])
    changes = delta(client.get(poll_url(page.data)).data)
    now = panels(fresh_page(data_dir, f"/projects/axis?{query}"))
    for panel_id, series in panels(page.data).items():
        assert_same_lines(functools.reduce(merge, changes.get(panel_id, []), series), now[panel_id])


def test_a_log_axis_with_a_spread_band_is_redrawn(client, data_dir):
    """A band edge at or below 0 sits at a floor each answer picks from its own values."""
    sweep_of(data_dir, "logb", {"a1": 30, "a2": 30})
    page = client.get("/projects/logb?group=config:lr&band=std&log_y=1")
    write(data_dir / "logb.db", [("a1", 30, {"loss": 10.0}), ("a2", 30, {"loss": 300.0})])
    assert b"panel-data" in client.get(poll_url(page.data)).data


def test_a_change_inside_a_line_drawn_in_buckets_sends_the_whole_line(client, data_dir):
    """A bucket's point stands for every step in it: replacing it from a step inside the
    bucket on would drop the band of the steps before (here a spike to 50)."""
    steps = np.arange(4000.0)
    starts, ends = groups._buckets(steps, 256)
    first, last = int(starts[250]), int(ends[250])  # a bucket near the end: a short delta
    db = ProjectDB(data_dir / "spike.db")
    for name, length in (("a1", 4000), ("a2", first + 3), ("b1", 4000)):
        db.config(name, {"lr": 0.1 if name[0] == "a" else 0.01})
        db.log_many(name, range(length), lambda step, name=name: {
            "loss": 50.0 if (name == "a1" and step == first + 1) else 2 + math.sin(step / 50)})
    db.close()
    page = client.get("/projects/spike?group=config:lr")
    write(data_dir / "spike.db", [("a2", step, {"loss": 2.0}) for step in range(first + 3, last + 1)])
    changes = delta(client.get(poll_url(page.data)).data)
    now = panels(fresh_page(data_dir, "/projects/spike?group=config:lr"))
    for panel_id, series in panels(page.data).items():
        patched = functools.reduce(merge, changes.get(panel_id, []), series)
        assert_same_lines(patched, now[panel_id])
        assert max(next(s for s in patched if s["n"].startswith("0.1 "))["hi"]) == 50.0
