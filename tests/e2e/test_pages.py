"""Traces, Artifacts, 3D objects and the embed handshake in real Chromium, on a project
trackio's own client logged (tests/trackio_pages_zoo.py)."""

from __future__ import annotations

import json
import shutil
from urllib.parse import quote

import pytest
from playwright.sync_api import expect
from servers import serving
from trackio_pages_zoo import MODEL, PAGES, log_trace
from trackio_zoo import HOSTILE

from .waiting import wait_until

pytestmark = pytest.mark.browser


def inert(page) -> None:
    """Hostile strings did nothing, and nothing broke the page's CSP."""
    assert page.dialogs == []
    assert page.locator("img[src='x']").count() == 0
    assert [m for m in page.console_messages
            if m.startswith(("error", "pageerror")) or "Content Security Policy" in m] == []


def open_failing_trace(page, server) -> None:
    page.goto(f"{server.url}/projects/{PAGES}/traces?status=error")
    page.locator(".trace-request a").first.click()
    expect(page.locator("#span-tree")).to_be_visible()


def test_span_tree_nests_collapses_and_shows_the_failed_tool_call(page, start_server, pages_dir):
    server = start_server(pages_dir)
    open_failing_trace(page, server)
    names = page.locator(".span-name")
    expect(names).to_have_text(["agent run", "plan " + HOSTILE, "get_weather", "answer"])
    tool = page.locator(".span-node[data-kind='tool']")
    expect(tool.locator(".span-error pre")).to_have_text("timeout " + HOSTILE)
    # Collapsing the root hides its body; nested spans stay in their own collapsible rows.
    plan = page.locator(".span-node[data-depth='1']").first
    plan_body = plan.locator(":scope > details > .span-body")
    expect(plan_body).to_be_visible()
    plan.locator(":scope > details > summary").click()
    expect(plan_body).to_be_hidden()
    # The waterfall: a failed tool's bar starts after the plan's and is drawn in red.
    bars = page.locator(".waterfall-bar")
    plan_left = bars.nth(1).bounding_box()["x"]
    tool_left = bars.nth(2).bounding_box()["x"]
    assert tool_left > plan_left
    assert "failed" in bars.nth(2).get_attribute("class")
    # The conversation pairs the tool call with its result.
    call = page.locator(".tool-call[data-call='call_1']")
    expect(call.locator(".tool-result")).to_contain_text('"temp_c": 21')
    inert(page)


