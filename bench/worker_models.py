"""Which server for the image: /version p95 under slow clients and heavy reads, per worker model.

Each model serves the same data with the Dockerfile's ENV; the scenarios are the attackers
table's (bench/tables/attackers.py), plus 32 sockets all trickling a body, which granian's own
WSGI interface reads inside the app's thread. gevent and granian must be installed.
Usage: python -m bench.worker_models --work DIR [--seconds 15] [--models gthread,gevent,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import urllib.request
from pathlib import Path

from .crowd import dockerfile_command
from .datasets import build, copy
from .procs import Server, free_port
from .tables import attackers

BIN = Path(sys.executable).parent
APP = "trackio_flask:create_app()"
MODELS = {
    "gthread": lambda port: [str(BIN / "gunicorn"), "-w", "1", "--threads", "16", "-b",
                             f"127.0.0.1:{port}", APP],
    "gevent": lambda port: [str(BIN / "gunicorn"), "-w", "1", "-k", "gevent",
                            "--worker-connections", "1000", "-b", f"127.0.0.1:{port}", APP],
    "granian-wsgi": lambda port: [str(BIN / "granian"), "--interface", "wsgi", "--workers", "1",
                                  "--blocking-threads", "16", "--host", "127.0.0.1", "--port",
                                  str(port), "--factory", "trackio_flask:create_app"],
    "granian-rsgi": lambda port: [str(BIN / "granian"), "--interface", "rsgi", "--workers", "1",
                                  "--host", "127.0.0.1", "--port", str(port), "--factory",
                                  "trackio_flask.rsgi:create_server"],
}
BODY_TRICKLERS = "32 trickling a body"


def _bodies(base: str, project: str, seconds: float) -> dict[str, float]:
    """The viewer's p95 while 32 sockets trickle a 1 MB body."""
    stop = threading.Event()
    threads = [threading.Thread(target=attackers._trickle, args=(base, stop, True), daemon=True)
               for _ in range(32)]
    for thread in threads:
        thread.start()
    try:
        times = attackers._viewer(base, project, seconds)
    finally:
        stop.set()
    return {"version_p95_ms": attackers._p95(times["version"]) * 1000}


def run(work: Path, models: list[str], seconds: float) -> list[tuple[str, str, float]]:
    project, source = "attacked", work / "src-attackers-100000"
    if not (source / f"{project}.db").exists():
        build(source, project, 2, 100_000)
    _, image_env = dockerfile_command()
    rows = []
    for model in models:
        for kind in ("", "D2 heavy reads", "D5 slow clients", BODY_TRICKLERS):
            data = copy(source, work / "models-data")
            port = free_port()
            env = {**os.environ, **image_env, "TRACKIO_DIR": str(data),
                   "PATH": f"{BIN}:{os.environ['PATH']}"}
            server = Server(model, MODELS[model](port), env, port, work / f"{model}.log")
            try:
                urllib.request.urlopen(f"{server.url}/projects/{project}", timeout=600).read()
                result = (_bodies(server.url, project, seconds) if kind == BODY_TRICKLERS
                          else attackers._scenario(server.url, project, kind, seconds))
            finally:
                server.stop()
            rows.append((model, kind or "no attack", result["version_p95_ms"]))
            print(f"{model:13} {kind or 'no attack':20} /version p95 "
                  f"{result['version_p95_ms']:,.0f} ms", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_models", description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    run(args.work, args.models.split(","), args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
