"""A page on another origin cannot write with the dashboard's write cookie (issue 18, D6)."""

from __future__ import annotations

import http.server
import sqlite3
import threading

import pytest
from builders import ProjectDB
from servers import free_port

from .waiting import wait_until

TOKEN = "cookie-secret"
ATTACK = """<!doctype html><title>attacker</title><script>
fetch("%(victim)s/api/delete_run", {method: "POST", mode: "no-cors", credentials: "include",
      headers: {"Content-Type": "text/plain"},
      body: JSON.stringify({project: "p", run: "alpha"})})
  .finally(() => { document.title = "sent"; });
</script>"""


@pytest.fixture
def attacker_site():
    """Serve one page from another port of the same host (same site, another origin)."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield pages, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def runs_in(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute("SELECT DISTINCT run_name FROM metrics")}
    finally:
        conn.close()


def test_a_cross_origin_page_cannot_delete_runs_with_the_write_cookie(
        tmp_path, start_server, page, attacker_site):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = ProjectDB(data_dir / "p.db")
    for run in ("alpha", "beta"):
        db.log_many(run, range(3), lambda s: {"loss": float(s)})
    db.close()
    server = start_server(data_dir, TRACKIO_WRITE_TOKEN=TOKEN)
    page.goto(f"{server.url}/projects/p?write_token={TOKEN}")  # the cookie the dashboard keeps
    assert any(c["name"] == "trackio_write_token" for c in page.context.cookies())

    pages, origin = attacker_site
    pages["/attack.html"] = (ATTACK % {"victim": server.url}).encode()
    page.goto(f"{origin}/attack.html")
    wait_until(page, lambda: page.title() == "sent", "the attacker's request to finish")
    wait_until(page, lambda: server.count(r"POST /api/delete_run") >= 1,
               "the attacker's request in the access log")
    assert server.requests(r"POST /api/delete_run")[-1].status == 403
    assert runs_in(data_dir / "p.db") == {"alpha", "beta"}

    # The same cookie still works from the dashboard's own origin with a JSON body.
    page.goto(f"{server.url}/projects/p")
    status = page.evaluate("""() => fetch("/api/delete_run", {method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({project: "p", run: "beta"})}).then(r => r.status)""")
    assert status == 200
    assert runs_in(data_dir / "p.db") == {"alpha"}
