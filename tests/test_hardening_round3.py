"""Issue 18, what the second round left: D2 (get_logs_batch encodes each run once and stops at
the byte cap before building its answer), D11 (a big bulk_log body does not keep the worker's
memory) and D5 (slow sockets do not stop /version on the shipped server)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from builders import ProjectDB
from helpers import run_child

from trackio_flask import create_app, storage


def make_app(data_dir: Path, **config):
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "RATELIMIT_ENABLED": False,
                       **config})


@pytest.fixture
def long_run(data_dir):
    db = ProjectDB(data_dir / "long.db")
    db.log_many("r", range(3000), lambda s: {"loss": 1 / (s + 1), "acc": s / 3000})
    db.close()


@pytest.fixture
def wordy_run(data_dir):
    """3,000 rows of about 1 kB each: 3 MB of stored JSON in one run."""
    db = ProjectDB(data_dir / "wordy.db")
    db.log_many("r", range(3000), lambda s: {"loss": 1 / (s + 1), "note": "x" * 1000})
    db.close()


class Encoder:
    """Counts what orjson.dumps is asked to encode: bytes built and log rows walked
    (a row already encoded, an orjson.Fragment, is not walked again)."""

    def __init__(self) -> None:
        self.built = 0
        self.rows = 0
        self._dumps = orjson.dumps

    def __call__(self, value, *args, **kwargs):
        self.rows += self._count(value)
        body = self._dumps(value, *args, **kwargs)
        self.built += len(body)
        return body

    def _count(self, value) -> int:
        if isinstance(value, dict):
            own = 1 if "step" in value and "timestamp" in value else 0
            return own + sum(self._count(v) for v in value.values())
        if isinstance(value, list):
            return sum(self._count(v) for v in value)
        return 0


@pytest.fixture
def encoder(monkeypatch):
    counting = Encoder()
    monkeypatch.setattr(orjson, "dumps", counting)
    return counting


def batch(client, project: str, entries: int, max_points: int):
    return client.post("/api/get_logs_batch", json={
        "project": project, "runs": [{"run": "r"}] * entries, "max_points": max_points})


# D2 ------------------------------------------------------------------------------------------

def test_a_run_named_64_times_is_encoded_once(data_dir, long_run, encoder):
    client = make_app(data_dir).test_client()
    batch(client, "long", 1, 10)  # the project's first read catches its store up
    encoder.rows = 0
    response = batch(client, "long", 64, 10)
    assert response.status_code == 200
    logs = [item["logs"] for item in response.json["data"]]
    assert len(logs) == 64 and all(entry == logs[0] for entry in logs) and len(logs[0]) == 10
    assert logs[0][-1]["step"] == 2999
    assert encoder.rows == 10, "each entry's copy of the run was encoded again"


def test_an_answer_over_the_cap_is_refused_before_it_is_built(data_dir, long_run, encoder):
    client = make_app(data_dir, API_ANSWER_MAX_MB=1).test_client()
    batch(client, "long", 1, 10)
    encoder.built = 0
    response = batch(client, "long", 64, 3000)  # 64 × ~200 kB: 13 MB over a 1 MB cap
    assert response.status_code == 413 and "max_points" in response.json["error"]
    assert encoder.built < 2 * 2**20, f"{encoder.built:,} bytes built for a 413"


def test_a_single_run_past_the_cap_stops_being_read(data_dir, wordy_run, monkeypatch):
    fetched = [0]
    original = storage.read

    def counting_read(conn, sql, params=()):
        rows = original(conn, sql, params)
        fetched[0] += sum(len(v) for row in rows for v in row if isinstance(v, str | bytes))
        return rows

    monkeypatch.setattr(storage, "read", counting_read)
    client = make_app(data_dir, API_ANSWER_MAX_MB=1).test_client()
    response = batch(client, "wordy", 1, 3000)
    assert response.status_code == 413
    fetched[0] = 0
    assert batch(client, "wordy", 1, 3000).status_code == 413
    assert fetched[0] < 2 * 2**20, f"{fetched[0]:,} bytes read for a 1 MB cap"
    small = batch(client, "wordy", 2, 100)
    assert small.status_code == 200 and len(small.json["data"][1]["logs"]) == 100


# D11 -----------------------------------------------------------------------------------------

def big_batch(rows: int) -> list[dict]:
    """A bulk_log batch as trackio's client sends it: 12 metrics a row (about 400 B a row)."""
    return [{"project": "big", "run": "r", "run_id": "r1", "step": step, "log_id": f"id{step}",
             "timestamp": "2026-01-01T00:00:00+00:00",
             "metrics": {f"metric/{k}": step * 0.001 + k for k in range(12)}}
            for step in range(rows)]


