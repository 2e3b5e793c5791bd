"""The Files page: what trackio.save() put in the project, downloads, text previews, live."""

from __future__ import annotations

import html
import re
import shutil

import pytest
from helpers import assert_inert, poll_url
from trackio_pages_zoo import PAGES
from trackio_zoo import HOSTILE

from trackio_flask import create_app
from trackio_flask.views import files as files_view


def client_for(data_dir):
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                       "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"}).test_client()


def test_saved_files_are_listed_with_size_download_and_a_text_preview(pages_client):
    body = pages_client.get(f"/projects/{PAGES}/files").data.decode()
    assert re.findall(r'data-file="([^"]+)"', body) == ["notes.txt"]
    download = html.unescape(re.search(r'class="file-download" href="([^"]+)"', body).group(1))
    with pages_client.get(download) as served:
        assert served.data.decode() == "hello from notes " + HOSTILE
        assert "sandbox" in served.headers["Content-Security-Policy"]
    preview_url = html.unescape(re.search(r'hx-get="([^"]+files/preview[^"]+)"', body).group(1))
    preview = pages_client.get(preview_url).data.decode()
    assert html.escape("hello from notes " + HOSTILE) in preview
    assert_inert(preview, "file preview")


def test_previews_only_of_listed_text_files(pages_client):
    assert pages_client.get(f"/projects/{PAGES}/files/preview?name=../pages.db").status_code == 404
    assert pages_client.get(f"/projects/{PAGES}/files/preview").status_code == 400


def test_a_file_saved_later_reaches_the_poll_without_any_database_write(pages_client, pages_dir):
    url = poll_url(pages_client.get(f"/projects/{PAGES}/files").data)
    assert pages_client.get(url).status_code == 204
    extra = pages_dir / "media" / PAGES / "files" / "later.yaml"
    try:
        extra.write_text("lr: 0.1\n")
        answer = pages_client.get(url)
        assert answer.status_code == 200
        assert 'data-file="later.yaml"' in answer.data.decode()
    finally:
        extra.unlink()


def test_an_unknown_project_is_a_404(pages_client):
    assert pages_client.get("/projects/nope/files").status_code == 404


@pytest.fixture
def many_files(pages_dir, tmp_path):
    """A copy of the pages project with 450 more saved files."""
    copy = tmp_path / "own"
    shutil.copytree(pages_dir, copy)
    for i in range(450):
        (copy / "media" / PAGES / "files" / f"f{i:03d}.txt").write_text("x")
    return copy


def listed(body: str) -> list[str]:
    return [html.unescape(name) for name in re.findall(r'data-file="([^"]+)"', body)]


def test_many_files_are_listed_a_page_at_a_time(many_files):
    client = client_for(many_files)
    body = client.get(f"/projects/{PAGES}/files").data.decode()
    seen = listed(body)
    assert 0 < len(seen) < 451 and "451 files" in body
    while (link := re.search(r'<a rel="next" href="([^"]+)"', body)) is not None:
        body = client.get(html.unescape(link.group(1))).data.decode()
        seen += listed(body)
    assert seen == sorted([f"f{i:03d}.txt" for i in range(450)] + ["notes.txt"])
    last = client.get(f"/projects/{PAGES}/files?page=999").data.decode()
    assert listed(last) == listed(body)


def test_a_poll_with_a_made_up_fingerprint_costs_no_render(many_files, monkeypatch):
    """Polls that carry fingerprints the server never gave share one rendered list."""
    renders = []
    real = files_view.render_template
    monkeypatch.setattr(files_view, "render_template",
                        lambda *args, **kwargs: renders.append(args[0]) or real(*args, **kwargs))
    client = client_for(many_files)
    url = poll_url(client.get(f"/projects/{PAGES}/files").data)
    for made_up in ("x", "y", "z"):
        answer = client.get(re.sub(r"\bf=[^&]*", f"f={made_up}", url))
        assert answer.status_code == 200 and "f000.txt" in answer.data.decode()
    assert renders.count("_partials/_files_refresh.html") == 1
