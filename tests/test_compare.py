"""The run comparer: runs as columns, flattened config and summary metrics as rows, searched and
filtered on the server, with hostile names and values shown as text."""

from __future__ import annotations

import html
import re

import pytest
from builders import ProjectDB
from helpers import assert_inert

from trackio_flask.compare import flatten_config, format_value

HOSTILE = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>",
           "' onmouseover='alert(3)", "{{7*7}}"]


def columns(body: str) -> list[str]:
    """Run names in the comparer's header, left to right."""
    head = body[body.index('<table class="table compare-table">'):body.index("</thead>")]
    return [html.unescape(name) for name in re.findall(r'class="run-col".*?title="[^"]*">(.*?)</a>',
                                                       head, re.S)]


def row(body: str, key: str) -> list[str] | None:
    """The cells of the row for `key` (None when the row is not shown)."""
    match = re.search(rf'<tr[^>]*data-key="{re.escape(html.escape(key))}">(.*?)</tr>', body, re.S)
    if match is None:
        return None
    return [html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)]


def keys(body: str) -> list[str]:
    return [html.unescape(key) for key in re.findall(r'data-key="([^"]*)"', body)]


@pytest.fixture
def sweep(data_dir):
    """Project `s`: alpha (older) and beta with nested configs and a loss that ends early."""
    db = ProjectDB(data_dir / "s.db")
    db.config("alpha", {"lr": 0.1, "batch": 32, "opt": {"name": "adam", "betas": [0.9, 0.99]},
                        "seed": 1, "only_alpha": True, "_Group": "g"})
    db.config("beta", {"lr": 0.2, "batch": 32, "opt": {"name": "sgd", "betas": [0.9, 0.99]},
                       "seed": "1"})
    for step, (a, b) in enumerate([(3.0, 4.0), (1.0, 5.0), (2.0, 0.5)]):
        db.log("alpha", step, {"train/loss": a}, at=10 + step)
        db.log("beta", step, {"train/loss": b}, at=20 + step)
    db.log("alpha", 3, {"eval/acc": 0.9}, at=13)  # the loss's last finite value stays 2.0
    db.close()
    return data_dir


def test_flatten_config_follows_trackio_dot_paths():
    flat = flatten_config({"opt": {"lr": {"initial": 0.1}, "name": "adam"}, "tags": ["a", {"b": 1}],
                           "a.b": 1, "a": {"b": 2}, "empty": {}, "_Created": "x",
                           "nested": {"_kept": 1}})
    assert flat == {"opt.lr.initial": 0.1, "opt.name": "adam", "tags": ["a", {"b": 1}],
                    "a\\.b": 1, "a.b": 2, "empty": {}, "nested._kept": 1}


def test_values_are_written_like_trackio_so_equal_text_means_equal_value():
    assert [format_value(v) for v in (32, 32.0, 0.1, True, None, "1", "plain", [1, "x"],
                                      {"b": 1, "a": 2}, float("nan"))] == [
        "32", "32", "0.1", "true", "null", '"1"', "plain", '[1,"x"]', '{"a":2,"b":1}', "NaN"]


def test_runs_are_columns_and_config_and_metrics_are_rows(client, sweep):
    response = client.get("/projects/s/compare")
    assert response.status_code == 200
    body = response.data.decode()
    assert columns(body) == ["beta", "alpha"]  # newest first, as in the sidebar
    assert row(body, "opt.name") == ["sgd", "adam"]
    assert row(body, "opt.betas") == ["[0.9,0.99]", "[0.9,0.99]"]
    assert row(body, "only_alpha") == ["–", "true"]
    assert row(body, "train/loss") == ["0.5", "2"]  # last finite value per run
    assert row(body, "eval/acc") == ["–", "0.9"]
    assert row(body, "_Group") == ["–", "g"]  # Trackio's run metadata, labelled "Group"
    assert 'aria-current="page" href="/projects/s/compare"' in body
    assert 'id="poller"' not in body


@pytest.mark.parametrize("stat,expected", [("min", ["0.5", "1"]), ("max", ["5", "3"])])
def test_metrics_can_show_min_or_max_instead_of_the_last_value(client, sweep, stat, expected):
    body = client.get(f"/projects/s/compare?stat={stat}").data.decode()
    assert row(body, "train/loss") == expected
    assert f"({stat} value)" in body