def test_a_big_bulk_log_holds_little_more_than_its_parsed_body(data_dir):
    import tracemalloc

    from trackio_flask.ingest import Ingest

    logs = orjson.loads(orjson.dumps(big_batch(35_000)))  # 13 MB of JSON, parsed: ~50 MB
    ingest = Ingest(data_dir, "WAL", 5.0)
    tracemalloc.start()
    try:
        assert ingest.log(logs) == 35_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        ingest.close()
    # Each row's serialized payload held a 4 kB orjson buffer until the commit: 140 MB.
    assert peak < 48 * 2**20, f"storing the batch took {peak / 2**20:.0f} MB more"


def test_a_worker_gives_back_the_memory_of_a_big_body(data_dir):
    code = f"""
import orjson, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_hardening_round3 import big_batch
from trackio_flask import create_app

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

app = create_app({{"DATA_DIR": {str(data_dir)!r}, "RATELIMIT_ENABLED": False,
                   "WRITE_TOKEN": "tok"}})
client = app.test_client()
body = orjson.dumps({{"logs": big_batch(35_000)}})
small = orjson.dumps({{"logs": big_batch(10)}})
headers = {{"Content-Type": "application/json", "X-Trackio-Write-Token": "tok"}}
client.post("/api/bulk_log", data=small, headers=headers)  # warm: imports, the writer
before = rss()
answer = client.post("/api/bulk_log", data=body, headers=headers)
answer.close()
del body
print(answer.status_code, (rss() - before) / 2**20)
"""
    status, kept = run_child(code, 120, "a 13 MB bulk_log").split()
    assert status == "200"
    # It kept ~170 MB (glibc holds what a request freed in its arena), now ~15 MB.
    assert float(kept) < 80, f"the worker kept {float(kept):.0f} MB after the request"


# D5 ------------------------------------------------------------------------------------------

class Trickler:
    """A slow client: headers that never end, or a 1 MB body, one byte every 0.2 s."""

    def __init__(self, port: int, body: bool) -> None:
        import socket
        import threading

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sent = threading.Event()
        self.stop = threading.Event()
        if body:
            self.sock.sendall(b"POST /api/bulk_log HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              b"application/json\r\nContent-Length: 1048576\r\n\r\n")
            stream = iter(lambda: b" ", None)
        else:
            self.sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n")
            stream = (bytes([c]) for _ in iter(int, 1) for c in b"X-Slow: yes\r\n")
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream) -> None:
        for byte in stream:
            try:
                self.sock.sendall(byte)
            except OSError:
                return
            self.sent.set()
            if self.stop.wait(0.2):
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def start_image_server(tmp_path: Path):
    """The Dockerfile's CMD with its ENV (bench.crowd reads them), on a free port."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from servers import free_port

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from bench.crowd import dockerfile_command

    command, image_env = dockerfile_command()
    port = free_port()
    env = {**os.environ, **image_env, "PORT": str(port), "HOME": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "TRACKIO_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=2)
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the image's CMD did not start")


@pytest.mark.deploy
def test_sixteen_trickling_sockets_do_not_stop_version_on_the_image_server(tmp_path):
    import urllib.request

    proc, port = start_image_server(tmp_path)
    slow: list[Trickler] = []
    try:
        slow = [Trickler(port, body=index % 2 == 1) for index in range(16)]
        for client in slow:
            assert client.sent.wait(30), "a slow client could not send"
        for _ in range(5):
            # A generous timeout: under gthread every thread waited on a slow client and
            # /version did not answer at all while they trickled.
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=30) as r:
                assert r.status == 200 and orjson.loads(r.read())["api_version"] == 1
        assert all(not client.stop.is_set() and client.thread.is_alive() for client in slow), \
            "the slow clients were still sending while /version answered"
    finally:
        for client in slow:
            client.close()
        proc.terminate()
        proc.wait(timeout=15)


class FakeHeaders(dict):
    def items(self):
        return list(super().items())


class FakeScope:
    """What granian hands an RSGI app for one HTTP request."""

    def __init__(self, method: str, path: str, query: str = "", headers: dict | None = None):
        self.proto, self.http_version, self.scheme = "http", "1.1", "http"
        self.server, self.client = "127.0.0.1:7860", "203.0.113.9:5000"
        self.method, self.path, self.query_string = method, path, query
        self.headers = FakeHeaders(headers or {})
        self.authority = None


class FakeProto:
    """A connection whose body arrives in `chunks`; records the answer."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.answer = chunks, None

    def __aiter__(self):
        async def body():
            for chunk in self.chunks:
                yield chunk
        return body()

    def response_bytes(self, status, headers, body):
        self.answer = (status, dict(headers), body)

    def response_file(self, status, headers, path):
        self.answer = (status, dict(headers), Path(path).read_bytes())

    def response_stream(self, status, headers):
        proto = self
        proto.answer = (status, dict(headers), b"")

        class Transport:
            async def send_bytes(self, data):
                status, headers, body = proto.answer
                proto.answer = (status, headers, body + data)
        return Transport()


