"""The Traces page on traces trackio's own client logged: list, filters, pages, one trace's
conversation and span tree, escaping, and the poller (204, then new traces live)."""

from __future__ import annotations

import html
import json
import re
import shutil
import sqlite3

import pytest
from helpers import assert_inert, poll_url
from trackio_pages_zoo import PAGES, log_trace
from trackio_zoo import HOSTILE

from trackio_flask import create_app, traces


def client_for(data_dir):
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                       "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"}).test_client()



def requests_listed(body: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", cell).strip()) for cell in re.findall(
        r'<td class="trace-request"><a [^>]*>(.*?)</a>', body, re.S)]


def trace_ids(body: str) -> list[str]:
    return [html.unescape(found) for found in re.findall(r'data-trace="([^"]+)"', body)]


def test_list_shows_each_trace_with_run_step_status_latency_tokens_and_cost(pages_client):
    body = pages_client.get(f"/projects/{PAGES}/traces").data.decode()
    assert requests_listed(body) == ["plain hello", "Weather in Paris again, failing " + HOSTILE,
                                     "What is the weather in Paris?"]
    rows = re.findall(r'<tr class="trace-row".*?</tr>', body, re.S)
    failing = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()
               for cell in re.findall(r"<td[^>]*>(.*?)</td>", rows[1], re.S)]
    assert failing[1:3] == ["producer", "2"]
    assert failing[4:] == ["error", "2.50s", "312", "$0.0031"]
    assert "3 traces" in body
    assert_inert(body, "traces list")


@pytest.mark.parametrize("query,expected", [
    ("status=error", ["Weather in Paris again, failing " + HOSTILE]),
    ("status=success", ["What is the weather in Paris?"]),
    ("status=unknown", ["plain hello"]),
    ("q=PLAIN", ["plain hello"]),
    ("q=get_weather", ["Weather in Paris again, failing " + HOSTILE,
                       "What is the weather in Paris?"]),
    ("q=100%25", []),
    ("sort=oldest", ["What is the weather in Paris?", "Weather in Paris again, failing " + HOSTILE,
                     "plain hello"]),
])
def test_filters_and_sort_follow_the_url(pages_client, query, expected):
    body = pages_client.get(f"/projects/{PAGES}/traces?{query}").data.decode()
    assert requests_listed(body) == expected


def test_run_filter_keeps_the_chosen_runs_and_drops_unknown_ones(pages_client, pages_dir):
    body = pages_client.get(f"/projects/{PAGES}/traces").data.decode()
    producer = re.search(r'name="run" value="([^"]+)"', body).group(1)
    assert len(requests_listed(pages_client.get(
        f"/projects/{PAGES}/traces?run={producer}").data.decode())) == 3
    # A run key the project does not have filters nothing and is not kept in links.
    made_up = pages_client.get(f"/projects/{PAGES}/traces?run=nope").data.decode()
    assert len(requests_listed(made_up)) == 3 and "run=nope" not in made_up


@pytest.mark.parametrize("query", ["status=maybe", "sort=sideways", "page=-1", "page=x",
                                   "q=" + "a" * 201])
def test_bad_parameters_are_a_400(pages_client, query):
    assert pages_client.get(f"/projects/{PAGES}/traces?{query}").status_code == 400


def test_pages_hold_fifty_traces_with_links_between_them(pages_client, monkeypatch):
    monkeypatch.setattr(traces, "PAGE_SIZE", 2)
    first = pages_client.get(f"/projects/{PAGES}/traces").data.decode()
    assert len(requests_listed(first)) == 2 and "page 1 of 2" in first
    next_link = html.unescape(re.search(r'<a rel="next" href="([^"]+)"', first).group(1))
    second = pages_client.get(next_link).data.decode()
    assert requests_listed(second) == ["What is the weather in Paris?"]
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_trace_view_shows_conversation_with_paired_tool_results_and_the_span_tree(pages_client):
    listing = pages_client.get(f"/projects/{PAGES}/traces?status=error").data.decode()
    trace_id = trace_ids(listing)[0]
    response = pages_client.get(f"/projects/{PAGES}/trace", query_string={"id": trace_id})
    assert response.status_code == 200
    body = response.data.decode()
    assert_inert(body, "trace view")
    roles = re.findall(r'<li class="message" data-role="([^"]+)"', body)
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    call = re.search(r'<div class="tool-call" data-call="call_1">(.*?)</div>\s*</li>', body, re.S)
    assert call and "get_weather" in call.group(1)
    assert "&#34;city&#34;: &#34;Paris&#34;" in call.group(1)
    assert "&#34;temp_c&#34;: 21" in call.group(1)
    # The tree: root > plan > get_weather, root > answer; depths and kinds as logged.
    nodes = re.findall(r'<li class="span-node" data-kind="(\w+)" data-depth="(\d)">\s*'
                       r'<details class="span"[^>]*>\s*<summary class="span-head[^"]*">.*?'
                       r'<span class="span-name">(.*?)</span>', body, re.S)
    assert nodes == [("span", "0", "agent run"), ("generation", "1", "plan " + html.escape(HOSTILE)),
                     ("tool", "2", "get_weather"), ("generation", "1", "answer")]
    assert "gpt-test" in body and "timeout " + html.escape(HOSTILE) in body
    bars = re.findall(r'class="waterfall-bar( failed)?" style="margin-left: ([0-9.]+)%; '
                      r'width: ([0-9.]+)%"', body)
    assert bars[0] == ("", "0.000", "100.000")
    assert bars[2] == (" failed", "48.000", "20.000")


