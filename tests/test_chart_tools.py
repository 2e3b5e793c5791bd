"""Chart tools on the metrics page: CSV downloads, plots per row, plot order, nested sections,
per-device system panels and alert markers."""

from __future__ import annotations

import csv
import html
import io
import json
import re

import pytest
from builders import ProjectDB, stamp
from helpers import panel_data, poll_url

from trackio_flask import create_app
from trackio_flask.settings import load_settings

HOSTILE_TITLE = "spike <img src=x onerror=alert(1)>"


def islands(body: bytes) -> dict[str, list]:
    """Panel data by the panel's title."""
    titles = [html.unescape(t.decode()) for t in
              re.findall(rb'class="panel-title"[^>]*>([^<]*)<', body)]
    return dict(zip(titles, panel_data(body), strict=True))


def csv_links(body: bytes) -> dict[str, str]:
    """The CSV link of each panel, by its title."""
    titles = [html.unescape(t.decode()) for t in
              re.findall(rb'class="panel-title"[^>]*>([^<]*)<', body)]
    links = [html.unescape(u.decode()) for u in re.findall(rb'href="([^"]+)" data-tool="csv"', body)]
    return dict(zip(titles, links, strict=True))


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def alert(db: ProjectDB, run: str, step: int, title: str, level: str = "warn") -> None:
    db.conn.execute("INSERT INTO alerts (run_id, timestamp, run_name, title, text, level, step) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (f"id-{run}", stamp(step), run, title, "text " + title, level, step))


def alert_island(body: bytes) -> list[dict]:
    match = re.search(rb'<script type="application/json" id="alerts"[^>]*>(.*?)</script>', body, re.S)
    assert match, "no alerts island"
    return json.loads(match.group(1))


@pytest.fixture
def long_db(data_dir):
    """Project `p`: run alpha with 5,000 steps (downsampled when drawn), beta with 20."""
    db = ProjectDB(data_dir / "p.db")
    db.log_many("alpha", range(5000), lambda s: {"train/loss": 1 / (s + 1)})
    db.log_many("beta", range(20), lambda s: {"train/loss": 2.0})
    yield db
    db.close()


def test_csv_has_the_drawn_points_by_default_and_every_logged_point_with_raw(client, long_db):
    body = client.get("/projects/p").data
    link = csv_links(body)["loss"]
    drawn = rows_of(client.get(link))
    raw = rows_of(client.get(link + "&raw=1"))
    assert drawn[0] == raw[0] == ["run", "step", "time", "value"]
    drawn_alpha = [row for row in drawn[1:] if row[0] == "alpha"]
    shown = next(s for s in islands(body)["loss"] if s["n"] == "alpha")
    assert len(drawn_alpha) == len(shown["x"]) < 5000  # what the chart draws
    assert len([row for row in raw[1:] if row[0] == "alpha"]) == 5000
    assert [row for row in raw[1:] if row[0] == "beta"][3] == ["beta", "3", stamp(3)[:19] + ".000+00:00",
                                                              "2"]
    assert ["alpha", "0", stamp(0)[:19] + ".000+00:00", "1"] in raw


def test_csv_of_a_zoomed_chart_holds_the_zoomed_range(client, long_db):
    link = csv_links(client.get("/projects/p").data)["loss"]
    raw = rows_of(client.get(link + "&raw=1&xmin=100&xmax=200"))
    steps = [int(row[1]) for row in raw[1:] if row[0] == "alpha"]
    # The range plus one neighbour each side, as the zoomed line is drawn to the edges.
    assert steps[0] == 99 and steps[-1] == 201 and len(steps) == 103


def test_csv_quotes_run_names_a_spreadsheet_would_run_as_formulas(client, data_dir):
    db = ProjectDB(data_dir / "p.db")
    names = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", " =1+1", "\t=2",
             "<b>plain</b>"]
    for name in names:
        db.log_many(name, range(3), lambda s: {"loss": float(s)})
    db.close()
    link = csv_links(client.get("/projects/p").data)["loss"]
    rows = rows_of(client.get(link + "&raw=1"))
    runs = {row[0] for row in rows[1:]}
    assert runs == {"'" + name for name in names[:-1]} | {"<b>plain</b>"}
    response = client.get(link)
    assert response.headers["Content-Disposition"] == 'attachment; filename="loss.csv"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("query,message", [
    ("panel=nope", b"panel must name a chart"),
    ("panel=", b"panel must name a chart"),
    ("x_axis=metric:nope", b"x_axis must be"),
])
def test_csv_of_a_chart_the_view_lacks_is_refused_with_400(client, long_db, query, message):
    response = client.get("/projects/p/series.csv?" + query)
    assert response.status_code == 400 and message in response.data


