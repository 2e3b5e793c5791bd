"""What the in-place controls, fallbacks, theme and phone work rely on from the server: the
refresh endpoint as the controls' answer, settings that fall back with a notice, the theme on
every page, links that carry state, one panel at a full-screen width, and the demo."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from builders import ProjectDB
from helpers import panel_data, poll_url
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from trackio_flask import charts, demo
from trackio_flask.gallery import KeyGroup, KeyView, slider_step
from trackio_flask.live import RichRef
from trackio_flask.params import CARRIED, parse_view, parse_view_or_default

ROOT = Path(__file__).resolve().parents[1]
BAD = {"smoothing": "abc", "smoother": "median", "x_axis": "nope", "x-axis": "nope",
       "__theme": "pink", "theme": "pink", "log_y": "maybe", "latest_only": "2", "cols": "9",
       "sidebar": "gone", "navbar": "x", "accordion": "x", "xmin": "nan", "xmax": "inf",
       "metric_filter": "a" * 300, "run_filter": "a" * 300, "group_by": "g" * 300,
       "device": "d" * 300, "run_ids": ",".join(map(str, range(1001))),
       "runs": ",".join(map(str, range(1001))), "metrics": ",".join(["m" * 100] * 50)}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_setting_falls_back_to_its_default_and_is_named(name):
    args = MultiDict({name: BAD[name], "smoothing" if name != "smoothing" else "log_y":
                      "7" if name != "smoothing" else "1"})
    with pytest.raises(BadRequest):
        parse_view(args, {"loss"})
    view, notices = parse_view_or_default(args, {"loss"})
    assert len(notices) == 1
    named = {"x-axis": "x_axis", "theme": "__theme", "runs": "runs"}.get(name, name)
    assert notices[0].startswith(named) and notices[0].endswith("showing the default instead.")
    assert BAD[name][:20] not in notices[0]  # never the value: notices are part of cache keys
    # The good setting beside it survives.
    assert view.smoothing == 7 or view.log_y


def test_every_view_parameter_is_carried_across_tabs():
    # page.js carries CARRIED: each parameter parse_view reads must be in it, or a tab click
    # would drop a setting (but the zoom, which belongs to the metrics page's charts).
    for name in set(BAD) - {"xmin", "xmax"}:
        assert name in CARRIED, name


def test_controls_get_the_new_views_full_redraw_from_the_refresh_endpoint(client, project_db):
    page = client.get("/projects/p").data
    form_fields = "run_ids=&run_ids=id-beta&sel=some&smoothing=3&metric_filter=&iv=1"
    answer = client.get(f"/projects/p/refresh?{form_fields}")
    body = answer.data.decode()
    assert answer.status_code == 200
    assert 'id="panels" hx-swap-oob="true"' in body and 'id="run-list" hx-swap-oob="true"' in body
    # The new poller polls the new view, and tells the page its address.
    assert re.search(r'data-page-url="/projects/p\?run_ids=id-beta&amp;smoothing=3"', body)
    assert "smoothing=3" in poll_url(answer.data) and "run_ids=id-beta" in poll_url(answer.data)
    assert {s["n"] for panel in panel_data(answer.data) for s in panel} == {"beta"}
    assert "smoothing=3" not in poll_url(page)


def test_no_runs_selected_says_so_instead_of_empty_charts(client, project_db):
    body = client.get("/projects/p?run_ids=&sel=some").data.decode()
    assert "No runs selected" in body and 'class="panel"' not in body
    assert 'data-select-runs="all"' in body


def test_a_filter_matching_nothing_says_so_and_offers_to_clear_it(client, project_db):
    body = client.get("/projects/p?metric_filter=zzz").data.decode()
    assert "No metrics match the filter" in body and 'data-clear="metric_filter"' in body
    assert 'class="panel"' not in body
    body = client.get("/projects/p?run_filter=zzz").data.decode()
    assert "No runs match the run filter" in body and 'data-clear="run_filter"' in body


def test_notices_do_not_leak_into_the_shared_page(client, project_db):
    assert b"showing the default" in client.get("/projects/p?smoothing=abc").data
    assert b"showing the default" not in client.get("/projects/p").data


@pytest.mark.parametrize("path", ["/", "/projects/p", "/projects/p/reports", "/projects/nope",
                                  "/projects/a.b"])
def test_the_address_theme_works_on_every_page(client, project_db, path):
    for theme in ("dark", "light"):
        body = client.get(f"{path}?__theme={theme}").data.decode()
        assert f'<html lang="en" data-theme="{theme}">' in body, path
    assert 'data-theme="system"' in client.get(f"{path}?__theme=neon").data.decode()


def test_links_to_other_pages_carry_the_view_state(client, project_db):
    body = client.get("/projects/p?smoothing=4").data.decode()
    carried = re.search(r'<body data-carry="([^"]+)">', body).group(1).split()
    assert carried == list(CARRIED)
    tabs = re.findall(r'<a [^>]*href="([^"]+)" data-carry>', body)
    assert "/projects/p/media" in tabs and "/projects/p/compare" in tabs
    # Cached pages hold no per-viewer state in links: the script adds it from the address.
    assert "smoothing=4" not in "".join(tabs)
    assert 'class="brand" href="/" data-carry="theme"' in body
    assert 'src="/static/theme.js' in body.split("</head>")[0]


def test_one_panel_at_a_full_screen_width_gets_a_bucket_per_pixel(client, data_dir):
    db = ProjectDB(data_dir / "long.db")
    db.log_many("solo", range(20_000), lambda step: {"loss": 1.0 + (step % 7)})
    db.system("solo", 0, {"cpu/utilization": 1.0})
    db.system("solo", 10, {"cpu/utilization": 2.0})
    db.close()
    body = client.get("/projects/long").data
    overview = panel_data(body)[0][0]
    panel = re.search(rb'class="panel" id="(m[0-9a-f]+)"', body).group(1).decode()
    answer = client.get(f"/projects/long/series?panel={panel}&width=1000").get_json()
    assert answer["width"] == 1024  # snapped: few cache entries per panel
    full = answer["panels"][panel][0]
    assert len(full["x"]) > 3 * len(overview["x"]) and full["t"] == 20_000
    zoomed = client.get(f"/projects/long/series?panel={panel}&width=1000&xmin=100&xmax=200"
                        ).get_json()["panels"][panel][0]
    assert zoomed["x"][1] >= 100 and zoomed["x"][-2] <= 200
    assert client.get(f"/projects/long/series?panel={panel}&width=99999").get_json()["width"] == 4096
    system = re.search(rb'class="panel" id="(s[0-9a-f]+)"', body).group(1).decode()
    assert client.get(f"/projects/long/series?panel={system}&width=800").status_code == 200
    for bad in ("width=abc", "width=-5", "width=1e3", "panel=nope&width=800"):
        query = bad if "panel=" in bad else f"panel={panel}&{bad}"
        assert client.get(f"/projects/long/series?{query}").status_code == 400, bad


def test_line_specs_title_their_axes_fade_for_a_highlight_and_fit_their_data():
    spec = charts.compile_shape(charts.Shape("line", "metric", True, True))
    titled = {axis["scale"]: axis["title"] for axis in spec["axes"] if not axis.get("grid")}
    assert titled == {"x": {"signal": "xtitle"}, "y": {"signal": "ytitle"}}
    signals = {s["name"]: s.get("value") for s in spec["signals"]}
    assert signals["xtitle"] == "x" and signals["dim"] == 1

    def opacities(marks, source=""):
        for mark in marks:
            if mark["type"] == "group":
                yield from opacities(mark["marks"], mark["from"]["facet"]["data"])
            elif mark["type"] in ("line", "area"):
                yield source, mark["encode"]["update"].get("opacity")
    sources = {d["name"]: d.get("source") or d["name"] for d in spec["data"]}
    found = {sources[name]: opacity for name, opacity in opacities(spec["marks"])}
    assert found["hil"] is None and "dim" in found["pts"]["signal"]
    assert found["band"] == {"signal": "(bandop) * dim"}
    y_scale = next(s for s in spec["scales"] if s["name"] == "y")
    assert y_scale["type"] == "log" and y_scale["nice"] is False


def test_a_media_slider_reads_a_logged_step():
    refs = tuple(RichRef(n, "r", step, 0.0, "img", "trackio.image")
                 for n, step in enumerate((0, 1000, 2000)))
    group = KeyGroup("img", refs, False)
    assert slider_step(group, KeyView(at=1234)) == 1000
    assert slider_step(group, KeyView(at=2000)) == 2000
    assert slider_step(group, KeyView(at=-5)) == 0
    assert slider_step(group, KeyView()) == 2000


def _live_rows(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("SELECT run_id, step FROM metrics WHERE run_name = 'live' "
                                "ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # the writer has not made the table yet
            return []


def test_a_second_demo_goes_on_with_the_same_live_run(tmp_path):
    path = tmp_path / f"{demo.PROJECT}.db"
    for wanted in (2, 4):
        stop = threading.Event()
        thread = demo.start_live_run(tmp_path, stop, interval=0.01)
        deadline = time.monotonic() + 60
        while len(_live_rows(path)) < wanted and time.monotonic() < deadline:
            stop.wait(0.02)  # polling the database for the condition
        stop.set()
        thread.join(timeout=30)
    rows = _live_rows(path)
    assert len(rows) >= 4
    assert len({run for run, _ in rows}) == 1  # one run named live, not two
    steps = [step for _, step in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # the second went on


def test_make_demo_installs_only_the_runtime_dependencies():
    makefile = (ROOT / "Makefile").read_text()
    demo_rule = re.search(r"^demo: (.+?) ##", makefile, re.M).group(1)
    assert demo_rule == "$(VENV)/.runtime"
    runtime = re.search(r"^\$\(VENV\)/\.runtime:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "-e ." in runtime and "[dev]" not in runtime
    assert re.search(r"^test: \$\(VENV\)/\.installed", makefile, re.M)