def test_differences_only_keeps_rows_where_runs_disagree(client, sweep):
    body = client.get("/projects/s/compare?diff=1").data.decode()
    assert row(body, "batch") is None and row(body, "opt.betas") is None
    assert row(body, "lr") == ["0.2", "0.1"]
    assert row(body, "seed") == ['"1"', "1"]  # the text "1" is not the number 1
    assert row(body, "only_alpha") is not None  # missing from one run is a difference
    assert row(body, "train/loss") is not None
    assert 'name="diff" value="1" checked' in body


def test_key_search_matches_substrings_of_keys_case_insensitively(client, sweep):
    body = client.get("/projects/s/compare?q=OPT.").data.decode()
    assert keys(body) == ["opt.betas", "opt.name"]
    assert 'value="OPT."' in body  # the box still shows what was searched
    both = client.get("/projects/s/compare?q=opt&diff=1").data.decode()
    assert keys(both) == ["opt.name"]
    none = client.get("/projects/s/compare?q=zzz").data.decode()
    assert keys(none) == [] and "No keys match" in none


def test_selection_comes_from_run_or_the_metrics_pages_run_ids(client, sweep):
    assert columns(client.get("/projects/s/compare?run=id-alpha").data.decode()) == ["alpha"]
    assert columns(client.get("/projects/s/compare?run_ids=id-beta").data.decode()) == ["beta"]
    assert columns(client.get("/projects/s/compare?run=alpha").data.decode()) == ["alpha"]  # by name
    picker = client.get("/projects/s/compare?run=id-alpha").data.decode()
    assert re.search(r'value="id-alpha"\s+checked', picker)
    assert not re.search(r'value="id-beta"\s+checked', picker)
    empty = client.get("/projects/s/compare?run=").data.decode()
    assert "Select runs to compare." in empty and "<table" not in empty
    gone = client.get("/projects/s/compare?run=id-alpha&run=id-ghost").data.decode()
    assert columns(gone) == ["alpha"] and "1 selected run no longer exists" in gone


def test_more_than_ten_runs_shows_the_first_ten_with_a_note(client, data_dir):
    db = ProjectDB(data_dir / "many.db")
    for index in range(12):
        db.log(f"r{index:02}", 0, {"loss": float(index)}, at=index)
    db.close()
    query = "&".join(f"run=id-r{index:02}" for index in range(12))
    body = client.get(f"/projects/many/compare?{query}").data.decode()
    assert columns(body) == [f"r{index:02}" for index in range(11, 1, -1)]
    assert "Showing the first 10 of 12 selected runs" in body
    assert body.count(" checked>") == 12  # the picker keeps the whole selection
    default = client.get("/projects/many/compare").data.decode()
    assert columns(default) == [f"r{index:02}" for index in range(11, 1, -1)]
    assert "Showing the 10 newest of 12 runs" in default
    few = client.get("/projects/many/compare?run=id-r00&run=id-r01").data.decode()
    assert "Showing" not in few


