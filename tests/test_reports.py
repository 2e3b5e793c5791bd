"""The Alerts & Reports page: alerts by level newest first, Markdown rendered safely, live."""

from __future__ import annotations

import re

import pytest
from builders import ProjectDB, stamp
from helpers import poll_url

from trackio_flask import reports

HOSTILE = "<img src=x onerror=alert(1)>"


def alert(db: ProjectDB, run: str, at: float, title: str, level: str, text: str = "",
          step: int | None = None) -> None:
    db.conn.execute("INSERT INTO alerts (run_id, timestamp, run_name, title, text, level, step) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (f"id-{run}", stamp(at), run, title, text, level, step))


def markdown(text: str) -> dict:
    return {"_type": "trackio.markdown", "_value": text}


@pytest.fixture
def report_db(data_dir):
    """Project `r`: three alerts (error, warn, info) and two Markdown reports of alpha, one of
    a hostile-named run."""
    db = ProjectDB(data_dir / "r.db")
    db.log("alpha", 0, {"train/loss": 1.0})
    alert(db, "alpha", 1, "loss spike", "error", "look " + HOSTILE, step=12)
    alert(db, "alpha", 2, "slow", "warn")
    alert(db, HOSTILE, 3, "all good " + HOSTILE, "info", step=3)
    db.log("alpha", 5, {"report": markdown("# First\n\nold text")})
    db.log(HOSTILE, 6, {"report": markdown("# Hostile\n\n" + HOSTILE)})
    db.log("alpha", 9, {"report": markdown(
        "# Weekly *report*\n\n**bold** " + HOSTILE + "\n\n[bad](javascript:alert(1)) "
        "[good](https://example.com/x) [mail](mailto:a@b.c) [rel](/projects/r)\n\n"
        "![pic](https://example.com/p.png)")})
    yield db
    db.close()


def alert_titles(body: str) -> list[str]:
    return re.findall(r'<td class="alert-title">([^<]*)</td>', body)


def test_alerts_table_lists_every_alert_newest_first(client, report_db):
    body = client.get("/projects/r/reports").data.decode()
    assert alert_titles(body) == ["all good &lt;img src=x onerror=alert(1)&gt;", "slow",
                                  "loss spike"]
    row = body.split('data-level="error"')[1].split("</tr>")[0]
    cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert '<a href="/projects/r/runs/id-alpha">alpha</a>' in row
    assert cells[1:] == ["alpha", "loss spike", "look &lt;img src=x onerror=alert(1)&gt;", "12",
                         "2026-01-01 00:00:01"]


@pytest.mark.parametrize("query,expected", [
    ("level=error,warn", ["slow", "loss spike"]),
    ("level=error&level=info", ["all good &lt;img src=x onerror=alert(1)&gt;", "loss spike"]),
    ("level=warn", ["slow"]),
    ("level=", ["all good &lt;img src=x onerror=alert(1)&gt;", "slow", "loss spike"]),
])
def test_level_filter(client, report_db, query, expected):
    body = client.get(f"/projects/r/reports?{query}").data.decode()
    assert alert_titles(body) == expected


def test_level_filter_checkboxes_reflect_the_url(client, report_db):
    body = client.get("/projects/r/reports?level=warn").data.decode()
    checked = re.findall(r'name="level" value="(\w+)" data-autosubmit\s+checked', body)
    assert checked == ["warn"]


def test_markdown_is_rendered_with_hostile_html_escaped_and_unsafe_links_left_as_text(
        client, report_db):
    body = client.get("/projects/r/reports").data.decode()
    assert HOSTILE not in body
    assert "<h1>Weekly <em>report</em></h1>" in body and "<strong>bold</strong>" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "href=\"javascript" not in body.lower()
    assert "[bad](javascript:alert(1))" in body
    assert '<a href="https://example.com/x" rel="nofollow noopener noreferrer">good</a>' in body
    assert '<a href="mailto:a@b.c"' in body and '<a href="/projects/r"' in body
    assert "<img" not in body.split('id="reports"')[1]  # images are off: nothing is fetched


def test_reports_are_grouped_by_run_newest_first(client, report_db):
    body = client.get("/projects/r/reports").data.decode()
    runs = re.findall(r'<h3 class="report-run"><a [^>]*>([^<]*)</a></h3>', body)
    assert runs == ["alpha", "&lt;img src=x onerror=alert(1)&gt;"]
    alpha = body.split('>alpha</a></h3>')[1].split("</section>")[0]
    assert re.findall(r"step (\d+)", alpha) == ["9", "5"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:x", " data:text/html,x",
                                 "vbscript:x"])