@pytest.mark.parametrize("query,message", [
    ("raw=yes", b"raw must be 1 or 0"),
    ("xmin=5", b"xmin and xmax must be numbers"),
    ("xmin=5&xmax=1", b"xmin must be less than xmax"),
    ("cols=7", b"cols (plots per row) must be a whole number from 1 to 6"),
])
def test_bad_csv_parameters_are_refused_with_400(client, long_db, query, message):
    link = csv_links(client.get("/projects/p").data)["loss"]
    response = client.get(link + "&" + query)
    assert response.status_code == 400 and message in response.data


# "³", "٣" and "１" pass str.isdigit but are no number the page writes.
@pytest.mark.parametrize("value", ["0", "7", "x", "-1", "2.5", "%C2%B3", "%D9%A3", "%EF%BC%91", "+5"])
def test_bad_plots_per_row_falls_back_with_a_notice(client, long_db, value):
    response = client.get(f"/projects/p?cols={value}")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "cols (plots per row) must be" in body
    assert "showing the default instead" in body and "--per-row" not in body


def test_too_many_devices_fall_back_to_all_with_a_notice(client, long_db):
    query = "&".join(f"device=gpu/{n}" for n in range(65))
    response = client.get("/projects/p?" + query)
    assert response.status_code == 200 and b"device lists more than 64" in response.data


def test_plots_per_row_travels_in_the_url_and_fixes_the_grid_columns(client, long_db):
    body = client.get("/projects/p?cols=2").data
    assert b'class="grid per-row" style="--per-row: 2"' in body
    assert b'<option value="2" selected>2</option>' in body
    assert "cols=2" in poll_url(body)
    assert "cols=2" in csv_links(body)["loss"]
    default = client.get("/projects/p").data
    assert b"per-row" not in default.split(b'id="panels"')[1]
    assert b'<option value="" selected>auto</option>' in default


def test_plot_order_setting_is_read_from_trackios_variable():
    assert load_settings({"TRACKIO_PLOT_ORDER": " eval/*, train/loss ,,"})["PLOT_ORDER"] == (
        "eval/*", "train/loss")
    assert load_settings({})["PLOT_ORDER"] == ()


def ordered_page(data_dir, plot_order: tuple[str, ...]) -> bytes:
    db = ProjectDB(data_dir / "p.db")
    db.log_many("alpha", range(3), lambda s: {
        "train/acc": 1.0, "train/loss": 1.0, "train/lr": 1.0, "eval/acc": 1.0, "eval/f1": 1.0,
        "zeta/x": 1.0, "top": 1.0})
    db.close()
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://",
                      "PLOT_ORDER": plot_order})
    return app.test_client().get("/projects/p").data


def section_names(body: bytes) -> list[str]:
    return [name.decode() for name in re.findall(rb"<summary>([^<]+?) <span", body)]


def metric_order(body: bytes) -> list[str]:
    return [html.unescape(m.decode()) for m in re.findall(rb'data-metric="([^"]*)"', body)]


def test_plot_order_orders_sections_and_panels_as_trackio_does(data_dir):
    body = ordered_page(data_dir, ("zeta/*", "train/lr", "train/l*", "eval/f1"))
    # Named sections in pattern order; unprefixed metrics ("charts") lead the rest, by name.
    assert section_names(body) == ["charts", "zeta", "train", "eval"]
    assert metric_order(body) == ["top", "zeta/x", "train/lr", "train/loss", "train/acc",
                                  "eval/f1", "eval/acc"]


def test_without_plot_order_sections_and_panels_go_by_name(data_dir):
    body = ordered_page(data_dir, ())
    assert section_names(body) == ["charts", "eval", "train", "zeta"]
    assert metric_order(body) == ["top", "eval/acc", "eval/f1", "train/acc", "train/loss",
                                  "train/lr", "zeta/x"]


