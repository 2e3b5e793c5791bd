"""The Artifacts page on an artifact trackio's client logged in two versions with an alias and
used by another run: versions, aliases, files, producer, consumer, the lineage SVG; registries."""

from __future__ import annotations

import html
import json
import re
import shutil
import sqlite3

import pytest
from helpers import assert_inert, poll_url
from trackio_pages_zoo import MODEL, PAGES
from trackio_zoo import HOSTILE, run_trackio

from trackio_flask import artifacts, create_app, lineage


def test_the_tree_lists_versions_with_aliases_sizes_and_file_counts(pages_client):
    body = pages_client.get(f"/projects/{PAGES}/artifacts").data.decode()
    versions = re.findall(r'<li><a (?:class="active" aria-current="page" )?href="[^"]*">v(\d+)</a>'
                          r'(.*?)</li>', body, re.S)
    assert [(number, re.findall(r'alias-pill">(\w+)<', rest),
             re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", rest)).strip())
            for number, rest in versions] == [
        ("1", ["best", "latest"], "bestlatest 645 B · 2 files"),
        ("0", [], "200 B · 1 file")]
    assert_inert(body, "artifacts page")


def test_a_version_shows_files_with_blob_links_producer_consumer_and_metadata(pages_client):
    body = pages_client.get(f"/projects/{PAGES}/artifacts?name={MODEL}&version=v1").data.decode()
    files = re.findall(r'<tr class="manifest-file">\s*<td><a href="([^"]+)" download="([^"]+)">',
                       body)
    assert [name for _, name in files] == ["docs/notes.txt", "weights.bin"]
    with pages_client.get(html.unescape(files[1][0])) as blob:
        assert blob.status_code == 200 and blob.data == b"v2" * 300
    producer = re.search(r'<dd class="producer">(.*?)</dd>', body, re.S).group(1)
    consumers = re.search(r'<dd class="consumers">(.*?)</dd>', body, re.S).group(1)
    assert ">producer</a>" in producer
    assert html.escape("consumer " + HOSTILE) in consumers
    assert f'trackio.use_artifact("{MODEL}:v1")' in body
    # v0 was used by nobody; trackio's selected_artifact/selected_version parameters work.
    older = pages_client.get(f"/projects/{PAGES}/artifacts?selected_artifact={MODEL}"
                       "&selected_version=v0").data.decode()
    assert "no run used this version yet" in older
    assert html.escape("weights " + HOSTILE) in older


def test_lineage_svg_links_runs_and_versions_and_marks_the_shown_version(pages_client):
    body = pages_client.get(f"/projects/{PAGES}/artifacts?name={MODEL}&version=1").data.decode()
    svg = re.search(r'<svg class="lineage-svg".*?</svg>', body, re.S).group(0)
    nodes = re.findall(r'<a class="lineage-node lineage-(\w+)( focus)?" href="([^"]+)" '
                       r'data-node="([^"]+)">', svg)
    kinds = sorted((kind, bool(focus)) for kind, focus, _, _ in nodes)
    assert kinds == [("artifact", False), ("artifact", True), ("run", False), ("run", False)]
    hrefs = {html.unescape(href) for _, _, href, _ in nodes}
    assert f"/projects/{PAGES}/artifacts?name={MODEL}&version=0" in hrefs
    assert any(href.startswith(f"/projects/{PAGES}/runs/") for href in hrefs)
    assert len(re.findall(r'<path class="lineage-edge', svg)) == 3
    assert "<img" not in svg  # the consumer's hostile name is text


@pytest.mark.parametrize("query,status", [("name=nope", 404), (f"name={MODEL}&version=7", 404),
                                          (f"name={MODEL}&version=x1", 400)])
def test_unknown_artifacts_and_versions(pages_client, query, status):
    assert pages_client.get(f"/projects/{PAGES}/artifacts?{query}").status_code == status


def test_a_project_without_artifacts_explains_how_to_log_one(pages_client, pages_dir):
    run_trackio(pages_dir, "import trackio\ntrackio.init(project='bare', name='r')\n"
                           "trackio.log({'x': 1})\ntrackio.finish()\n")
    body = pages_client.get("/projects/bare/artifacts").data.decode()
    assert "No artifacts in this project" in body and "trackio.log_artifact" in body


def test_poll_is_204_until_a_run_uses_a_version_then_redraws(pages_dir, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(pages_dir, live)
    client = create_app({"DATA_DIR": live, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                         "TICK_S": 0}).test_client()
    url = poll_url(client.get(f"/projects/{PAGES}/artifacts?name={MODEL}&version=0").data)
    assert client.get(url).status_code == 204
    run_trackio(live, f"import trackio\ntrackio.init(project={PAGES!r}, name='late')\n"
                      f"trackio.use_artifact('{MODEL}:v0')\ntrackio.finish()\n")
    answer = client.get(url)
    assert answer.status_code == 200
    assert re.search(r'<div id="artifacts-content"[^>]*hx-swap-oob="true"', answer.data.decode())
    assert ">late</a>" in answer.data.decode()


def test_registry_pages_show_local_registries_read_only(pages_client, pages_dir):
    path = pages_dir / "registry-zoo.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE project_metadata (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO project_metadata VALUES ('registry_created_at', '2026-01-01T00:00:00Z'),
                                            ('registry_description', 'models <b>x</b>');
        CREATE TABLE collections (id INTEGER PRIMARY KEY, name TEXT, type TEXT,
                                  description TEXT, created_at TEXT);
        INSERT INTO collections VALUES (1, 'prod', 'model', NULL, '2026-01-01');
        CREATE TABLE collection_links (id INTEGER PRIMARY KEY, collection_id INT,
            collection_version INT, source_project TEXT, source_artifact TEXT,
            source_version INT, source_space_id TEXT, source_bucket_id TEXT,
            source_server_base_url TEXT, created_at TEXT);
        INSERT INTO collection_links VALUES (1, 1, 0, 'pages', 'my-model', 1, NULL, NULL, NULL,
                                             '2026-01-02');
        CREATE TABLE collection_aliases (alias TEXT, link_id INT);
        INSERT INTO collection_aliases VALUES ('production', 1);
        CREATE TABLE registry_events (id INTEGER PRIMARY KEY, event_uid TEXT, ts TEXT,
                                      kind TEXT, payload TEXT);
    """)
    conn.commit()
    conn.close()
    listing = pages_client.get("/registry").data.decode()
    assert '<a href="/registry/zoo">zoo</a>' in listing and "models &lt;b&gt;x&lt;/b&gt;" in listing
    detail = pages_client.get("/registry/zoo").data.decode()
    assert "production" in detail
    assert f'href="/projects/pages/artifacts?name={MODEL}&amp;version=1"' in detail
    assert pages_client.get("/registry/none").status_code == 404
    assert pages_client.get("/registry/..%2Fx").status_code in (400, 404)


def test_layout_puts_producers_left_of_versions_and_consumers_right():
    nodes = [{"id": "run:p", "kind": "run"}, {"id": "art:1", "kind": "artifact"},
             {"id": "art:2", "kind": "artifact"}, {"id": "run:c", "kind": "run"}]
    edges = [{"source": "run:p", "target": "art:1", "direction": "output"},
             {"source": "run:p", "target": "art:2", "direction": "output"},
             {"source": "art:2", "target": "run:c", "direction": "input"},
             # c also produced what it used: one edge, drawn both ways
             {"source": "run:c", "target": "art:2", "direction": "output"}]
    placed = lineage.layout(nodes, edges)
    x = {p.id: p.x for p in placed.nodes}
    assert x["run:p"] < x["art:1"] == x["art:2"]
    assert len(placed.links) == 3
    both = [link for link in placed.links if link.both_ways]
    assert [(link.source, link.target) for link in both] == [("run:c", "art:2")]
    assert placed.width > 0 and placed.height > 0


def test_layout_survives_a_cycle_of_runs_and_versions():
    nodes = [{"id": n, "kind": "run"} for n in ("a", "b", "c")]
    edges = [{"source": "a", "target": "b"}, {"source": "b", "target": "c"},
             {"source": "c", "target": "a"}]
    placed = lineage.layout(nodes, edges)
    assert len({p.x for p in placed.nodes}) == 3 and len(placed.links) == 3


def client_for(data_dir):
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                       "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"}).test_client()


@pytest.fixture
def own_pages(pages_dir, tmp_path):
    """A copy of the pages project this test may write to."""
    copy = tmp_path / "own"
    shutil.copytree(pages_dir, copy)
    return copy


# Rows trackio never writes but its schema takes (SQLite columns hold any type), from any client
# of the file: each leaves the rest of the page readable.
ODD_ROWS = {
    "version as text": "UPDATE artifact_versions SET version = 'x' WHERE version = 0",
    "size as text": "UPDATE artifact_versions SET size_bytes = 'big' WHERE version = 1",
    "manifest not JSON": "UPDATE artifact_versions SET manifest = 'not json' WHERE version = 1",
    "manifest an object": "UPDATE artifact_versions SET manifest = '{\"a\": 1}' WHERE version = 1",
    "manifest of odd entries": "UPDATE artifact_versions SET manifest = '[1, \"x\", {\"path\": 5, "
                               "\"size\": \"big\", \"digest\": 7}, null]' WHERE version = 1",
    "alias on a text id": "UPDATE artifact_aliases SET artifact_version_id = 'x'",
    "link to a text id": "UPDATE run_artifact_links SET artifact_version_id = 'x' "
                         "WHERE direction = 'input'",
    "run name as bytes": "UPDATE run_artifact_links SET run_id = 5, run_name = x'00ff' "
                         "WHERE direction = 'output' AND id = (SELECT MIN(id) FROM "
                         "run_artifact_links)",
    "times as numbers": "UPDATE run_artifact_links SET created_at = 5 WHERE direction = 'input'",
}


@pytest.mark.parametrize("sql", ODD_ROWS.values(), ids=ODD_ROWS.keys())
def test_odd_rows_leave_the_artifacts_pages_readable(own_pages, sql):
    conn = sqlite3.connect(own_pages / f"{PAGES}.db")
    with conn:
        conn.execute(sql)
    conn.close()
    client = client_for(own_pages)
    for query in ("", f"?name={MODEL}&version=1", f"?name={MODEL}&version=0"):
        response = client.get(f"/projects/{PAGES}/artifacts{query}")
        assert response.status_code in (200, 404), (query, response.status_code)
    body = client.get(f"/projects/{PAGES}/artifacts").data.decode()
    assert MODEL in body
    assert client.get(f"/projects/{PAGES}/runs").status_code == 200


def add_version(data_dir, manifest, artifact=MODEL, number=None, consumers=0):
    """One more version of `artifact` written straight into trackio's tables; its number."""
    conn = sqlite3.connect(data_dir / f"{PAGES}.db")
    with conn:
        artifact_id = conn.execute("SELECT id FROM artifacts WHERE name = ?", (artifact,)).fetchone()
        if artifact_id is None:
            artifact_id = (conn.execute("INSERT INTO artifacts (name, type, created_at) VALUES "
                                        "(?, 'model', '2026')", (artifact,)).lastrowid,)
        if number is None:
            number = conn.execute("SELECT COALESCE(MAX(version) + 1, 0) FROM artifact_versions "
                                  "WHERE artifact_id = ?", artifact_id).fetchone()[0]
        version_id = conn.execute(
            "INSERT INTO artifact_versions (artifact_id, version, manifest_digest, manifest, "
            "size_bytes, created_at) VALUES (?, ?, ?, ?, 1, '2026')",
            (artifact_id[0], number, f"digest-{artifact}-{number}", json.dumps(manifest))).lastrowid
        conn.executemany("INSERT INTO run_artifact_links (run_id, run_name, artifact_version_id, "
                         "direction, created_at) VALUES (?, ?, ?, 'input', '2026')",
                         [(f"id-{i}", f"user-{i}", version_id) for i in range(consumers)])
    conn.close()
    return number


def manifest_paths(body: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(
        r'<tr class="manifest-file">\s*<td>(.*?)</td>', body, re.S)]


def test_a_version_with_many_files_lists_them_a_page_at_a_time(own_pages):
    count = 1_050
    number = add_version(own_pages, [{"path": f"f/{i:05d}.bin", "digest": f"{i:064x}", "size": i}
                                     for i in range(count)])
    client = client_for(own_pages)
    url = f"/projects/{PAGES}/artifacts?name={MODEL}&version={number}"
    body = client.get(url).data.decode()
    seen = manifest_paths(body)
    assert 0 < len(seen) < count and f"{count:,} files" in body
    while (link := re.search(r'<a rel="next" href="([^"]+)"', body)) is not None:
        body = client.get(html.unescape(link.group(1))).data.decode()
        seen += manifest_paths(body)
    assert seen == [f"f/{i:05d}.bin" for i in range(count)]
    # A page past the end is the last page.
    assert manifest_paths(client.get(url + "&files=99999").data.decode()) == manifest_paths(body)


def test_many_versions_and_consumers_keep_the_page_short(own_pages):
    for _ in range(300):
        add_version(own_pages, [{"path": "w.bin", "digest": "0" * 64, "size": 1}])
    number = add_version(own_pages, [{"path": "w.bin", "digest": "1" * 64, "size": 1}],
                         consumers=2_000)
    client = client_for(own_pages)
    body = client.get(f"/projects/{PAGES}/artifacts?name={MODEL}&version={number}").data.decode()
    tree = re.search(r'<nav class="artifact-tree"(.*?)</nav>', body, re.S).group(1)
    listed = re.findall(r'>v(\d+)</a>', tree)
    assert str(number) in listed and len(listed) <= 20
    # Any version is one form away.
    form = re.search(r'<form class="version-jump[^"]*"[^>]*>(.*?)</form>', tree, re.S).group(1)
    assert 'name="version"' in form and f'value="{MODEL}"' in form
    consumers = re.search(r'<dd class="consumers">(.*?)</dd>', body, re.S).group(1)
    assert len(re.findall(r'class="run-ref"', consumers)) <= 100
    assert "1,900 more" in consumers
    old = client.get(f"/projects/{PAGES}/artifacts?name={MODEL}&version=5").data.decode()
    assert 'aria-current="page" href="' in old and ">v5</a>" in old


def test_lineage_of_a_widely_used_version_reads_the_metrics_table_once(own_pages):
    """Trackio folds link rows onto runs by the metrics table, which has no index on run names:
    each extra pass over it is a full scan, so a version 900 runs used costs one pass."""
    number = add_version(own_pages, [{"path": "w.bin", "digest": "2" * 64, "size": 1}],
                         consumers=900)
    conn = sqlite3.connect(own_pages / f"{PAGES}.db")
    (version_id,) = conn.execute("SELECT av.id FROM artifact_versions av JOIN artifacts a ON "
                                 "a.id = av.artifact_id WHERE a.name = ? AND version = ?",
                                 (MODEL, number)).fetchone()
    statements = []
    conn.set_trace_callback(statements.append)
    graph = artifacts.lineage(conn, PAGES, version_id)
    conn.close()
    assert len([n for n in graph["nodes"] if n["kind"] == "run"]) == 900
    scans = [sql for sql in statements if re.search(r"\bFROM metrics\b", sql)]
    assert len(scans) == 1, scans


def test_a_long_registry_shows_its_newest_links_and_events(own_pages):
    from trackio.registry_storage import RegistryStorage

    conn = sqlite3.connect(own_pages / "registry-busy.db")
    with conn:
        RegistryStorage._create_registry_tables_cursor(conn)
        conn.execute("INSERT INTO project_metadata VALUES ('registry_created_at', '2026')")
        conn.execute("INSERT INTO collections (name, type, created_at) VALUES ('prod', 'model', "
                     "'2026')")
        conn.executemany("INSERT INTO collection_links (collection_id, collection_version, "
                         "source_project, source_artifact, source_version, created_at) VALUES "
                         "(1, ?, 'pages', ?, 0, '2026')", [(i, f"a{i}") for i in range(700)])
        conn.executemany("INSERT INTO registry_events (event_uid, ts, kind, payload) VALUES "
                         "(?, ?, 'link', '{}')", [(f"u{i}", f"t{i:04d}") for i in range(1_500)])
    conn.close()
    body = client_for(own_pages).get("/registry/busy").data.decode()
    links = re.findall(r"<tr><td>v(\d+)</td>", body)
    assert 0 < len(links) < 700 and links[0] == "699"
    assert "700 versions" in body
    events = re.findall(r'<tr><td class="nowrap">t(\d+)</td>', body)
    assert 0 < len(events) < 1_500 and events[0] == "1499"
    assert "1,500 events" in body