def test_unsafe_link_schemes_are_refused(url):
    assert not reports.link_allowed(url)
    assert "<a " not in reports.render_markdown(f"[x]({url})")


@pytest.mark.parametrize("url", ["https://a.b", "http://a.b", "mailto:x@y.z", "/rel", "rel#x",
                                 "?q=1"])
def test_safe_links_are_kept(url):
    assert reports.link_allowed(url)


def test_raw_html_blocks_come_out_as_text():
    html = str(reports.render_markdown("<script>window.pwned = 1</script>\n\n<b>x</b>"))
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>" not in html


@pytest.mark.parametrize("query", ["level=critical", "level=" + "e" * 100, "__theme=neon"])
def test_bad_parameters_fall_back_with_a_notice(client, report_db, query):
    response = client.get(f"/projects/r/reports?{query}")
    assert response.status_code == 200
    notices = response.data.decode().split('class="notices"', 1)[1].split("</div>", 1)[0]
    assert query.split("=")[0] in notices and "e" * 100 not in notices


def test_a_level_another_writer_stored_is_a_filter_choice(client, report_db):
    alert(report_db, "alpha", 10, "odd", "fatal")
    body = client.get("/projects/r/reports?level=fatal").data.decode()
    assert alert_titles(body) == ["odd"]


def test_page_has_one_poller_and_no_inline_script(client, report_db):
    response = client.get("/projects/r/reports")
    body = response.data.decode()
    assert body.count('id="poller"') == 1 and body.count("hx-trigger") == 1
    assert "<script>" not in body and "onclick" not in body


def test_poll_is_204_when_unchanged_and_brings_a_new_alert(client, report_db):
    url = poll_url(client.get("/projects/r/reports?level=error").data)
    assert client.get(url).status_code == 204
    report_db.log("alpha", 11, {"train/loss": 0.5})  # nothing this page shows
    moved = client.get(url)
    assert moved.status_code == 200 and 'id="alerts"' not in moved.data.decode()
    next_url = poll_url(moved.data)
    assert client.get(next_url).status_code == 204
    alert(report_db, "alpha", 12, "late " + HOSTILE, "error")
    fresh = client.get(next_url).data.decode()
    assert 'id="alerts" hx-swap-oob="true"' in fresh and 'id="reports" hx-swap-oob="true"' in fresh
    assert alert_titles(fresh) == ["late &lt;img src=x onerror=alert(1)&gt;", "loss spike"]
    assert fresh.count('id="poller"') == 1


def test_poll_brings_a_new_report(client, report_db):
    url = poll_url(client.get("/projects/r/reports").data)
    report_db.log("alpha", 12, {"report": markdown("## Later")})
    fresh = client.get(url).data.decode()
    assert "<h2>Later</h2>" in fresh


def test_empty_project_shows_empty_states(client, project_db):
    body = client.get("/projects/p/reports").data.decode()
    assert "No alerts to show." in body and "No Markdown reports." in body


def test_steps_no_integer_can_hold_show_as_a_dash(client, data_dir):
    # Another writer can store 9e999 (infinity) or NaN in the INTEGER step columns.
    db = ProjectDB(data_dir / "s.db")
    db.log("alpha", 0, {"train/loss": 1.0})
    alert(db, "alpha", 1, "infinite", "error", step=float("inf"))
    alert(db, "alpha", 2, "negative infinite", "warn", step=float("-inf"))
    db.close()
    for path in ("/projects/s/reports", "/projects/s/runs", "/projects/s/histograms"):
        response = client.get(path)
        assert response.status_code == 200, path
    body = client.get("/projects/s/reports").data.decode()
    assert alert_titles(body) == ["negative infinite", "infinite"] and "<td>—</td>" in body
