"""The store build's notice in real Chromium (#20): as another worker builds the store, the
Metrics page's polls move its notice on with each committed part and empty it once the build
is done, without a reload."""

from __future__ import annotations

import pytest
from test_store_building import stepped_build  # noqa: F401  (the fixture: the builder, paused)

pytestmark = pytest.mark.browser

NOTICE_SAYS = """(text) => {
  const notice = document.getElementById("build-notice");
  return notice !== null && notice.textContent.includes(text);
}"""
NOTICE_EMPTY = """() => {
  const notice = document.getElementById("build-notice");
  return notice !== null && notice.textContent.trim() === "" && !notice.querySelector(".notice");
}"""


def test_the_build_notice_follows_the_build_and_goes_when_it_is_done(
        page, start_server, tmp_path, stepped_build):  # noqa: F811
    # The test process builds the store (worker A); the server's worker answers in parts.
    server = start_server(tmp_path, TRACKIO_FLASK_STORE_DIR=str(tmp_path / "store"))
    page.goto(f"{server.url}/projects/p")
    page.wait_for_function(NOTICE_SAYS, arg="11% of the rows are ready")
    assert page.get_attribute("#build-notice", "role") == "status"
    assert page.locator(".notices").count() == 0, "the notice is said once, in its place"
    assert stepped_build.next_part() == 200
    page.wait_for_function(NOTICE_SAYS, arg="22% of the rows are ready")
    stepped_build.finish()
    page.wait_for_function(NOTICE_EMPTY)
    page.wait_for_function("() => document.getElementById('run-list').textContent"
                           ".includes('gamma')")
    assert page.is_hidden("#build-notice"), "the emptied region takes no room on the page"
    assert [m for m in page.console_messages if m.startswith(("error", "pageerror"))] == []
