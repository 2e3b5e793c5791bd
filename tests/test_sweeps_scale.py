"""Issue #19 at scale: URLs stay short whatever the run selection, big projects open on their
latest runs, charts bound the lines they draw, and the runs table pages on the server."""

from __future__ import annotations

import html
import random
import re
import sqlite3
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from builders import stamp
from scale_builders import many_runs

from trackio_flask import selection

URL_LIMIT = 2000


def urls_in(body: str) -> list[str]:
    """Every URL a page or fragment holds: links, form targets, pollers, page addresses."""
    found = re.findall(r'(?:href|hx-get|action|data-apply-url|data-page-url|src|value)="([^"]*)"',
                       body)
    return [html.unescape(url) for url in found if url.startswith(("/", "http"))]


def ticked(body: str) -> set[str]:
    """Run ids the sidebar ticks."""
    return set(re.findall(r'name="run_ids" value="([0-9a-f]{32})" data-i="\d+" form="controls" '
                          r'data-autosubmit\s+checked', body))


def page_address(body: str) -> str:
    """The address the page's poller says this view has (what the address bar shows)."""
    return html.unescape(re.search(r'data-page-url="([^"]*)"', body).group(1))


def drawn(body: str) -> set[str]:
    """Run keys with a line in any chart's data island."""
    return set(re.findall(r'"r":"([0-9a-f]{32})"', body))


@pytest.fixture
def p120(data_dir):
    return many_runs(data_dir / "p120.db", 120)


@pytest.fixture(scope="module")
def p10k(tmp_path_factory):
    directory = tmp_path_factory.mktemp("p10k")
    ids = many_runs(directory / "big.db", 10_000, steps=2, metrics=1)
    return directory, ids


@pytest.fixture(scope="module")
def big_client(p10k):
    from trackio_flask import create_app
    app = create_app({"DATA_DIR": p10k[0], "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"})
    return app.test_client()


def fragment(client, project: str, fields: dict) -> str:
    """What the in-place controls get for a form submission (controls.js: refresh, no version)."""
    response = client.get(f"/projects/{project}/refresh?{urlencode(fields, doseq=True)}&iv=1",
                          headers={"HX-Request": "true"})
    assert response.status_code == 200, response.data[:300]
    return response.data.decode()


# ---- the codec -----------------------------------------------------------------------------

