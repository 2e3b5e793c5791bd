"""Full pages: projects, a dashboard, runs table and run detail, with hostile data rendered inert."""

from __future__ import annotations

import re

import pytest
from builders import ProjectDB
from helpers import assert_inert, panel_data, poll_interval, poll_url


def test_index_lists_projects_with_run_counts(client, project_db):
    body = client.get("/").data.decode()
    assert 'href="/projects/p"' in body
    assert re.search(r">p</a></td>\s*<td>2</td>", body)


def test_index_empty_state_shows_the_logging_snippet(client):
    body = client.get("/").data.decode()
    assert "No projects yet" in body and "tf.init(project=" in body


def test_trackio_project_links_land_on_the_dashboard(client, project_db):
    response = client.get("/?project=p&metric_filter=loss")
    assert response.status_code == 302
    assert response.headers["Location"] == "/projects/p?metric_filter=loss"


def test_dashboard_groups_panels_by_prefix_and_embeds_their_data(client, project_db):
    response = client.get("/projects/p")
    body = response.data
    assert response.status_code == 200
    sections = re.findall(rb"<summary>(\w+) <span", body)
    assert sections == [b"eval", b"train", b"cpu"]
    assert body.count(b'class="panel"') == 3
    data = panel_data(body)
    loss = next(d for d in data if len(d) == 2)  # train/loss has both runs
    assert {series["n"] for series in loss} == {"alpha", "beta"}
    assert len(next(s for s in loss if s["n"] == "alpha")["x"]) == 50


def test_dashboard_has_exactly_one_poller_and_a_strict_csp(client, project_db):
    response = client.get("/projects/p")
    assert response.data.count(b"hx-trigger") == 1
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert b"<script>" not in response.data and b"onclick" not in response.data


@pytest.mark.parametrize("host,interval", [("localhost:5000", 1.0), ("127.0.0.1", 1.0),
                                           ("team.example.com", 2.0),
                                           ("user-space.hf.space", 3.5)])
def test_polling_interval_follows_the_request_host(client, project_db, clock, host, interval):
    body = client.get("/projects/p", headers={"Host": host}).data
    assert poll_interval(body) == interval


def test_runs_are_newest_first_with_stable_colours(client, project_db):
    before = client.get("/projects/p").data.decode()
    colour_of_alpha = re.search(r'background: (#\w+)"></span>\s*<span class="run-name">alpha', before)
    project_db.log("zeta", 0, {"train/loss": 1.0}, at=500)
    after = client.get("/projects/p").data.decode()
    names = re.findall(r'<span class="run-name">([^<]+)</span>', after)
    assert names == ["zeta", "beta", "alpha"] or names == ["zeta", "alpha", "beta"]
    assert colour_of_alpha.group(1) in after.split('run-name">alpha')[0].rsplit("swatch", 1)[1]


@pytest.mark.parametrize("query,expected_series", [
    ("runs=alpha", {"alpha"}),
    ("run_ids=id-beta", {"beta"}),
    ("run_filter=ALP", {"alpha"}),
    ("run_filter=%5B", set()),  # invalid regex: literal substring, matches nothing
    ("latest_only=1", {"beta"}),
])
def test_run_selection_parameters(client, project_db, query, expected_series):
    data = panel_data(client.get(f"/projects/p?{query}").data)
    names = {series["n"] for panel in data for series in panel if "cpu" not in str(panel)}
    assert names <= {"alpha", "beta"}
    drawn = {series["n"] for panel in data[:2] for series in panel}
    assert drawn == expected_series


@pytest.mark.parametrize("query,titles", [
    ("metric_filter=LOSS", [b"loss"]),
    ("metrics=eval/acc", [b"acc"]),
    ("metric_filter=%28", []),
    ("metric_filter=cpu", [b"utilization (%)"]),  # the filter covers system metrics too
])
def test_metric_filters(client, project_db, query, titles):
    body = client.get(f"/projects/p?{query}").data
    assert re.findall(rb'class="panel-title" title="[^"]*">([^<]+)<', body) == titles


def test_trackio_share_parameters_shape_the_page(client, project_db):
    body = client.get("/projects/p?sidebar=hidden&navbar=hidden&accordion=hidden&__theme=dark"
                      "&smoothing=10&x_axis=time&xmin=1&xmax=20").data
    assert b'class="sidebar"' not in body and b'class="topbar"' not in body
    assert b"<summary>eval" not in body
    assert b'data-theme="dark"' in body
    assert b'data-xmin="1.0"' in body and b'data-xmax="20.0"' in body
    assert b"smoothing=10" in poll_url(body).encode() and b"x_axis=time" in poll_url(body).encode()


def test_x_axis_can_be_a_logged_metric(client, project_db):
    body = client.get("/projects/p?x_axis=eval/acc").data
    data = panel_data(body)
    alpha = next(s for d in data for s in d if s["n"] == "alpha")
    assert alpha["x"][:3] == [0.0, 0.02, 0.04]
    # beta never logged eval/acc, so it has no x values and no line
    assert all(s["n"] != "beta" for d in data for s in d)


