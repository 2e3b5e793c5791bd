"""Every answer says how long the app spent on it (Server-Timing), the benchmarks' server time."""

from __future__ import annotations

import re


def test_pages_zooms_and_errors_carry_the_apps_own_time(client, project_db):
    for path, status in (("/projects/p", 200), ("/projects/p/series?xmin=5&xmax=20", 200),
                         ("/projects/nope", 404), ("/projects/p/series?xmin=x", 400)):
        response = client.get(path, headers={"Accept-Encoding": "br"})
        assert response.status_code == status, path
        timing = response.headers.get("Server-Timing", "")
        assert re.fullmatch(r"app;dur=\d+\.\d", timing), (path, timing)


def test_a_zoom_is_compressed_once_and_quickly_whoever_asks(client, project_db, monkeypatch):
    """A zoom's answer is compressed once per encoding (at the fast quality) and cached: the
    next viewer of that window costs a lookup, not another brotli pass over megabytes."""
    import brotli

    from trackio_flask import encoded
    calls = []
    real = encoded.compress
    monkeypatch.setattr(encoded, "compress",
                        lambda body, encoding, fast=False: calls.append((encoding, fast))
                        or real(body, encoding, fast))
    path = "/projects/p/series?xmin=5&xmax=40"
    first = client.get(path, headers={"Accept-Encoding": "br"})
    second = client.get(path, headers={"Accept-Encoding": "br"})
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    assert first.headers["Content-Encoding"] == "br" == second.headers["Content-Encoding"]
    assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
    assert brotli.decompress(first.data) == plain.data
    assert b'"panels"' in plain.data and b'"n":"alpha"' in plain.data
    assert calls.count(("br", True)) == 1
    again = client.get(path, headers={"Accept-Encoding": "br",
                                      "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
