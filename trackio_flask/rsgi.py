"""The image's server: granian (RSGI) in front of the Flask app, so slow clients hold no thread.

gunicorn's gthread worker gives a connection a thread from the first byte to the last, so 16
clients trickling headers or a body held all 16 threads and `/version` stopped answering
(issue 18, D5). Here granian reads headers in Rust, this adapter reads the body in granian's
event loop, and the app runs on a thread pool only once a request has fully arrived; its answer
is handed back whole (files by path) and granian writes it however slowly the client reads.
Run: `granian --interface rsgi --factory trackio_flask.rsgi:create_server`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .gunicorn_logging import redact

log = logging.getLogger("trackio_flask.access")
# A body still arriving after this long is refused (408): its memory is held meanwhile.
BODY_TIMEOUT_S = 60.0
JSON = [("content-type", "application/json"), ("cache-control", "no-store")]
# Answers up to this size are handed to granian whole; longer ones (a big CSV, a range of a
# video) are streamed, a part at a time, so memory stays bounded.
HOLD_BYTES = 8 * 2**20
SWITCH_INTERVAL_S = 0.001


class _Closing:
    """The rest of an app's answer, and how to close it once sent."""

    def __init__(self, parts: Iterator[bytes], result: Any) -> None:
        self.parts, self.result = parts, result

    def __iter__(self) -> Iterator[bytes]:
        return self.parts

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            close()


def _next_part(parts: Any) -> bytes | None:
    return next(iter(parts), None)


class Refused(Exception):
    """A request refused before the app sees it (status, message)."""


class FileAnswer:
    """`wsgi.file_wrapper`: a file answer granian sends from its path, no thread held."""

    def __init__(self, file: Any, block_size: int = 8192) -> None:
        self.file, self.block_size = file, block_size

    def path(self) -> str | None:
        name = getattr(self.file, "name", None)
        return name if isinstance(name, str) and os.path.isfile(name) else None

    def __iter__(self):
        return iter(lambda: self.file.read(self.block_size), b"")

    def close(self) -> None:
        self.file.close()