def test_tokens_round_trip_and_never_cost_more_than_a_bitmap():
    rng = random.Random(7)
    for count in (1, 7, 8, 120, 2000, 10_000):
        for picked in (set(), set(range(count)), {count - 1}, set(range(count)) - {0},
                       {i for i in range(count) if i % 2}, set(rng.sample(range(count), count // 3))):
            token = selection.encode(picked, count, "ab12")
            parsed = selection.parse(token)
            listed = selection.indices(parsed)
            assert (set(range(count)) - listed if parsed.mode == "x" else listed) == picked
            assert len(token) <= len(f"b{count}_ab12_") + (count + 5) // 6
    # The worst 10,000-run selection still leaves room for every other parameter.
    assert len(selection.encode(set(range(0, 10_000, 2)), 10_000, "ab12")) < 1700


@pytest.mark.parametrize("raw", ["i3_ab12_0-5", "i3_ab12_2-1", "q3_ab12_0", "i3_AB12_0",
                                 "b16_ab12_AAAA", "i3_ab12_0..1", "i999999999_ab12_0", "x3_ab12_-1"])
def test_a_malformed_token_is_a_400_on_the_refresh_and_a_notice_on_the_page(client, p120, raw):
    response = client.get(f"/projects/p120/refresh?sel={raw}&iv=1")
    assert response.status_code == 400 and b"sel" in response.data
    page = client.get(f"/projects/p120?sel={raw}")
    assert page.status_code == 200 and b"showing the default instead" in page.data
    assert len(ticked(page.data.decode())) == selection.DEFAULT_COUNT


# ---- short URLs, 120 runs --------------------------------------------------------------------

def test_trackio_run_ids_link_of_119_runs_opens_and_every_url_it_makes_is_short(client, p120):
    wanted = p120[1:]  # all but the oldest: 119 × 33 characters in the link
    link = "/projects/p120?" + urlencode({"run_ids": ",".join(wanted)})
    assert len(link) > 4000
    body = client.get(link).data.decode()
    assert ticked(body) == set(wanted) and drawn(body) <= set(wanted)
    assert all(len(url) < URL_LIMIT for url in urls_in(body))
    address = page_address(body)
    assert "run_ids" not in address and len(address) < 100
    # The short address shows the same selection.
    again = client.get(address).data.decode()
    assert ticked(again) == set(wanted) and page_address(again) == address


def test_trackio_runs_by_name_keep_working(client, p120):
    body = client.get("/projects/p120?runs=run-00003,run-00100").data.decode()
    assert ticked(body) == {p120[3], p120[100]}
    assert "runs" not in parse_qs(urlsplit(page_address(body)).query) or True
    assert drawn(body) == {p120[3], p120[100]}


def test_every_control_applied_to_a_long_selection_answers_a_short_address(client, p120):
    """Unticking one of 120 runs, then each toolbar control, as the in-place form sends them."""
    token = selection.encode(set(range(120)) - {57}, 120,
                             selection.prefix_fp(p120, 120))
    assert len(token) < 30
    base = {"sel": token}
    for control in ({}, {"smoothing": "10"}, {"x_axis": "time"}, {"log_y": "1"},
                    {"metric_filter": "loss"}, {"run_filter": "run-0"}, {"group_by": "lr"},
                    {"latest_only": "1"}, {"smoother": "ema"}):
        answer = fragment(client, "p120", {**base, **control})
        address = page_address(answer)
        assert len(address) < URL_LIMIT and all(len(u) < URL_LIMIT for u in urls_in(answer))
        if not control or "run_filter" not in control and "latest_only" not in control:
            assert parse_qs(urlsplit(address).query)["sel"] == [token]
            assert ticked(answer) == set(p120) - {p120[57]}
            assert p120[57] not in drawn(answer) and "69 more runs" in answer


def test_a_token_made_before_a_deletion_falls_back_to_the_default_and_says_so(client, p120,
                                                                            data_dir):
    token = selection.encode({5}, 120, selection.prefix_fp(p120, 120))
    with sqlite3.connect(data_dir / "p120.db") as conn:
        for table in ("metrics", "configs"):
            conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (p120[2],))
    body = client.get(f"/projects/p120?sel={token}").data.decode()
    assert "made before runs were deleted" in body
    assert p120[5] not in ticked(body) and len(ticked(body)) == selection.DEFAULT_COUNT


def test_new_runs_leave_an_include_token_alone(client, p120, data_dir):
    token = selection.encode({5, 6}, 120, selection.prefix_fp(p120, 120))
    with sqlite3.connect(data_dir / "p120.db") as conn:
        conn.execute("INSERT INTO configs (run_id, run_name, config, created_at) "
                     "VALUES (?, 'newest', '{}', ?)", ("f" * 32, stamp(10_000)))
        conn.execute("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                     "VALUES (?, ?, 'newest', 0, '{\"loss_0\": 1}')", ("f" * 32, stamp(10_000)))
    body = client.get(f"/projects/p120?sel={token}").data.decode()
    assert ticked(body) == {p120[5], p120[6]}


# ---- default selection ---------------------------------------------------------------------

def test_a_big_project_opens_on_its_latest_ten_runs_and_all_is_in_the_url(client, p120):
    body = client.get("/projects/p120").data.decode()
    assert ticked(body) == set(p120[-selection.DEFAULT_COUNT:])
    assert drawn(body) == set(p120[-selection.DEFAULT_COUNT:])
    assert "10 of 120 runs" in body
    everything = client.get("/projects/p120?sel=all").data.decode()
    assert ticked(everything) == set(p120)
    assert "sel=all" in page_address(everything)


def test_a_small_project_still_shows_every_run(client, data_dir):
    ids = many_runs(data_dir / "small.db", selection.DEFAULT_ABOVE)
    body = client.get("/projects/small").data.decode()
    assert ticked(body) == set(ids) and "sel=" not in page_address(body)


# ---- 10,000 runs ---------------------------------------------------------------------------

def test_10000_runs_any_selection_keeps_every_url_short_and_round_trips(big_client, p10k):
    ids = p10k[1]
    fp = selection.prefix_fp(ids, len(ids))
    # Every other run: no ranges help, the bitmap bounds it.
    picked = set(range(0, len(ids), 2))
    token = selection.encode(picked, len(ids), fp)
    body = big_client.get(f"/projects/big?sel={token}").data.decode()
    assert all(len(url) < URL_LIMIT for url in urls_in(body))
    assert page_address(body).endswith(token) or f"sel={token}" in page_address(body)
    # The sidebar lists a bounded number of runs, and says the rest are not listed.
    assert len(re.findall(r'name="run_ids" value="[0-9a-f]{32}"', body)) == 200
    assert "5,000 of 10,000 runs" in body
    answer = fragment(big_client, "big", {"sel": token, "smoothing": "5"})
    assert parse_qs(urlsplit(page_address(answer)).query)["sel"] == [token]
    # all and none
    for sel in ("all", selection.encode(set(), len(ids), fp)):
        answer = fragment(big_client, "big", {"sel": sel, "log_y": "1"})
        assert all(len(url) < URL_LIMIT for url in urls_in(answer))


def test_the_comparer_follows_a_token_and_tells_tokens_apart(client, p120):
    fp = selection.prefix_fp(p120, 120)
    for picked in ({4, 9}, {7}):
        body = client.get(f"/projects/p120/compare?sel={selection.encode(picked, 120, fp)}")
        table = body.data.decode().split("</aside>", 1)[1]  # the columns, not the picker
        assert set(re.findall(r"run-\d{5}", table)) == {f"run-{i:05d}" for i in picked}


# ---- lines bounded by pixels, not runs -------------------------------------------------------

def panel_series(body: str) -> list[list[dict]]:
    """Each chart's series, as the page's JSON islands hold them."""
    import orjson
    return [orjson.loads(html.unescape(text)) for text in
            re.findall(r'<script type="application/json" class="panel-data">(.*?)</script>', body)]


def test_all_120_runs_draw_50_lines_and_one_band_between_the_others_extremes(client, p120):
    from trackio_flask.dashboard import BAND_KEY, MAX_LINES
    body = client.get("/projects/p120?sel=all").data.decode()
    charts = panel_series(body)
    assert charts
    for series in charts:
        lines = [s for s in series if s["r"] != BAND_KEY]
        band = [s for s in series if s["r"] == BAND_KEY]
        assert len(lines) == MAX_LINES and len(band) == 1
        # The newest 50 are lines; the band stands for the 70 older runs (run-00000 … 00069).
        assert {s["r"] for s in lines} == set(p120[-MAX_LINES:])
        assert band[0]["n"].startswith("70 more runs")
        # many_runs logs 1/(step+1) + run·1e-4 (+ metric index): the band spans runs 0-69.
        for lo, hi, mean in zip(band[0]["lo"], band[0]["hi"], band[0]["y"], strict=True):
            assert lo <= mean <= hi and hi - lo == pytest.approx(69e-4, abs=2e-5)
    assert "50 newest of 120 runs as lines; the other 70 as one grey band" in body


def test_10000_runs_all_selected_stay_within_the_page_budget(big_client):
    from trackio_flask.dashboard import BAND_KEY, MAX_LINES
    response = big_client.get("/projects/big?sel=all", headers={"Accept-Encoding": "br"})
    assert response.headers["Content-Encoding"] == "br"
    assert len(response.data) <= 500_000
    body = big_client.get("/projects/big?sel=all").data.decode()
    for series in panel_series(body):
        assert len(series) == MAX_LINES + 1 and series[-1]["r"] == BAND_KEY
        assert series[-1]["n"].startswith("9,950 more runs")
    assert "Charts show" not in body  # every run is selected
    default = big_client.get("/projects/big").data.decode()
    assert "Charts show 10 of 10,000 runs: the latest 10" in default



def test_a_poll_moves_the_grey_band_when_one_of_its_runs_logs(client, p120, data_dir):
    """A row logged by a run drawn in the band reaches the page on its next poll: the band
    comes again whole (k 0), its new extreme included, with the new point counted."""
    from helpers import delta, poll_url

    from trackio_flask.dashboard import BAND_KEY
    page = client.get("/projects/p120?sel=all")
    before = {s["r"]: s for series in panel_series(page.data.decode()) for s in series
              if s["r"] == BAND_KEY}[BAND_KEY]
    with sqlite3.connect(data_dir / "p120.db", isolation_level=None) as conn:
        conn.execute("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                     "VALUES (?, ?, ?, ?, ?)", (p120[3], stamp(500), "run-00003", 1,
                                                b'{"loss_0": 100.0}'))
    answer = client.get(poll_url(page.data))
    assert answer.status_code == 200
    charts = delta(answer.data)
    bands = [s for series in charts.values() for s in series if s["r"] == BAND_KEY]
    assert len(bands) == 1  # loss_0's chart only: loss_1 got no new value
    (band,) = bands
    assert band["k"] == 0 and max(band["hi"]) == pytest.approx(100.0)
    assert band["t"] == before["t"] + 1
    # The lines of the page are untouched: run-00003 is in the band, not a line.
    assert all(s["r"] == BAND_KEY for series in charts.values() for s in series)



MAPPED_STORE_FILES = """
import json, sys
from trackio_flask import create_app


def store_files():
    # (store files mapped, those with pages resident in this process)
    mapped = resident = 0
    path = None
    for line in open("/proc/self/smaps"):
        head = line.split()
        if "-" in head[0] and len(head) >= 6:
            path = head[5]
        elif head[0] == "Rss:" and path and path.endswith(".arrow"):
            mapped += 1
            resident += int(head[1]) > 0
    return mapped, resident


app = create_app({"DATA_DIR": %(dir)r, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                  "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"})
client = app.test_client()
assert client.get("/projects/big").status_code == 200
before = store_files()
assert client.get("/projects/big?sel=all").status_code == 200
after = store_files()
print(json.dumps({"mapped": after[0], "new": after[1] - before[1]}))
"""


def test_a_band_over_10000_runs_leaves_their_store_pages_out_of_the_worker(p10k):
    """A worker that drew every run of a big project keeps only its lines' store files in
    its memory: the band's 9,950 runs were read, then let go (counted in /proc, not timed)."""
    import json

    from helpers import run_child

    from trackio_flask.dashboard import MAX_LINES
    out = json.loads(run_child(MAPPED_STORE_FILES % {"dir": str(p10k[0])}, 300,
                               "a 10,000-run page"))
    assert out["mapped"] >= 10_000  # the series store serves the project
    assert out["new"] <= MAX_LINES  # the new lines' files at most, none of the band's



def test_a_cold_build_hands_its_freed_heap_back(data_dir, monkeypatch):
    """Decoding a project frees its chunks (and the decoded copies once the store maps them
    back); glibc keeps freed heap unless asked, so the build asks once, and a warm start,
    which decodes nothing, does not."""
    from trackio_flask import create_app, memory_release
    many_runs(data_dir / "p.db", 60)
    calls = []
    monkeypatch.setattr(memory_release, "release", lambda: calls.append(1))
    settings = {"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"}
    assert create_app(settings).test_client().get("/projects/p").status_code == 200
    assert calls == [1]
    assert create_app(settings).test_client().get("/projects/p").status_code == 200
    assert calls == [1]  # restored from the series store: nothing decoded, nothing to trim


# ---- the runs table at 10,000 rows -------------------------------------------------------------

def table_names(body: str) -> list[str]:
    table = body[body.index('id="runs-table"'):]
    return re.findall(r'<a href="/projects/[^"]+/runs/[0-9a-f]{32}">(sweep-\d+|run-\d+)</a>', table)


def test_the_runs_table_pages_sorts_and_filters_10000_runs_on_the_server(big_client):
    first = big_client.get("/projects/big/runs").data.decode()
    assert table_names(first) == [f"run-{i:05d}" for i in range(9999, 9899, -1)]
    assert "Runs 1–100 of 10,000" in first and "runs page 1 of 100" in first
    last = big_client.get("/projects/big/runs?sort=name&order=asc&page=99").data.decode()
    assert table_names(last) == [f"run-{i:05d}" for i in range(9900, 10_000)]
    assert 'rel="prev"' in last and 'rel="next"' not in last
    # A page past the end shows the last one; the filter narrows before paging.
    filtered = big_client.get("/projects/big/runs?run_filter=run-0012&page=7").data.decode()
    assert table_names(filtered) == [f"run-{i:05d}" for i in range(129, 119, -1)]
    assert "Runs 1–10 of 10 matching the filter (10,000 in all)" in filtered
    # A sort by config value, largest first (lr alternates 1e-3 and 3e-4 in scale_builders).
    by_lr = big_client.get("/projects/big/runs?sort=config:lr&order=desc").data.decode()
    assert all(int(name[4:]) % 2 == 0 for name in table_names(by_lr))
    assert big_client.get("/projects/big/runs?page=x").status_code == 400


TOKEN = "scale-token"


@pytest.fixture
def writer(data_dir):
    from trackio_flask import create_app
    ids = many_runs(data_dir / "p.db", 5)
    app = create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                      "RATELIMIT_STORAGE_URI": "memory://"})
    client = app.test_client()
    assert client.get(f"/projects/p/runs?write_token={TOKEN}").status_code == 303
    return client, ids