def test_a_new_trace_appears_without_reload(page, start_server, pages_dir, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(pages_dir, live)
    server = start_server(live)
    page.goto(f"{server.url}/projects/{PAGES}/traces")
    expect(page.locator(".trace-request a")).to_have_count(3)
    polled = server.count(r"/traces/refresh")
    wait_until(page, lambda: server.count(r"/traces/refresh") > polled, "a first poll")
    log_trace(live, "brand new " + HOSTILE)
    expect(page.locator(".trace-request a").first).to_have_text("brand new " + HOSTILE)
    expect(page.locator(".trace-request a")).to_have_count(4)
    inert(page)


def test_lineage_graph_nodes_open_versions_and_runs(page, start_server, pages_dir):
    server = start_server(pages_dir)
    page.goto(f"{server.url}/projects/{PAGES}/artifacts?name={MODEL}&version=1")
    graph = page.locator("#lineage")
    expect(graph.locator(".lineage-node")).to_have_count(4)
    expect(graph.locator(".lineage-node.focus title")).to_have_text(f"{MODEL}:v1 (model · best, latest)")
    graph.locator(".lineage-artifact:not(.focus)").click()
    expect(page).to_have_url(f"{server.url}/projects/{PAGES}/artifacts?name={MODEL}&version=0")
    expect(page.locator(".artifact-title")).to_contain_text("v0")
    expect(page.locator("#lineage .lineage-node.focus title")).to_have_text(f"{MODEL}:v0 (model)")
    page.locator("#lineage .lineage-run").first.click()
    wait_until(page, lambda: "/runs/" in page.url, "the run page")
    expect(page.locator("h1, h2").first).to_contain_text("producer")
    inert(page)


def test_3d_viewer_loads_three_js_on_demand_and_draws_the_glb(page, start_server, pages_dir):
    server = start_server(pages_dir)
    scripts = []
    page.on("request", lambda request: scripts.append(request.url))
    page.goto(f"{server.url}/projects/{PAGES}/media")
    host = page.locator("[data-object3d][data-format='glb']").first
    expect(host).to_have_attribute("data-state", "idle")
    assert not [url for url in scripts if "three" in url], "three.js loaded before it was asked"
    host.locator(".object3d-load").click()
    expect(host).to_have_attribute("data-state", "ready")
    expect(host).to_have_attribute("data-vertices", "3")
    # The canvas shows the triangle: more than the background's one colour.
    colours = host.locator("canvas").evaluate("""canvas => {
        const copy = document.createElement('canvas');
        copy.width = canvas.width; copy.height = canvas.height;
        const ctx = copy.getContext('2d');
        ctx.drawImage(canvas, 0, 0);
        const data = ctx.getImageData(0, 0, copy.width, copy.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length; i += 4 * 7) seen.add(data[i] + ',' + data[i+1] + ',' + data[i+2]);
        return seen.size;
    }""")
    assert colours > 1
    assert [url for url in scripts if "three.module.js" in url]
    for fmt in ("obj", "stl"):
        other = page.locator(f"[data-object3d][data-format='{fmt}']").first
        other.locator(".object3d-load").click()
        expect(other).to_have_attribute("data-state", "ready")
    inert(page)


def test_an_embedding_page_on_another_origin_gets_the_view_state(page, start_server, pages_dir):
    server = start_server(pages_dir)
    view = f"{server.url}/projects/{PAGES}?smoothing=7&xmin=1&xmax=2&sidebar=hidden&navbar=hidden"
    embedder = f"""<!doctype html><html><body>
<iframe id="dash" src="{view}" style="width:1200px;height:800px"></iframe>
<script>
window.received = [];
window.addEventListener("message", (event) => {{
  window.received.push({{origin: event.origin, data: event.data}});
  if (event.data && event.data.type === "ready")
    document.getElementById("dash").contentWindow.postMessage(
      {{protocol: "trackio-view", type: "getState", id: "q1"}}, "*");
}});
</script></body></html>"""

    def embedding_site(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [embedder.encode()]

    # Another origin (its own port) on this machine, like a blog embedding the dashboard.
    with serving(embedding_site) as site:
        assert site != server.url
        page.goto(site + "/")
        answer = wait_until(page, lambda: page.evaluate(
            "() => window.received.find(m => m.data && m.data.type === 'state')"),
            "the state reply")
        ready = page.evaluate(
            "() => window.received.find(m => m.data && m.data.type === 'ready')")
    assert ready["data"] == {"protocol": "trackio-view", "version": 1, "type": "ready",
                             "capabilities": ["getState"]}
    assert answer["origin"] == server.url
    reply = answer["data"]
    assert (reply["protocol"], reply["version"], reply["id"]) == ("trackio-view", 1, "q1")
    state = reply["state"]
    assert (state["page"], state["project"], state["smoothing"], state["x_range"],
            state["x_axis"]) == ("metrics", PAGES, 7, [1, 2], "step")
    assert sorted(run["name"] for run in state["runs"]) == ["consumer " + HOSTILE, "producer"]
    assert {"train/loss", "eval/acc"} <= set(state["metrics"])
    assert state["view_url"] == view
    json.dumps(state)  # plain data, as trackio sends it


def test_a_saved_text_file_previews_when_opened(page, start_server, pages_dir):
    server = start_server(pages_dir)
    page.goto(f"{server.url}/projects/{PAGES}/files")
    item = page.locator(".file-item[data-file='notes.txt']")
    expect(item.locator(".file-text")).to_have_count(0)
    item.locator("summary .file-name").click()
    expect(item.locator(".file-text")).to_have_text("hello from notes " + HOSTILE)
    inert(page)


def test_settings_registry_and_a_hostile_trace_run_no_script(page, start_server, pages_dir,
                                                              tmp_path):
    """The pages not visited above, with hostile text in every field a client can fill."""
    import sqlite3

    from trackio.registry_storage import RegistryStorage

    data_dir = tmp_path / "hostile"
    shutil.copytree(pages_dir, data_dir)
    conn = sqlite3.connect(data_dir / f"{PAGES}.db")
    with conn:
        run_id = conn.execute("SELECT run_id FROM traces LIMIT 1").fetchone()[0]
        everything = [{"role": HOSTILE, "content": HOSTILE, "tool_call_id": HOSTILE,
                       "tool_calls": [{"id": HOSTILE, "function": {"name": HOSTILE,
                                                                   "arguments": HOSTILE}}]}]
        spans = [{"id": HOSTILE, "name": HOSTILE, "kind": HOSTILE, "model": HOSTILE,
                  "status": HOSTILE, "input": HOSTILE, "output": {HOSTILE: HOSTILE},
                  "error": HOSTILE, "start_time": HOSTILE}]
        conn.execute("INSERT INTO traces (id, run_id, timestamp, run_name, step, key, messages, "
                     "metadata, search_text, spans) VALUES (?, ?, '2026-01-01T00:00:00', ?, 1, "
                     "?, ?, ?, '', ?)", (HOSTILE, run_id, HOSTILE, HOSTILE,
                                         json.dumps(everything), json.dumps({HOSTILE: HOSTILE}),
                                         json.dumps(spans)))
    conn.close()
    registry = sqlite3.connect(data_dir / "registry-zoo.db")
    with registry:
        RegistryStorage._create_registry_tables_cursor(registry)
        registry.execute("INSERT INTO project_metadata VALUES ('registry_created_at', ?), "
                         "('registry_description', ?)", (HOSTILE, HOSTILE))
        registry.execute("INSERT INTO collections (name, type, description, created_at) VALUES "
                         "(?, ?, ?, ?)", (HOSTILE, HOSTILE, HOSTILE, HOSTILE))
        registry.execute("INSERT INTO collection_links (collection_id, collection_version, "
                         "source_project, source_artifact, source_version, "
                         "source_server_base_url, created_at) VALUES (1, 0, ?, ?, 0, ?, ?)",
                         (HOSTILE, HOSTILE, "javascript:alert(1)", HOSTILE))
        registry.execute("INSERT INTO registry_events (ts, kind, payload) VALUES (?, ?, ?)",
                         (HOSTILE, HOSTILE, json.dumps({HOSTILE: HOSTILE})))
    registry.close()
    server = start_server(data_dir, TRACKIO_WRITE_TOKEN="secret-token")
    page.goto(f"{server.url}/projects/{PAGES}/traces?q=" + quote(HOSTILE))
    page.goto(f"{server.url}/projects/{PAGES}/trace?id=" + quote(HOSTILE))
    expect(page.locator("#span-tree .span-name")).to_have_text(HOSTILE)
    page.locator("#span-tree summary").first.click()
    for path in ("/settings", f"/settings?project={PAGES}", "/registry", "/registry/zoo"):
        page.goto(server.url + path)
        expect(page.locator("main")).to_be_visible()
        assert "secret-token" not in page.content()
    expect(page.locator(".registry-page h2")).to_have_text("zoo")
    inert(page)
