"""The Files page: what trackio.save() put in the project, downloads, text previews, live."""

from __future__ import annotations

import html
import re

from helpers import assert_inert, poll_url
from trackio_pages_zoo import PAGES
from trackio_zoo import HOSTILE


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