def serve(server, scope, chunks=()):
    import asyncio

    proto = FakeProto(list(chunks))
    asyncio.run(server.__rsgi__(scope, proto))
    return proto.answer


def test_the_image_adapter_hands_the_app_only_whole_bodies(data_dir):
    from trackio_flask.rsgi import BufferedServer

    app = make_app(data_dir, WRITE_TOKEN="tok")
    server = BufferedServer(app, threads=2, max_body=2**20, buffer_budget=4 * 2**20)
    entry = orjson.dumps({"logs": [{"project": "p", "run": "r", "metrics": {"x": 1},
                                    "step": 0}]})
    headers = {"content-type": "application/json", "x-trackio-write-token": "tok"}
    cut = serve(server, FakeScope("POST", "/api/bulk_log", headers={
        **headers, "content-length": str(len(entry) + 10)}), [entry])
    assert cut[0] == 400 and not (data_dir / "p.db").exists(), "a cut body reached the app"
    whole = serve(server, FakeScope("POST", "/api/bulk_log", headers={
        **headers, "content-length": str(len(entry))}), [entry[:9], entry[9:]])
    assert whole[0] == 200 and (data_dir / "p.db").exists()
    too_big = serve(server, FakeScope("POST", "/api/bulk_log", headers={
        **headers, "transfer-encoding": "chunked"}), [b" " * 2**19] * 3)
    assert too_big[0] == 413
    assert server.buffered == 0, "refused bodies stay counted"


def test_the_image_adapter_refuses_bodies_past_its_buffer_budget(data_dir):
    from trackio_flask.rsgi import BufferedServer

    server = BufferedServer(make_app(data_dir), threads=2, max_body=2**20, buffer_budget=2**10)
    server.buffered = 2**10 - 10  # other requests' bodies still arriving
    answer = serve(server, FakeScope("POST", "/api/get_all_projects", headers={
        "content-type": "application/json", "content-length": "20"}), [b"{}" + b" " * 18])
    assert answer[0] == 503 and answer[1]["retry-after"]
    assert server.buffered == 2**10 - 10
    server.buffered = 0
    assert serve(server, FakeScope("POST", "/api/get_all_projects", headers={
        "content-type": "application/json", "content-length": "20"}),
        [b"{}" + b" " * 18])[0] == 200


def test_the_image_adapter_serves_files_and_keeps_tokens_out_of_its_log(data_dir, caplog):
    from trackio_flask.rsgi import BufferedServer

    server = BufferedServer(make_app(data_dir), threads=2, max_body=2**20, buffer_budget=2**20)
    root = Path(__file__).resolve().parents[1]
    status, headers, body = serve(server, FakeScope("GET", "/static/app.js"))
    assert status == 200 and body == (root / "static" / "app.js").read_bytes()
    with caplog.at_level("INFO", logger="trackio_flask.access"):
        serve(server, FakeScope("GET", "/", "write%5Ftoken=s3cret&x=1"))
    assert "write%5Ftoken=[redacted]&x=1" in caplog.text and "s3cret" not in caplog.text
    # Headers with underscores never pass for their dashed twins (X_Forwarded_For).
    from trackio_flask.rsgi import _environ
    environ = _environ(FakeScope("GET", "/", headers={"x_forwarded_for": "1.2.3.4",
                                                      "x-real": "a"}), b"")
    assert "HTTP_X_FORWARDED_FOR" not in environ and environ["HTTP_X_REAL"] == "a"
    # granian decodes the path to text; WSGI wants its UTF-8 bytes as latin-1 (PEP 3333).
    assert _environ(FakeScope("GET", "/été"), b"")["PATH_INFO"] == "/\xc3\xa9t\xc3\xa9"


def test_the_image_adapter_streams_long_answers_and_closes_them(data_dir, monkeypatch):
    from trackio_flask import rsgi

    closed = []

    class Parts:
        def __iter__(self):
            return (bytes([65 + i]) * 10 for i in range(5))

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("content-type", "text/csv")])
        return Parts()

    monkeypatch.setattr(rsgi, "HOLD_BYTES", 15)
    server = rsgi.BufferedServer(app, threads=2, max_body=2**20, buffer_budget=2**20)
    status, _, body = serve(server, FakeScope("GET", "/x.csv"))
    assert status == 200 and body == b"".join(bytes([65 + i]) * 10 for i in range(5))
    assert closed == [True]
    monkeypatch.setattr(rsgi, "HOLD_BYTES", 2**20)
    closed.clear()
    assert serve(server, FakeScope("GET", "/x.csv"))[2] == body and closed == [True]