def test_an_unknown_trace_is_a_404_and_a_missing_id_a_400(pages_client):
    assert pages_client.get(f"/projects/{PAGES}/trace?id=nope").status_code == 404
    assert pages_client.get(f"/projects/{PAGES}/trace").status_code == 400


def test_poll_answers_204_until_a_trace_is_logged_then_the_new_list(pages_dir, tmp_path):
    # A copy: the other tests of this module share pages_dir and count its traces.
    live = tmp_path / "live"
    shutil.copytree(pages_dir, live)
    pages_dir = live
    client = client_for(live)
    page = client.get(f"/projects/{PAGES}/traces")
    url = poll_url(page.data)
    assert client.get(url).status_code == 204
    log_trace(pages_dir, "a brand new question " + HOSTILE)
    fresh = client.get(url)
    assert fresh.status_code == 200
    body = fresh.data.decode()
    assert 'id="trace-list" hx-swap-oob="true"' in body
    assert requests_listed(body)[0] == "a brand new question " + HOSTILE
    assert_inert(body, "traces refresh")
    assert client.get(poll_url(fresh.data)).status_code == 204


def logged_raw(data_dir, spans=(), messages=(), metadata=None) -> str:
    """One more trace in run "producer", written straight into trackio's traces table (as any
    client of the file could); its id."""
    conn = sqlite3.connect(data_dir / f"{PAGES}.db")
    with conn:
        run_id = conn.execute("SELECT run_id FROM traces WHERE run_name = 'producer'").fetchone()[0]
        conn.execute("INSERT INTO traces (id, run_id, timestamp, run_name, step, key, messages, "
                     "metadata, search_text, spans) VALUES ('raw', ?, '2026-01-01T00:00:00', "
                     "'producer', 7, 'agent', ?, ?, 'raw', ?)",
                     (run_id, json.dumps(list(messages)), json.dumps(metadata or {}),
                      json.dumps(list(spans))))
    conn.close()
    return "raw"


@pytest.fixture
def own_pages(pages_dir, tmp_path):
    """A copy of the pages project this test may write to."""
    copy = tmp_path / "own"
    shutil.copytree(pages_dir, copy)
    return copy


def test_a_chain_of_spans_deeper_than_python_recursion_is_shown_whole(own_pages):
    depth = 1500
    chain = [{"id": f"s{i}", "parent_id": f"s{i - 1}" if i else None, "name": f"step-{i}"}
             for i in range(depth)]
    trace_id = logged_raw(own_pages, chain, [{"role": "user", "content": "deep"}])
    response = client_for(own_pages).get(f"/projects/{PAGES}/trace", query_string={"id": trace_id})
    assert response.status_code == 200
    body = response.data.decode()
    names = re.findall(r'<span class="span-name">step-(\d+)</span>', body)
    assert names == [str(i) for i in range(depth)]
    assert re.findall(r'data-depth="(\d+)"', body)[-1] == str(depth - 1)


def test_a_huge_trace_shows_a_bounded_page_that_says_what_it_left_out(own_pages):
    field = "x" * traces.MAX_VALUE_CHARS
    spans = [{"id": f"s{i}", "name": f"span-{i}", "input": field, "output": field,
              "metadata": field, "error": field} for i in range(400)]
    messages = [{"role": "assistant", "content": field, "tool_calls": [
        {"id": f"c{i}-{j}", "function": {"name": "f", "arguments": field}} for j in range(40)]}
        for i in range(20)]
    trace_id = logged_raw(own_pages, spans, messages, {f"k{i}": field for i in range(100)})
    response = client_for(own_pages).get(f"/projects/{PAGES}/trace", query_string={"id": trace_id})
    assert response.status_code == 200
    body = response.data.decode()
    # 48 MB of logged text; the page stays a few MB and every span is still listed.
    assert len(body) < 5_000_000
    assert len(re.findall(r'<span class="span-name">span-\d+</span>', body)) == 400
    assert "more characters" in body


def test_a_page_past_the_end_shows_the_last_page(pages_client, monkeypatch):
    """A stale or made-up page number shows the last page (and mints no page of its own)."""
    monkeypatch.setattr(traces, "PAGE_SIZE", 2)
    body = pages_client.get(f"/projects/{PAGES}/traces?page=999").data.decode()
    assert requests_listed(body) == ["What is the weather in Paris?"]
    assert "page 2 of 2" in body and "page=999" not in body
    assert body == pages_client.get(f"/projects/{PAGES}/traces?page=1").data.decode()