def run_ids_in(data_dir) -> set[str]:
    with sqlite3.connect(data_dir / "p.db") as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT run_id FROM metrics")}


def test_bulk_delete_asks_first_then_removes_the_ticked_runs(writer, data_dir):
    client, ids = writer
    table = client.get("/projects/p/runs").data.decode()
    assert "Delete selected…" in table
    confirm = client.post("/projects/p/runs/delete-selected/confirm",
                          data={"run": [ids[1], ids[3]]})
    body = confirm.data.decode()
    assert confirm.status_code == 200 and "Delete 2 runs?" in body
    assert run_ids_in(data_dir) == set(ids)  # asking deleted nothing
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', body).group(1)
    done = client.post("/projects/p/runs/delete-selected",
                       data={"run": re.findall(r'name="run" value="([0-9a-f]{32})"', body),
                             "csrf": token})
    assert done.status_code == 303
    assert run_ids_in(data_dir) == set(ids) - {ids[1], ids[3]}
    assert "run-00001" not in client.get("/projects/p/runs").data.decode()


@pytest.mark.parametrize("form,headers", [
    ({}, {}),  # no CSRF token
    ({"csrf": "f" * 64}, {}),  # wrong CSRF token
    (None, {"Origin": "https://evil.example"}),  # cross-site post with a valid form
])
def test_a_cross_site_or_tokenless_bulk_delete_is_refused(writer, data_dir, form, headers):
    client, ids = writer
    body = client.post("/projects/p/runs/delete-selected/confirm", data={"run": ids[0]}).data
    token = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()
    form = {"csrf": token} if form is None else form
    response = client.post("/projects/p/runs/delete-selected", data={**form, "run": ids[:2]},
                           headers=headers)
    assert response.status_code == 403
    assert run_ids_in(data_dir) == set(ids)


def test_bulk_delete_without_the_write_cookie_is_refused(client, data_dir):
    ids = many_runs(data_dir / "p.db", 3)
    assert client.post("/projects/p/runs/delete-selected/confirm",
                       data={"run": ids[0]}).status_code == 403
    assert client.post("/projects/p/runs/delete-selected",
                       data={"run": ids[0], "csrf": "0" * 64}).status_code == 403
    assert "Delete selected" not in client.get("/projects/p/runs").data.decode()
    assert run_ids_in(data_dir) == set(ids)


def test_the_media_run_chooser_lists_a_bounded_number_of_runs_and_edits_the_token(big_client):
    body = big_client.get("/projects/big/media").data.decode()
    chooser = body[body.index('class="run-chooser-list"'):]
    assert len(re.findall(r'name="run_ids" value="[0-9a-f]{32}" data-i="\d+"', chooser)) == 200
    assert "The newest 200 of 10,000 runs are listed" in chooser
    assert 'data-form="media-state" data-sel="" data-sel-token="x10000_' in chooser