def test_hostile_run_names_config_keys_and_values_render_inert(client, data_dir):
    db = ProjectDB(data_dir / "h.db")
    for index, name in enumerate(HOSTILE):
        db.config(name, {name: name, "nest": {name: index}}, run_id=f"k{index}")
        db.log(name, 0, {name: 1.0}, run_id=f"k{index}")
    db.close()
    for path in ("/projects/h/compare", "/projects/h/compare?q=%3Cimg",
                 "/projects/h/compare?q=%7B%7B7*7%7D%7D&diff=1"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_inert(response.data.decode(), path)
    body = client.get("/projects/h/compare").data.decode()
    assert sorted(columns(body)) == sorted(HOSTILE)
    assert row(body, HOSTILE[0]) is not None and row(body, f"nest.{HOSTILE[0]}") is not None


@pytest.mark.parametrize("query", ["q=" + "x" * 201, "&".join(["run=r"] * 1001)])
def test_oversized_parameters_are_400_with_the_reason(client, sweep, query):
    response = client.get(f"/projects/s/compare?{query}")
    assert response.status_code == 400
    assert query.split("=")[0].lstrip("_") in response.data.decode()


@pytest.mark.parametrize("query", ["diff=yes", "stat=mean", "__theme=neon"])
def test_bad_settings_fall_back_with_a_notice(client, sweep, query):
    response = client.get(f"/projects/s/compare?{query}")
    body = response.data.decode()
    assert response.status_code == 200
    notice = body.split('class="notices"', 1)[1].split("</div>", 1)[0]
    assert query.split("=")[0] in notice and query.split("=")[1] not in notice


def test_unknown_or_invalid_projects_are_4xx(client, sweep):
    assert client.get("/projects/nope/compare").status_code == 404
    assert client.get("/projects/a.b/compare").status_code == 400


@pytest.fixture
def calls(monkeypatch) -> list[int]:
    """One entry per comparison computed (a cache hit computes none)."""
    from trackio_flask.views import compare as view

    counted: list[int] = []
    real = view.compare
    monkeypatch.setattr(view, "compare", lambda *args: counted.append(1) or real(*args))
    return counted


def test_the_page_is_rendered_once_per_query_and_project_version(client, sweep, calls):
    first = client.get("/projects/s/compare?diff=1").data
    assert client.get("/projects/s/compare?diff=1").data == first
    assert len(calls) == 1
    client.get("/projects/s/compare")
    assert len(calls) == 2
    db = ProjectDB(sweep / "s.db")
    db.log("beta", 3, {"train/loss": 0.25}, at=30)
    db.close()
    assert row(client.get("/projects/s/compare?diff=1").data.decode(), "train/loss") == ["0.25", "2"]
    assert len(calls) == 3


def test_the_cache_is_keyed_on_the_runs_a_selection_resolves_to(client, sweep, calls):
    by_name = client.get("/projects/s/compare?run=alpha").data
    assert client.get("/projects/s/compare?run=id-alpha").data == by_name
    assert client.get("/projects/s/compare?run_ids=id-alpha,alpha").data == by_name
    assert len(calls) == 1
    # Names of no run do not each mint a page: only how many there are is shown.
    ghosts = [client.get(f"/projects/s/compare?run=id-alpha&run=ghost{index}").data.decode()
              for index in range(5)]
    assert len(calls) == 2 and len(set(ghosts)) == 1
    assert columns(ghosts[0]) == ["alpha"] and "1 selected run no longer exists" in ghosts[0]


@pytest.mark.parametrize("name", ["run", "run_ids"])
def test_overlong_run_names_are_400(client, sweep, name):
    response = client.get(f"/projects/s/compare?{name}=" + "x" * 257)
    assert response.status_code == 400
    assert "256" in response.data.decode()
    assert client.get(f"/projects/s/compare?{name}=" + "x" * 256).status_code == 200


def test_selection_and_theme_are_read_as_the_metrics_page_reads_them(client, sweep):
    legacy = client.get("/projects/s/compare?runs=id-alpha&theme=dark").data.decode()
    assert columns(legacy) == ["alpha"]  # Trackio's `runs=` embed parameter
    assert 'data-theme="dark"' in legacy
    assert columns(client.get("/projects/s/compare?run_ids=id-beta&sel=all").data.decode()) \
        == ["beta", "alpha"]  # the metrics page's "all runs, new ones too"


def test_run_colours_match_the_metrics_page(client, sweep):
    compare = client.get("/projects/s/compare").data.decode()
    runs = client.get("/projects/s/runs").data.decode()
    for key in ("id-alpha", "id-beta"):
        swatch = re.search(rf'value="{key}"[^>]*>\s*<span class="swatch" style="background: '
                           r'(#[0-9a-f]{6})', compare).group(1)
        assert re.search(rf'background: {swatch}"></span>\s*<a href="/projects/s/runs/{key}"', runs)


def test_summaries_skip_non_finite_values_however_many_end_the_series():
    import numpy as np

    from trackio_flask.series import metric_summary

    values = np.array([3.0, 1.0, 2.0] + [np.nan, np.inf] * 100)
    assert [metric_summary(values, stat) for stat in ("last", "min", "max")] == [2.0, 1.0, 3.0]
    assert metric_summary(np.array([np.nan, -np.inf]), "last") is None