class BufferedServer:
    """An RSGI app around a WSGI app: a request's body is read before a thread is taken."""

    def __init__(self, app: Callable, threads: int, max_body: int, buffer_budget: int) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="request")
        self.max_body = max_body
        self.budget = buffer_budget
        self.buffered = 0  # bytes of bodies held right now (touched by the event loop only)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return  # no websockets here
        started = time.monotonic()
        held = [0]  # bytes of this request's body counted in self.buffered
        try:
            try:
                length = _content_length(scope.headers)
                if length is not None and length > self.max_body:
                    raise Refused(413, f"the body is larger than {self.max_body // 2**20} MB")
                # Most requests (pages, polls) have no body: no read, no timer task.
                body = b"" if length == 0 or (
                    length is None and "transfer-encoding" not in scope.headers) \
                    else await asyncio.wait_for(self._read(scope, proto, length, held),
                                                BODY_TIMEOUT_S)
            except Refused as refused:
                status, message = refused.args
                body_out = f'{{"error": "{message}"}}'.encode()
                proto.response_bytes(status, [*JSON, ("retry-after", "5")] if status == 503
                                     else JSON, body_out)
                log.warning("%d %s %s from %s: %s", status, scope.method, scope.path,
                            _host(scope.client), message)
                self._log(scope, status, len(body_out), started)
                return
            except asyncio.TimeoutError:
                proto.response_bytes(408, JSON, b'{"error": "the body took too long to arrive"}')
                log.warning("408 %s %s from %s: body not in after %.0f s", scope.method,
                            scope.path, _host(scope.client), BODY_TIMEOUT_S)
                self._log(scope, 408, 0, started)
                return
            loop = asyncio.get_running_loop()
            # The thread builds the environ, answers and logs: the event loop thread has to
            # win the GIL from busy request threads for every step it takes, so it takes few.
            status, headers, content, rest = await loop.run_in_executor(
                self.pool, self._serve, proto, scope, body, started)
        finally:
            self.buffered -= held[0]
        if rest is not None:
            size = await self._stream(proto, status, headers, content, rest)
            self._log(scope, status, size, started)

    def _serve(self, proto: Any, scope: Any, body: bytes,
               started: float) -> tuple[int, list, bytes, Any]:
        """On a pool thread: run the app and hand granian its answer, unless it is too long
        to hold (then the event loop streams `rest`)."""
        status, headers, content, rest = self._call(_environ(scope, body))
        if isinstance(rest, str):
            proto.response_file(status, headers, rest)
            self._log(scope, status, os.path.getsize(rest), started)
            return status, headers, b"", None
        if rest is None:
            proto.response_bytes(status, headers, content)
            self._log(scope, status, len(content), started)
        return status, headers, content, rest

    async def _stream(self, proto: Any, status: int, headers: list, first: bytes,
                      rest: Iterator[bytes]) -> int:
        """Send an answer too long to hold whole: a pool thread makes each next part, the
        event loop (no thread) waits for the client to take it."""
        loop = asyncio.get_running_loop()
        transport = proto.response_stream(status, headers)
        size = len(first)
        try:
            await transport.send_bytes(first)
            while (part := await loop.run_in_executor(self.pool, _next_part, rest)) is not None:
                size += len(part)
                await transport.send_bytes(part)
        except Exception as exc:  # the client went away mid-answer
            log.info("answer cut after %d bytes: %s", size, exc)
        finally:
            close = getattr(rest, "close", None)
            if close is not None:
                await loop.run_in_executor(self.pool, close)
        return size

    async def _read(self, scope: Any, proto: Any, length: int | None, held: list[int]) -> bytes:
        """The whole body, counted in `held` and in the server's budget as it arrives (a
        trickling client holds only what it sent); past the budget, 503."""
        if length == 0 or (length is None and "transfer-encoding" not in scope.headers):
            return b""
        parts = []
        async for chunk in proto:
            if held[0] + len(chunk) > self.max_body:
                raise Refused(413, f"the body is larger than {self.max_body // 2**20} MB")
            if self.buffered + len(chunk) > self.budget:
                raise Refused(503, "the server is receiving too many request bodies; "
                                   "retry shortly")
            self.buffered += len(chunk)
            held[0] += len(chunk)
            parts.append(chunk)
        if length is not None and held[0] < length:
            # The client left mid-body: a cut bulk_log must never reach the app.
            raise Refused(400, "the body ended before its Content-Length")
        return b"".join(parts)

    def _call(self, environ: dict[str, Any]) -> tuple[int, list, bytes, Any]:
        """Run the app on a pool thread: (status, headers, body, rest) where rest is None (the
        body is whole), a file's path, or the app's iterator past HOLD_BYTES (streamed)."""
        answer: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(status: str, headers: list, exc_info: Any = None):
            answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers
            return written.append

        result: Iterable[bytes] = self.app(environ, start_response)
        streamed = False
        try:
            if isinstance(result, FileAnswer) and not written and result.path() is not None:
                return answer["status"], answer["headers"], b"", result.path()
            parts = iter(result)
            held = sum(len(part) for part in written)
            for part in parts:
                written.append(part)
                held += len(part)
                if held > HOLD_BYTES:
                    streamed = True
                    return (answer["status"], answer["headers"], b"".join(written),
                            _Closing(parts, result))
        finally:
            close = getattr(result, "close", None)
            if close is not None and not streamed:
                close()
        return answer["status"], answer["headers"], b"".join(written), None

    def _log(self, scope: Any, status: int, size: int, started: float) -> None:
        query = f"?{redact(scope.query_string)}" if scope.query_string else ""
        log.info('%s "%s %s%s HTTP/%s" %d %d %.3fs', _host(scope.client), scope.method,
                 redact(scope.path), query, scope.http_version, status, size,
                 time.monotonic() - started)


def _content_length(headers: Any) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise Refused(400, "Content-Length is not a number")
    return int(raw)


def _host(address: str) -> str:
    host = address.rpartition(":")[0] if address.count(":") == 1 or address.startswith("[") \
        else address
    return host.strip("[]")


def _environ(scope: Any, body: bytes) -> dict[str, Any]:
    """The WSGI environ of an RSGI request (PEP 3333)."""
    server_host, _, server_port = scope.server.rpartition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method, "SCRIPT_NAME": "",
        "PATH_INFO": scope.path.encode().decode("latin-1"),
        "QUERY_STRING": scope.query_string, "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port, "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": _host(scope.client), "REMOTE_PORT": scope.client.rpartition(":")[2],
        "CONTENT_TYPE": "", "wsgi.version": (1, 0), "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "wsgi.input_terminated": True, "wsgi.file_wrapper": FileAnswer,
    }
    if body or scope.headers.get("content-length") is not None:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in scope.headers.items():
        if "_" in name:
            continue  # like gunicorn: X_Forwarded_For must not pass for X-Forwarded-For
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name != "content-length":
            key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def create_server() -> BufferedServer:
    """granian's factory: the app from the environment, behind the buffering adapter."""
    from . import create_app

    app = create_app()
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    config = app.config
    # The event loop thread waits for the GIL at each step of a request while request threads
    # render; Python's 5 ms switch interval made that wait most of a poll's time under a
    # crowd (300 viewers: poll p95 1.8 s at 5 ms, 0.7 s at 1 ms; docs/decisions.md).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    max_body = max(int(config["MAX_BODY_MB"]), int(config["MAX_UPLOAD_MB"])) * 2**20 + 2**16
    return BufferedServer(app, int(config["SERVER_THREADS"]), max_body,
                          int(config["BUFFERED_BODIES_MB"]) * 2**20)
