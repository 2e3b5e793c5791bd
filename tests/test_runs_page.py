"""The runs table: a column chooser remembered in the URL, sorting by chosen columns, and a path
from ticked runs to the comparer."""

from __future__ import annotations

import html
import re

import pytest
from builders import ProjectDB


def headers(body: str) -> list[str]:
    """The table's column headings, left to right (sort arrows dropped)."""
    head = body[body.index('id="runs-table"'):body.index("</thead>")]
    cells = re.findall(r"<th>(.*?)</th>", head, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)).rstrip(" ↑↓").strip() for cell in cells]


def run_order(body: str) -> list[str]:
    table = body[body.index('id="runs-table"'):]
    return [html.unescape(name) for name in
            re.findall(r'<a href="/projects/[^"]+/runs/[^"]+">(.*?)</a></td>', table)]


def ticked(body: str, name: str) -> list[str]:
    """Values of the chooser's ticked checkboxes called `name`."""
    menu = body[body.index('id="column-options"'):body.index("</form>", body.index('id="column-options"'))]
    return [html.unescape(value) for value in
            re.findall(rf'name="{name}" value="([^"]*)" checked', menu)]


@pytest.fixture
def sweep(data_dir):
    """Project `s`: three runs whose lr sorts differently as numbers than as text."""
    db = ProjectDB(data_dir / "s.db")
    for index, (name, lr) in enumerate([("a", 10), ("b", 2), ("c", 0.5)]):
        db.config(name, {"lr": lr, "batch": 32, "model": {"depth": 3 - index}, "seed": index,
                         "tag": name})
        db.log_many(name, range(index + 2), lambda step, i=index: {"loss": i + 1.0 / (step + 1),
                                                                     "acc": step / 10, "z": 1.0})
    db.config("d", {"batch": 16})  # no lr: sorts last both ways
    db.log("d", 0, {"acc": 0.5})
    db.close()
    return data_dir


def test_without_a_choice_the_first_config_keys_and_metrics_are_shown(client, sweep):
    body = client.get("/projects/s/runs").data.decode()
    assert headers(body)[6:] == ["batch", "lr", "model.depth", "seed", "acc", "loss", "z"]
    assert ticked(body, "col") == ["batch", "lr", "model.depth", "seed"]
    assert "tag" in body[body.index('id="column-options"'):]  # offered, not shown


def test_default_columns_skip_config_keys_every_run_shares(client, data_dir):
    db = ProjectDB(data_dir / "k.db")
    for index, name in enumerate(["a-very-long-run-name-" * 4 + "end", "b", "c"]):
        db.config(name, {"dataset": "same", "epochs": 10, "lr": 0.1 * (index + 1),
                         "model": {"depth": 3 + index}})
        db.log_many(name, range(3), lambda step: {"loss": 1.0 / (step + 1)})
    db.close()
    body = client.get("/projects/k/runs").data.decode()
    assert headers(body)[6:] == ["lr", "model.depth", "loss"]  # dataset and epochs never vary
    table = body[body.index('id="runs-table"'):]
    # The name cell carries the full name (shown on hover when the cell cuts it off) and the
    # numbers are marked to line up on the right.
    assert 'class="run-cell" title="' + "a-very-long-run-name-" * 4 + 'end"' in table
    assert re.findall(r'<td class="num">([^<]*)</td>', table)[:3] == ["3", "2", "0.333333"]


def test_chosen_columns_come_from_the_url_and_are_ticked_in_the_chooser(client, sweep):
    body = client.get("/projects/s/runs?col=&col=tag&col=model.depth&metric=&metric=acc").data.decode()
    assert headers(body)[6:] == ["tag", "model.depth", "acc"]
    assert ticked(body, "col") == ["model.depth", "tag"] and ticked(body, "metric") == ["acc"]
    start = body.index(">a</a>")
    cells = re.findall(r'<td(?: class="num")?>([^<]*)</td>', body[start:body.index("</tr>", start)])
    assert cells[-3:] == ["a", "3", "0.1"]  # tag, nested model.depth, acc's final value


def test_choosing_no_columns_shows_none(client, sweep):
    body = client.get("/projects/s/runs?col=&metric=").data.decode()
    assert headers(body) == ["Compare", "Run", "Created (UTC)", "Steps", "Last step", "Status"]


def test_unknown_columns_in_the_url_are_ignored(client, sweep):
    body = client.get("/projects/s/runs?col=&col=nope&col=lr&metric=&metric=ghost").data.decode()
    assert headers(body)[6:] == ["lr"]


@pytest.mark.parametrize("order,expected", [("asc", ["c", "b", "a", "d"]),
                                            ("desc", ["a", "b", "c", "d"])])