def test_a_b_c_metrics_nest_under_section_a_and_subsection_b(client, data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log_many("alpha", range(3), lambda s: {"train/loss": 1.0, "train/sub/grad": 2.0,
                                              "train/sub/deep/norm": 3.0})
    db.close()
    body = client.get("/projects/p").data
    train = body.split(b"<summary>train")[1]
    assert train.startswith(b' <span class="muted">(3)</span>')
    direct, nested = train.split(b'<details class="subsection" open>', 1)
    assert metric_order(direct) == ["train/loss"]
    assert b'<summary class="subsection-name">sub <span class="muted">(2)</span>' in nested
    assert metric_order(nested) == ["train/sub/deep/norm", "train/sub/grad"]
    titles = re.findall(rb'class="panel-title"[^>]*>([^<]*)<', nested)
    assert titles == [b"deep/norm", b"grad"]


@pytest.fixture
def gpu_db(data_dir):
    """Project `p`: two runs with two GPUs each and a CPU metric."""
    db = ProjectDB(data_dir / "p.db")
    for run in ("alpha", "beta"):
        db.log_many(run, range(3), lambda s: {"loss": 1.0})
        for at in range(3):
            db.system(run, at, {"gpu/0/utilization": 10.0 + at, "gpu/1/utilization": 50.0 + at,
                                "gpu/0/memory": 1.0, "gpu/1/memory": 2.0, "cpu/percent": 5.0})
    yield db
    db.close()


def test_per_device_metrics_merge_into_one_panel_with_a_line_per_device_and_run(client, gpu_db):
    body = client.get("/projects/p").data
    data = islands(body)
    lines = {(s["n"], s["d"]): s["y"] for s in data["gpu utilization (%)"]}
    assert lines == {("alpha", "GPU 0"): [10, 11, 12], ("alpha", "GPU 1"): [50, 51, 52],
                     ("beta", "GPU 0"): [10, 11, 12], ("beta", "GPU 1"): [50, 51, 52]}
    assert len({s["r"] for s in data["gpu utilization (%)"]}) == 4  # one line each
    assert len(data["gpu memory"]) == 4
    assert [s["n"] for s in data["percent (%)"]] == ["beta", "alpha"]
    boxes = re.findall(rb'name="device" value="([^"]+)"[^>]*\s+(checked)?>\s*([^<]+)<', body)
    assert [(v, c, label.strip()) for v, c, label in boxes] == [
        (b"gpu/0", b"checked", b"GPU 0"), (b"gpu/1", b"checked", b"GPU 1")]


def test_device_checklist_hides_unticked_devices_and_rides_in_the_url(client, gpu_db):
    body = client.get("/projects/p?device=gpu/0").data
    data = islands(body)
    assert {s["d"] for s in data["gpu utilization (%)"]} == {"GPU 0"}
    assert b'value="gpu/1" form="controls" data-autosubmit\n                  >' in body
    assert "device=gpu/0" in poll_url(body)
    csv_rows = rows_of(client.get(csv_links(body)["gpu utilization (%)"] + "&raw=1"))
    assert csv_rows[0] == ["run", "device", "step", "time", "value"]
    assert {row[1] for row in csv_rows[1:]} == {"GPU 0"} and len(csv_rows) == 7


def test_ticking_every_device_is_the_default_view(client, gpu_db):
    body = client.get("/projects/p?device=gpu/1&device=gpu/0").data
    assert "device=" not in poll_url(body)
    # A device this project never logged shows every device, like an empty checklist.
    unknown = islands(client.get("/projects/p?device=tpu/9").data)["gpu utilization (%)"]
    assert len(unknown) == 4


@pytest.fixture
def alert_db(data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log_many("alpha", range(30), lambda s: {"train/loss": 1 / (s + 1)})
    db.log_many("beta", range(30), lambda s: {"train/loss": 2 / (s + 1)})
    alert(db, "alpha", 12, HOSTILE_TITLE, "error")
    alert(db, "beta", 20, "beta alert")
    yield db
    db.close()


def test_alert_markers_of_the_selected_runs_arrive_with_the_page(client, alert_db):
    body = client.get("/projects/p").data
    marks = alert_island(body)
    assert [(m["n"], m["x"], m["title"], m["level"]) for m in marks] == [
        ("alpha", 12, HOSTILE_TITLE, "error"), ("beta", 20, "beta alert", "warn")]
    assert b"<img src=x" not in body  # the title is inert inside the JSON island
    assert b"data-alerts" in body
    only_beta = alert_island(client.get("/projects/p?run_ids=id-beta").data)
    assert [m["title"] for m in only_beta] == ["beta alert"]


def test_alert_markers_are_for_the_step_axis_only(client, alert_db):
    body = client.get("/projects/p?x_axis=time").data
    assert alert_island(body) == [] and b"data-alerts" not in body


def test_a_new_alert_reaches_an_open_page_through_its_poll(client, alert_db, clock):
    body = client.get("/projects/p").data
    alert_db.log("alpha", 30, {"train/loss": 0.5})
    alert(alert_db, "alpha", 30, "late <b>alert</b>")
    fragment = client.get(poll_url(body)).data
    marks = alert_island(fragment)
    assert [m["title"] for m in marks][-1] == "late <b>alert</b>"
    assert b'id="alerts" hx-swap-oob="true"' in fragment and b"<b>alert" not in fragment
    alert_db.log("alpha", 31, {"train/loss": 0.4})  # no new alert: the poll sends no list
    later = client.get(poll_url(fragment)).data
    assert b'id="alerts"' not in later and b'id="delta"' in later
