"""3D objects and traces on the Media & Tables page, as trackio's client logged them."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import pytest
from helpers import assert_inert
from trackio_pages_zoo import PAGES
from trackio_zoo import HOSTILE


def test_each_3d_object_gets_a_viewer_that_loads_only_on_demand(pages_client):
    response = pages_client.get(f"/projects/{PAGES}/media")
    body = response.data.decode()
    hosts = re.findall(r'<div class="object3d" data-object3d data-src="([^"]+)" '
                       r'data-format="(\w+)" data-viewer="([^"]+)"', body)
    assert sorted({fmt for _, fmt, _ in hosts}) == ["glb", "obj", "stl"]
    # three.js is not on the page: the viewer module is imported when a card is opened.
    assert "three" not in "".join(re.findall(r'<script [^>]*src="([^"]+)"', body))
    viewer = html.unescape(hosts[0][2])
    assert viewer.startswith("/static/object3d.js?v=")
    with pages_client.get(viewer) as module:
        assert b"vendor/three-0.187.0/build/three.module.js" in module.data
    src = html.unescape(next(src for src, fmt, _ in hosts if fmt == "glb"))
    with pages_client.get(src) as glb:
        assert glb.status_code == 200 and glb.data[:4] == b"glTF"
    assert html.escape("tri " + HOSTILE) in body
    assert_inert(body, "media page with 3D objects")
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]


def test_traces_logged_by_the_selected_runs_link_to_the_trace_view(pages_client):
    body = pages_client.get(f"/projects/{PAGES}/media").data.decode()
    keys = re.findall(r'<section class="media-key media-trace-key" data-key="([^"]+)">', body)
    assert keys == ["agent", "chat"]
    agent = re.search(r'data-key="agent">(.*?)</section>', body, re.S).group(1)
    links = [html.unescape(href) for href in re.findall(r'<li><a href="([^"]+)"', agent)]
    assert len(links) == 2 and all(link.startswith(f"/projects/{PAGES}/trace?id=") for link in links)
    assert pages_client.get(links[0]).status_code == 200
    assert "2 traces" in agent


STATIC = Path(__file__).resolve().parent.parent / "static"
IMPORT = re.compile(r"""(?:^|[;\s])(?:import|export)\s[^'"]*?\sfrom\s*["']([^"']+)["']|"""
                    r"""(?:^|[;\s])import\s*["']([^"']+)["']""", re.M)


def _module_graph(entry: Path) -> set[Path]:
    """Every file reachable from `entry` by static relative imports."""
    seen, todo = set(), [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            continue
        for match in IMPORT.finditer(path.read_text(encoding="utf-8")):
            target = match.group(1) or match.group(2)
            if target.startswith("."):
                todo.append((path.parent / target).resolve())
    return seen


def test_every_module_the_3d_viewer_imports_is_shipped(pages_client):
    """A fresh clone (and the wheel) has every file object3d.js imports: none is missing, and
    none is left out of git by an ignore rule (three.js keeps its code in a `build/` folder)."""
    graph = _module_graph(STATIC / "object3d.js")
    assert len(graph) > 5
    missing = sorted(str(p.relative_to(STATIC)) for p in graph if not p.is_file())
    assert not missing, f"imported but not in static/: {missing}"
    for path in sorted(graph):
        served = pages_client.get("/static/" + str(path.relative_to(STATIC)))
        assert served.status_code == 200, path
        served.close()
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *map(str, graph)],
                             cwd=STATIC, capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert not ignored.stdout, f"git ignores files the viewer imports:\n{ignored.stdout}"
