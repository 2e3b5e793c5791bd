"""Slow and heavy clients: an innocent viewer's /version and page p95 while 16 attackers run.

The server starts exactly as the Dockerfile starts it (its CMD and ENV). 16 attackers, each its
own client address (X-Forwarded-For from 127.0.0.1, which the image trusts as a proxy, as
Hugging Face's proxy sets it), stay within the default rate limits and send, in turn:
D1 `query_project` statements stuck inside one SQL function, D2 a 6-way self-join count and
`get_logs_batch` naming one long run 64 times, D5 sockets that trickle their headers or a 1 MB
body a few bytes at a time. Meanwhile one viewer asks for /version and the project page every
0.25 s. With TRACKIO_BENCH_BEFORE=<checkout>, the same runs against that checkout's code and
Dockerfile too (e.g. `git worktree add --detach /tmp/before <commit>`).

python -m bench.run --only attackers [--quick]
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..crowd import ROOT, dockerfile_command, start_as_dockerfile
from ..datasets import build, copy

NUMBER = 20
TITLE = "Slow and heavy clients"
ATTACKERS = 16
PRINTF = ("SELECT " + ", ".join(f"length(printf('%.*c', 2147483647, 'x')) AS a{i}"
                                for i in range(8)))
JOIN = ("SELECT COUNT(*) AS n FROM metrics a, metrics b, metrics c, metrics d, metrics e, "
        "metrics f")


def _post(base: str, name: str, body: dict, address: str, timeout: float = 120) -> int:
    request = urllib.request.Request(
        f"{base}/api/{name}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-Forwarded-For": address})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _trickle(base: str, stop: threading.Event, body: bool) -> None:
    """One slow client: headers (or a 1 MB body) a few bytes a second, then again."""
    host, port = base.split("//")[1].split(":")
    while not stop.is_set():
        try:
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                head = (f"POST /api/get_all_projects HTTP/1.1\r\nHost: {host}\r\n"
                        "Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
                        if body else f"GET /version HTTP/1.1\r\nHost: {host}\r\n")
                if body:
                    sock.sendall(head.encode())
                    head = "{" + " " * 1_048_575
                for char in head:
                    if stop.wait(0.2):
                        return
                    sock.sendall(char.encode())
        except OSError:
            if stop.wait(0.5):
                return


def _attack(kind: str, base: str, project: str, stop: threading.Event, index: int) -> None:
    address = f"198.51.100.{index + 1}"
    if kind == "D5 slow clients":
        _trickle(base, stop, body=index % 2 == 1)
        return
    while not stop.is_set():
        if kind == "D1 stuck SQL function":
            _post(base, "query_project", {"project": project, "query": PRINTF}, address)
        else:
            if index % 2:
                _post(base, "query_project", {"project": project, "query": JOIN}, address)
            else:
                _post(base, "get_logs_batch", {"project": project, "max_points": 10_000,
                                               "runs": [{"run_id": "run000"}] * 64}, address)
        stop.wait(0.25)  # 16 clients × 4/s stays inside 300 calls a minute each


def _viewer(base: str, project: str, seconds: float) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"version": [], "page": []}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, path in (("version", "/version"), ("page", f"/projects/{project}")):
            started = time.monotonic()
            try:
                with urllib.request.urlopen(base + path, timeout=30) as answer:
                    answer.read()
                times[key].append(time.monotonic() - started)
            except OSError:
                times[key].append(30.0)  # a timeout counts as the wait it imposed
        time.sleep(0.25)
    return times


def _p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20)[-1]


def _scenario(base: str, project: str, kind: str, seconds: float) -> dict[str, float]:
    stop = threading.Event()
    threads = [threading.Thread(target=_attack, args=(kind, base, project, stop, i),
                                daemon=True) for i in range(ATTACKERS)] if kind else []
    for thread in threads:
        thread.start()
    try:
        times = _viewer(base, project, seconds)
    finally:
        stop.set()
    for thread in threads:
        thread.join(timeout=1)
    return {"version_p95_ms": _p95(times["version"]) * 1000,
            "page_p95_ms": _p95(times["page"]) * 1000,
            "version_max_ms": max(times["version"]) * 1000}


def measure(work: Path, checkout: Path | None, quick: bool, log) -> list[dict]:
    """Each scenario against a fresh server of `checkout` (None: this one)."""
    project = "attacked"
    runs, steps = (2, 2000) if quick else (2, 100_000)
    source = work / f"src-attackers-{steps}"
    if not (source / f"{project}.db").exists():
        log(f"attackers: building {runs} runs × {steps:,} steps with trackio's writer")
        build(source, project, runs, steps)
    seconds = 4 if quick else 30
    rows = []
    saved = os.environ.get("PYTHONPATH")
    if checkout is not None:
        os.environ["PYTHONPATH"] = str(checkout)
    try:
        for kind in ("", "D1 stuck SQL function", "D2 heavy reads", "D5 slow clients"):
            data = copy(source, work / "attackers-data")
            server = start_as_dockerfile(data, work, "attackers",
                                         *([checkout] if checkout is not None else []))
            try:
                urllib.request.urlopen(f"{server.url}/projects/{project}", timeout=600).read()
                log(f"attackers: {kind or 'no attack'} ({checkout or 'this checkout'})")
                rows.append({"kind": kind or "no attack",
                             **_scenario(server.url, project, kind, seconds)})
            finally:
                server.stop()
    finally:
        if checkout is not None:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    return rows


def _server(root: Path) -> str:
    """The server a checkout's image runs (the word after `exec` in its CMD)."""
    script = dockerfile_command(root)[0][-1]
    return script.split("exec ", 1)[1].split()[0] if "exec " in script else script.split()[0]


def section(work: Path, quick: bool, log) -> str:
    before_dir = os.environ.get("TRACKIO_BENCH_BEFORE")
    after = measure(work, None, quick, log)
    before = measure(work, Path(before_dir), quick, log) if before_dir else None
    servers = f"this checkout's image runs {_server(ROOT)}" + (
        f", the one before {_server(Path(before_dir))}" if before else "")
    lines = [f"### {NUMBER}. {TITLE}", "",
             f"An innocent viewer's p95 while {ATTACKERS} attackers run each scenario "
             "(server as each checkout's Dockerfile starts it; module docstring says what each "
             f"sends): {servers}.", "",
             "| scenario | /version p95 | page p95 | /version worst |"
             + (" before: /version p95 | before: page p95 |" if before else ""),
             "|---|---|---|---|" + ("---|---|" if before else "")]
    for index, row in enumerate(after):
        line = (f"| {row['kind']} | {row['version_p95_ms']:,.0f} ms | "
                f"{row['page_p95_ms']:,.0f} ms | {row['version_max_ms']:,.0f} ms |")
        if before:
            old = before[index]
            line += f" {old['version_p95_ms']:,.0f} ms | {old['page_p95_ms']:,.0f} ms |"
        lines.append(line)
    return "\n".join(lines) + "\n"
