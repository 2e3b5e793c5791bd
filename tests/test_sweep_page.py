"""The Sweep tab rendered on the server: its parallel coordinates, scatter, best runs and the
difference of two groups, with hostile names escaped and bad parameters refused."""

from __future__ import annotations

import re

import pytest
from helpers import assert_inert
from sweep_zoo import HOSTILE, RUNS, SWEEP, log_sweep, loss

from trackio_flask import groups

URL = f"/projects/{SWEEP}/sweep"


@pytest.fixture
def sweep(data_dir):
    log_sweep(data_dir)
    return data_dir


def lines(body: str) -> dict[str, str]:
    """Drawn parallel-coordinates lines: run key -> class."""
    return dict((key, cls) for cls, key in re.findall(
        r'<path d="[^"]*" stroke="[^"]*" class="([^"]*)" data-key="([^"]*)"', body))


def test_sweep_tab_shows_every_run_over_public_config_axes_and_the_metric(client, sweep):
    res = client.get(URL)
    assert res.status_code == 200
    body = res.data.decode()
    assert len(lines(body)) == len(RUNS) + 1
    titles = re.findall(r'<text class="pc-title" x="\d+" y="12"[^>]*>([^<]*)', body)
    assert titles[1:] == ["lr", "model.act", "model.depth", "seed", "last(loss)"]
    assert titles[0].startswith("&lt;img src=x")  # a hostile key is an axis, as text
    assert "_Created" not in body and "_Username" not in body
    assert 'href="/projects/sweep/sweep"' in client.get(f"/projects/{SWEEP}").data.decode()
    assert_inert(body, "sweep tab")


def test_selection_from_the_address_highlights_its_runs(client, sweep):
    body = client.get(f"{URL}?run_ids=id-lr1-seed0,id-lr3-seed1").data.decode()
    drawn = lines(body)
    assert drawn["id-lr1-seed0"] == "pc-line" and drawn["id-lr3-seed1"] == "pc-line"
    assert all(cls == "pc-line off" for key, cls in drawn.items()
               if key not in ("id-lr1-seed0", "id-lr3-seed1"))
    assert re.search(r'id="sweep-count">2<', body)


def test_a_selection_token_highlights_its_runs_and_the_form_keeps_it(client, sweep):
    first = client.get(f"{URL}?run_ids=id-lr1-seed0,id-lr3-seed1").data.decode()
    token = re.search(r'name="sel" id="sweep-sel" value="([^"]+)"', first).group(1)
    body = client.get(f"{URL}?sel={token}").data.decode()
    drawn = lines(body)
    assert {key for key, cls in drawn.items() if cls == "pc-line"} == {"id-lr1-seed0",
                                                                       "id-lr3-seed1"}
    assert f'name="sel" id="sweep-sel" value="{token}"' in body
    # Every line carries its index in creation order, which the brushing encodes.
    assert len(re.findall(r'data-i="\d+"', body)) == len(drawn)
    # Without a selection in the address nothing is highlighted as chosen and no token is sent.
    plain = client.get(URL).data.decode()
    assert re.search(r'name="sel" id="sweep-sel" value="" disabled', plain)


def test_best_runs_rank_losses_up_and_accuracies_down(client, sweep):
    body = client.get(f"{URL}?stat=last").data.decode()
    tables = dict(re.findall(r"<caption>(\w+) <span[^>]*>.</span></caption>\s*<tbody>(.*?)</tbody>",
                             body, re.S))
    ranked_loss = re.findall(r">(lr\d-seed\d)</a>", tables["loss"])
    assert ranked_loss == ["lr1-seed0", "lr1-seed2", "lr1-seed1", "lr3-seed0", "lr3-seed2"]
    ranked_acc = re.findall(r">([^<]+)</a>", tables["acc"])
    assert ranked_acc == ranked_loss  # accuracy falls as loss rises: the same runs, best first
    values = re.findall(r'class="num">([^<]+)<', tables["acc"])
    assert values == ["0.975", "0.9625", "0.95", "0.875", "0.85"]


def test_difference_of_two_learning_rates_with_welchs_interval(client, sweep):
    body = client.get(f"{URL}?group=config:lr&a=0.0003&b=0.001").data.decode()
    last = {name: loss(offset, 19) for name, (_, _, _, offset) in RUNS.items()}
    expected = groups.welch_difference(
        "0.0003", [v for k, v in last.items() if k.startswith("lr3")],
        "0.001", [v for k, v in last.items() if k.startswith("lr1")])
    result = re.search(r'id="diff-result">(.*?)</p>', body, re.S).group(1)
    assert f"= {expected.diff:.4g}, 95% CI [{expected.low:.4g}, {expected.high:.4g}]" in result
    assert "leaves out 0" in result
    # The default pair is the two largest groups, whichever order their labels sort in.
    default = client.get(f"{URL}?group=config:lr").data.decode()
    assert "leaves out 0" in default and HOSTILE not in default


