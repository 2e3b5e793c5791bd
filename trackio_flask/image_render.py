"""Render Vega-Lite specs to SVG or PNG in child processes that can be stopped. No Flask.

vl-convert runs Vega in an embedded V8 (about 1.5 s to start, then ~0.1-0.3 s a chart), so
each slot keeps one long-lived child (started from a forkserver, at a lower priority than the
server) and sends it one spec at a time. A render past its deadline kills its child (the next
render starts a fresh one); a child is also replaced after RECYCLE_AFTER renders, so no
memory it grew stays forever. `slots` bounds how many renders run at once in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.connection import Connection
from typing import Any

import orjson

NICENESS = 10
RECYCLE_AFTER = 200
VEGA_LITE_VERSION = "6.4"
FORMATS = ("svg", "png")


class RenderError(RuntimeError):
    """A render that failed or took longer than its deadline."""


class RenderBusy(RenderError):
    """Every render slot stayed busy for the whole wait."""


class _Child:
    def __init__(self, context: Any) -> None:
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end,), daemon=True,
                                       name="trackio-image")
        self.process.start()
        child_end.close()
        self.renders = 0

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


class Renderer:
    """`slots` children, each rendering one spec at a time, with a wall-clock deadline."""

    def __init__(self, slots: int = 1, wall_s: float = 20.0, max_bytes: int = 8 * 2**20) -> None:
        self.wall_s = wall_s
        self.max_bytes = max_bytes
        self._slots = threading.BoundedSemaphore(max(1, slots))
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("forkserver")

    def render(self, spec: dict[str, Any], fmt: str, scale: float = 1.0) -> bytes:
        """The image bytes; RenderBusy when no slot frees up in time, RenderError on failure."""
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}")
        if not self._slots.acquire(timeout=self.wall_s):
            raise RenderBusy("every image renderer stayed busy")
        try:
            with self._lock:
                child = self._idle.pop() if self._idle else None
            if child is None or not child.process.is_alive():
                child = _Child(self._context)
            try:
                child.conn.send_bytes(orjson.dumps({"fmt": fmt, "spec": spec, "scale": scale}))
                if not child.conn.poll(self.wall_s):
                    raise RenderError(f"the chart took longer than {self.wall_s:g} s to draw")
                answer = child.conn.recv_bytes(self.max_bytes + 16)
            except (EOFError, OSError, RenderError) as exc:
                child.stop()
                if isinstance(exc, RenderError):
                    raise
                raise RenderError("the image renderer stopped (image too large?)") from None
            child.renders += 1
            if child.renders >= RECYCLE_AFTER:
                child.stop()
            else:
                with self._lock:
                    self._idle.append(child)
            if answer[:1] != b"O":
                raise RenderError(answer[1:].decode(errors="replace")[:300])
            return answer[1:]
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            children, self._idle = self._idle, []
        for child in children:
            child.stop()


def _serve(conn: Connection) -> None:
    """The child: render specs as they arrive until the pipe closes."""
    os.nice(NICENESS)
    import vl_convert

    while True:
        try:
            job = orjson.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            if job["fmt"] == "svg":
                body = vl_convert.vegalite_to_svg(job["spec"], vl_version=VEGA_LITE_VERSION)
                answer = b"O" + body.encode()
            else:
                answer = b"O" + bytes(vl_convert.vegalite_to_png(
                    job["spec"], vl_version=VEGA_LITE_VERSION, scale=job["scale"]))
        except Exception as exc:  # a spec Vega refuses: the parent says why, the child lives on
            answer = b"E" + str(exc).encode()[:1000]
        conn.send_bytes(answer)
