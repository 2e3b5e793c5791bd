"""`trackio-flask export`: one HTML file that opens from file:// in Chromium, draws every chart
of the view (no server, no network, its own CSP) and zooms; hostile names stay text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from builders import ProjectDB

from trackio_flask import cli

CHROMIUM = "/usr/bin/chromium"
HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


@pytest.fixture
def project(data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log_many(HOSTILE, range(400), lambda s: {"train/loss": 1 / (s + 1), "eval/acc": s / 400})
    db.log_many("beta", range(300), lambda s: {"train/loss": 2 / (s + 1)})
    db.close()
    return data_dir


def export(data_dir: Path, tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "snapshot.html"
    assert cli.main(["export", "p", "--dir", str(data_dir), "-o", str(out), *args]) == 0
    return out


def test_the_file_is_self_contained_and_names_what_it_holds(project, tmp_path):
    text = export(project, tmp_path, "--view", "smoothing=3").read_text()
    assert not re.search(r'<script[^>]*\ssrc=|<link[^>]*href=|https?://(?!www\.w3\.org|vega)',
                         text.split('id="export-data"')[0])  # nothing fetched
    assert "every logged point" in text and "2 runs, 2 charts" in text
    assert "'unsafe-eval'" not in text and "script-src 'sha256-" in text
    # The hostile name is inside JSON only, with every < escaped: no early </script>.
    assert HOSTILE not in text and "window.pwned" in text
    capped = export(project, tmp_path, "--max-points", "100").read_text()
    assert "downsampled as on the dashboard" in capped


def rows_by_resolution(path: Path) -> dict[str, tuple[int, int]]:
    """Per chart: (downsampled rows, every-logged-point rows) embedded in the file."""
    import orjson

    island = re.search(r'id="export-data">(.*?)</script>', path.read_text(), re.S).group(1)
    out = {}
    for chart in orjson.loads(island)["charts"]:
        values = next(d["values"] for d in chart["spec"]["data"] if d.get("values"))
        out[chart["metric"]] = (sum(1 for v in values if v.get("f") == 0),
                                sum(1 for v in values if v.get("f") == 1))
    return out


def test_the_file_holds_the_overview_and_every_logged_point_up_to_the_cap(data_dir, tmp_path):
    db = ProjectDB(data_dir / "p.db")
    db.log_many("alpha", range(3000), lambda s: {"train/loss": 1 / (s + 1), "eval/acc": s % 7})
    db.log_many("beta", range(3000), lambda s: {"train/loss": 2 / (s + 1)})
    db.close()
    both = rows_by_resolution(export(data_dir, tmp_path))
    # Every logged point (2 × 3,000 losses, 3,000 accuracies) beside the downsampled overview.
    assert both["train/loss"][1] == 6000 and both["eval/acc"][1] == 3000
    assert 0 < both["train/loss"][0] < 3000
    text = export(data_dir, tmp_path, "--max-points", "5000").read_text()
    capped = rows_by_resolution(tmp_path / "snapshot.html")
    # The cap keeps the chart that fits (3,000 points) whole and cuts the other to its overview.
    assert capped["eval/acc"][1] == 3000 and capped["train/loss"] == (both["train/loss"][0], 0)
    assert "every logged point once zoomed in for 1 of 2 line charts" in text
    assert 'data-fine="0"' in text and 'data-fine="1"' in text


def test_a_chart_whose_overview_holds_every_point_carries_them_once(project, tmp_path):
    both = rows_by_resolution(export(project, tmp_path))
    assert both == {"train/loss": (700, 0), "eval/acc": (400, 0)}


def test_bad_arguments_exit_with_a_message(project, tmp_path, capsys):
    for argv in (["export", "nope", "--dir", str(project)],
                 ["export", "p", "--dir", str(project), "--view", "smoothing=abc"],
                 ["export", "p", "--dir", str(project), "--max-points", "0"]):
        with pytest.raises(SystemExit) as stopped:
            cli.main(argv)
        assert stopped.value.code == 2
    assert "smoothing" in capsys.readouterr().err


@pytest.mark.browser
def test_chromium_opens_the_snapshot_from_disk_draws_and_zooms(project, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    path = export(project, tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('.chart[data-drawn]').length === 2", timeout=60_000)
            loss = page.locator(".chart", has=page.locator("text=train/loss"))
            assert loss.locator("path[aria-roledescription='line mark'], .mark-line path"
                                ).count() >= 2  # two runs' lines
            legend = loss.locator(".role-legend-label text").all_text_contents()
            # Shown as text (the legend cuts long labels with an ellipsis).
            assert any(t.startswith(HOSTILE[:30]) for t in legend) and "beta" in legend
            assert page.evaluate("window.pwned === undefined")
            assert requests == [path.as_uri()]  # nothing else loaded
            assert not problems, problems

            index = page.evaluate(
                "Array.from(document.querySelectorAll('.chart')).findIndex("
                "c => c.textContent.includes('train/loss'))")
            before = page.evaluate(f"window.exportViews[{index}].scale('x').domain()")
            box = loss.locator("svg").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.wheel(0, -600)  # wheel up: zoom in around the pointer
            page.wait_for_function(
                f"(() => {{ const d = window.exportViews[{index}].scale('x').domain();"
                f" return d[1] - d[0] < {before[1] - before[0]} * 0.9; }})()", timeout=30_000)
        finally:
            browser.close()


def test_the_share_box_downloads_the_same_snapshot_from_the_server(project):
    from trackio_flask import create_app

    app = create_app({"DATA_DIR": project, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"})
    client = app.test_client()
    body = client.get("/projects/p?smoothing=2").data.decode()
    link = re.search(r'<a href="([^"]+)" data-share="snapshot" download>', body).group(1)
    assert link == "/projects/p/snapshot.html?smoothing=2"
    response = client.get(link)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Disposition"] == 'attachment; filename="p-snapshot.html"'
    assert response.headers["Cache-Control"].startswith("public")
    text = response.get_data(as_text=True)
    assert "2 runs, 2 charts" in text and 'id="export-data"' in text
    again = client.get(link, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    client.set_cookie("trackio_write_token", "x")
    assert client.get(link).headers["Cache-Control"] == "private, no-store"
    assert client.get("/projects/p/snapshot.html?smoothing=abc").status_code == 400


def test_a_project_named_like_an_option_is_exported_from_the_server(data_dir):
    from trackio_flask import create_app

    db = ProjectDB(data_dir / "--help.db")
    db.log_many("a", range(5), lambda s: {"m": float(s)})
    db.close()
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"})
    response = app.test_client().get("/projects/--help/snapshot.html")
    assert response.status_code == 200 and "1 run, 1 chart" in response.get_data(as_text=True)