@pytest.mark.parametrize("query", ["metric=nope", "stat=mean", "axis=_Created", "axis=nokey",
                                   "x=model._secret", "group=config:lr&a=nogroup",
                                   "a=" + "x" * 300])
def test_bad_parameters_are_400_not_500(client, sweep, query):
    assert client.get(f"{URL}?{query}").status_code == 400


def test_an_empty_project_and_an_unknown_one(client, data_dir):
    from builders import ProjectDB

    ProjectDB(data_dir / "empty.db").close()
    assert client.get("/projects/empty/sweep").status_code == 200
    assert client.get("/projects/nothing-here/sweep").status_code == 404


def test_scatter_points_sit_on_their_axis_ticks(client, sweep):
    body = client.get(f"{URL}?x=seed").data.decode()
    points = dict((key, float(cx)) for cx, key in re.findall(
        r'<circle cx="([\d.]+)" cy="[\d.]+" r="4" fill="[^"]*" class="sc-point[^"]*" '
        r'data-key="([^"]*)"', body))
    ticks = {label: float(x) for x, label in re.findall(
        r'<text class="pc-tick" x="([\d.]+)" y="\d+" text-anchor="middle">([^<]+)</text>', body)}
    assert points["id-lr1-seed0"] == pytest.approx(ticks["0"])  # seed 0
    assert points["id-lr9-&lt;img src=x onerror=alert(1)&gt;"] == pytest.approx(ticks["9"])


def test_a_project_logged_by_trackio_groups_by_nested_keys_and_stays_inert(zoo_dir):
    from helpers import panel_data
    from trackio_zoo import ZOO

    from trackio_flask import create_app

    client = create_app({"DATA_DIR": zoo_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                         "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"}).test_client()
    metrics = client.get(f"/projects/{ZOO}")
    body = metrics.data.decode()
    # trackio stores config as nested JSON: the nested key is offered, its private keys not
    assert 'value="config:model.depth"' in body and 'value="config:note"' in body
    assert "config:_Created" not in body
    grouped = client.get(f"/projects/{ZOO}?group=config:note")
    names = {s["n"] for series in panel_data(grouped.data) for s in series}
    assert {"plain (n=2)", f"{HOSTILE} (n=1)"} <= names
    assert_inert(grouped.data.decode(), "zoo metrics grouped by a hostile value")
    tab = client.get(f"/projects/{ZOO}/sweep?group=config:note&x=model.depth")
    assert tab.status_code == 200
    tab_body = tab.data.decode()
    assert len(lines(tab_body)) == 3
    assert_inert(tab_body, "zoo sweep tab")


@pytest.fixture
def overflowing(data_dir):
    """Two groups of three runs whose metric sits near the float limit (a logged overflow)."""
    from builders import ProjectDB
    db = ProjectDB(data_dir / "huge.db")
    for index, value in enumerate((1e308, 1.5e308, 1.7e308, 1e308, 1.1e308, 1.2e308)):
        name = f"r{index}"
        db.config(name, {"lr": (0.1, 0.2)[index // 3], "_Group": ("g1", "g2")[index // 3]},
                  run_id=f"id-{name}")
        db.log_many(name, range(4), lambda step, v=value: {"m": v - step * 1e300},
                    run_id=f"id-{name}")
    db.close()
    return data_dir


def test_values_near_the_float_limit_give_an_interval_and_grouped_bands(client, overflowing):
    """Sums and squares of such values overflow; the answers themselves do not."""
    body = client.get("/projects/huge/sweep?metric=m&group=config:lr").data.decode()
    result = re.search(r'id="diff-result">(.*?)</p>', body, re.S).group(1)
    # 0.2's mean (1.1e308) minus 0.1's (1.4e308): -3e307, with a finite interval.
    numbers = [float(n) for n in re.findall(r"-?\d\.\d+e\+\d+|-?\d+\.?\d*e\+\d+", result)]
    assert numbers and numbers[0] == pytest.approx(-3e307, rel=1e-3)
    assert all(abs(n) < 1.8e308 for n in numbers)
    assert "1.4e+308" in body  # group 0.1's mean in the group table
    for band in ("std", "ci95", "minmax"):
        page = client.get(f"/projects/huge?group=config:lr&band={band}&smoothing=3")
        assert page.status_code == 200
        from helpers import panel_data
        (series,) = panel_data(page.data)
        assert {s["n"] for s in series} == {"0.1 (n=3)", "0.2 (n=3)"}
        for s in series:
            assert all(v is not None and abs(v) <= 1.8e308 for v in s["y"] + s["lo"] + s["hi"])