def test_log_scale_keeps_non_positive_values_visible(client, data_dir):
    db = ProjectDB(data_dir / "q.db")
    db.log_many("r", range(5), lambda s: {"m": [-1.0, 0.0, 0.5, 1.0, 10.0][s]})
    db.close()
    data = panel_data(client.get("/projects/q?log_y=1").data)
    ys = data[0][0]["y"]
    assert len(ys) == 5 and min(ys) > 0 and ys[2:] == [0.5, 1.0, 10.0]


def test_single_value_metrics_render_as_bars(client, data_dir):
    db = ProjectDB(data_dir / "q.db")
    db.log("a", 0, {"final/score": 0.9, "loss": 1.0})
    db.log("a", 1, {"loss": 0.5})
    db.close()
    body = client.get("/projects/q").data
    assert re.search(rb'data-shape="bar-[^"]*" data-kind="bar" data-metric="final/score"', body)
    assert re.search(rb'data-shape="line-[^"]*" data-kind="line" data-metric="loss"', body)


@pytest.mark.parametrize("query,message", [
    ("smoothing=500", b"smoothing"), ("smoothing=abc", b"smoothing"),
    ("x_axis=nope", b"x_axis"), ("__theme=pink", b"__theme"), ("xmin=nan", b"xmin"),
    ("log_y=maybe", b"log_y"), ("metric_filter=" + "a" * 300, b"metric_filter"),
])
def test_bad_view_parameters_fall_back_to_defaults_with_a_notice(client, project_db, query,
                                                                 message):
    response = client.get(f"/projects/p?{query}")
    assert response.status_code == 200
    notices = response.data.split(b'class="notices"', 1)[1].split(b"</div>", 1)[0]
    assert message in notices and b"showing the default instead" in notices
    # The page is the default view: its poller carries none of the bad value.
    assert query.split("=")[1].encode()[:20] not in poll_url(response.data).encode()


@pytest.mark.parametrize("query", ["smoothing=abc", "x_axis=nope", "iv=1&v=x&log_y=maybe"])
def test_the_refresh_still_refuses_bad_view_parameters(client, project_db, query):
    assert client.get(f"/projects/p/refresh?iv=1&{query}").status_code == 400


@pytest.mark.parametrize("path,status", [
    ("/projects/nope", 404), ("/projects/a.b", 400), ("/projects/..%2Fp", 404),
    ("/projects/%2e%2e", 400), ("/projects/x%00y", 400), ("/projects/p/runs/ghost", 404),
    ("/projects/nope/runs", 404), ("/projects/nope/refresh?iv=1", 404),
])
def test_unknown_or_hostile_paths_are_4xx_never_500(client, project_db, path, status):
    assert client.get(path).status_code == status


def test_corrupt_database_is_listed_and_others_still_work(client, data_dir, project_db):
    (data_dir / "broken.db").write_bytes(b"not a database" * 200)
    index = client.get("/")
    assert index.status_code == 200
    assert b"broken" in index.data and b"unreadable" in index.data
    assert client.get("/projects/broken").status_code == 422
    assert client.get("/projects/p").status_code == 200


HOSTILE = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>", "' onmouseover='alert(3)",
           "{{7*7}}"]


def test_hostile_run_metric_and_config_names_render_inert(client, data_dir):
    db = ProjectDB(data_dir / "h.db")
    for index, name in enumerate(HOSTILE):
        db.config(name, {name: name, "_Group": name}, run_id=f"k{index}")
        db.log(name, 0, {name: 1.0, f"{name}/x": 2.0}, run_id=f"k{index}")
        db.log(name, 1, {name: 1.5, f"{name}/x": 2.5}, run_id=f"k{index}")
    db.close()
    for path in ("/projects/h", "/projects/h?group_by=_Group", "/projects/h/runs",
                 "/projects/h/runs/k1", "/projects/h/runs?col=%7B%7B7*7%7D%7D"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_inert(response.data.decode(), path)
    page = client.get("/projects/h").data.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "{{7*7}}" in page


def test_runs_table_sorts_and_shows_config_and_final_values(client, project_db):
    body = client.get("/projects/p/runs?sort=name&order=asc&col=lr&metric=train/loss").data.decode()
    assert body.index(">alpha</a>") < body.index(">beta</a>")
    assert "<td>0.1</td>" in body and "0.02" in body  # beta's final loss 2/30 ≈ 0.0667; alpha 0.02
    desc = client.get("/projects/p/runs?sort=steps&order=desc").data.decode()
    assert desc.index(">alpha</a>") < desc.index(">beta</a>")


def test_run_detail_shows_config_and_only_that_runs_charts(client, project_db):
    body = client.get("/projects/p/runs/id-beta").data
    # The config is a table of keys and values, without Trackio's private `_` keys.
    assert b'<tr><th scope="row">lr</th><td>0.2</td></tr>' in body
    assert b"_Username" not in body and b"_Created" not in body
    names = {series["n"] for panel in panel_data(body) for series in panel}
    assert names == {"beta"}