def test_sorting_by_a_chosen_config_column_is_numeric_and_missing_values_go_last(
        client, sweep, order, expected):
    body = client.get(f"/projects/s/runs?col=&col=lr&sort=config:lr&order={order}").data.decode()
    assert run_order(body) == expected


@pytest.mark.parametrize("order,expected", [("asc", ["a", "b", "c", "d"]),
                                            ("desc", ["c", "b", "a", "d"])])
def test_sorting_by_a_final_metric_value(client, sweep, order, expected):
    body = client.get(f"/projects/s/runs?metric=&metric=loss&sort=metric:loss&order={order}").data.decode()
    assert run_order(body) == expected


def test_sort_links_and_the_chooser_keep_the_chosen_columns(client, sweep):
    body = client.get("/projects/s/runs?col=&col=tag&metric=&sort=name&order=asc").data.decode()
    link = html.unescape(re.search(r'<a href="([^"]+)">tag</a>', body).group(1))
    assert link == "/projects/s/runs?sort=config:tag&order=desc&col=&col=tag&metric="
    form = body[body.index('id="columns-form"'):body.index('id="column-options"')]
    assert 'name="sort" value="name"' in form and 'name="order" value="asc"' in form
    assert 'hx-push-url="true"' in form  # applied in place, the URL follows


def test_every_run_row_can_be_ticked_for_the_comparer(client, sweep):
    body = client.get("/projects/s/runs").data.decode()
    assert 'id="compare-form" method="get" action="/projects/s/compare"' in body
    boxes = re.findall(r'<input type="checkbox" name="run" value="([^"]+)" form="compare-form"', body)
    assert sorted(boxes) == ["id-a", "id-b", "id-c", "id-d"]
    compare = client.get("/projects/s/compare?" + "&".join(f"run={key}" for key in boxes[:2]))
    assert compare.status_code == 200


@pytest.mark.parametrize("query", ["sort=evil", "order=sideways"])
def test_bad_sort_parameters_are_400(client, sweep, query):
    response = client.get(f"/projects/s/runs?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.data.decode()


def test_hostile_config_keys_and_values_in_the_chooser_render_inert(client, data_dir):
    hostile = "<img src=x onerror=alert(1)>"
    db = ProjectDB(data_dir / "h.db")
    db.config(hostile, {hostile: {hostile: hostile}, "'x": "\" onfocus=\"alert(2)"}, run_id="k0")
    db.log(hostile, 0, {hostile: 1.0}, run_id="k0")
    db.close()
    body = client.get("/projects/h/runs?sort=name").data.decode()
    assert "<img src=x" not in body and '" onfocus="' not in body
    assert f"{hostile}.{hostile}".replace("<", "&lt;").replace(">", "&gt;") in body


def test_the_chooser_keeps_the_pages_run_filter_and_theme(client, sweep):
    body = client.get("/projects/s/runs?run_filter=%5Ba-b%5D&__theme=dark&col=&col=lr").data.decode()
    assert run_order(body) == ["b", "a"]
    form = body[body.index('id="columns-form"'):body.index('id="column-options"')]
    assert 'name="run_filter" value="[a-b]"' in form and 'name="__theme" value="dark"' in form
    assert 'data-theme="dark"' in body


def test_configs_are_flattened_once_per_project_version(client, sweep, monkeypatch):
    from trackio_flask import compare

    calls = []
    real = compare.flatten_config
    monkeypatch.setattr(compare, "flatten_config", lambda config: calls.append(1) or real(config))
    assert client.get("/projects/s/runs").status_code == 200
    assert len(calls) == 4  # one per run's config
    client.get("/projects/s/runs?col=&col=tag&sort=config:tag&run_ids=id-a,id-b")
    client.get("/projects/s/runs?metric=&metric=loss&sort=metric:loss")
    assert len(calls) == 4
    db = ProjectDB(sweep / "s.db")
    db.config("e", {"lr": 1, "extra": {"new": 1}})
    db.close()
    body = client.get("/projects/s/runs?col=&col=extra.new&metric=").data.decode()
    assert len(calls) == 9 and headers(body)[6:] == ["extra.new"]


def test_the_flattened_config_memo_holds_a_few_versions_only():
    from types import SimpleNamespace

    from trackio_flask import compare

    for version in range(3 * compare.MEMO_VERSIONS):
        state = SimpleNamespace(path="/nowhere/x.db", version=str(version),
                                configs={"r": {"a": {"b": version}}})
        assert compare.flat_configs(state).by_run == {"r": {"a.b": version}}
    assert len(compare._flat_memo) <= compare.MEMO_VERSIONS
