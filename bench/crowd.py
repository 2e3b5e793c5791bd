"""The crowd on one Space: N viewers arrive over 30 s, open a 32-run page once, then poll.

The server runs exactly as the Dockerfile starts it (its CMD and ENV, one process per level so
every level starts cold); trackio's own writer commits one step per run per second, run by
run; viewers come from bench/crowd.js (Node's http: cheaper than the server it loads, its own
CPU is reported). Usage: python -m bench.crowd --work DIR [--levels 100,300,1000] [--theirs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import psutil

from .datasets import build, copy, start_appender
from .measure import batch_payload
from .procs import Server, free_port, start_theirs

ROOT = Path(__file__).resolve().parents[1]
GOAL = {"poll_p95_ms": 250.0, "page_p95_ms": 2000.0, "rss_mb": 300.0}


def dockerfile_command(root: Path = ROOT) -> tuple[list[str], dict[str, str]]:
    """The image's CMD (exec form) and ENV, read from the Dockerfile itself (of `root`)."""
    text = re.sub(r"\\\n\s*", " ", (root / "Dockerfile").read_text())
    env: dict[str, str] = {}
    command: list[str] = []
    for line in text.splitlines():
        verb, _, rest = line.strip().partition(" ")
        if verb == "ENV":
            env.update((k, v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', rest))
        elif verb == "CMD":
            command = json.loads(rest)
    return command, env


class WorkerMemory:
    """Peak RSS of any single gunicorn worker (a child of the master) while it runs."""

    def __init__(self, root_pid: int) -> None:
        self.root = root_pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                root = psutil.Process(self.root)
                # The leaves: gunicorn's worker (under sh and the master), or a lone server.
                processes = [root, *root.children(recursive=True)]
                workers = [p for p in processes if not p.children()]
                self.peak = max([self.peak] + [p.memory_info().rss for p in workers])
            except psutil.Error:
                continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=2)
        return self.peak


def start_as_dockerfile(data_dir: Path, log_dir: Path, name: str, root: Path = ROOT) -> Server:
    """Our server under the Dockerfile's command line, environment and port handling (the
    Dockerfile of checkout `root`: a before/after comparison runs each with its own)."""
    command, image_env = dockerfile_command(root)
    port = free_port()
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the image has it on PATH
    env = {**os.environ, **image_env, "PORT": str(port), "PATH": path,
           "TRACKIO_DIR": str(data_dir), "HOME": str(log_dir)}
    return Server(name, command, env, port, log_dir / f"{name}.log")


def run_node(base: str, page: str, viewers: int, arrive: float, hold: float, mode: str,
             batch: Path | None = None) -> dict:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is needed for the crowd generator (apt-get install nodejs)")
    argv = [node, str(ROOT / "bench" / "crowd.js"), "--base", base, "--page", page,
            "--viewers", str(viewers), "--arrive", str(arrive), "--hold", str(hold),
            "--mode", mode]
    if batch is not None:
        argv += ["--batch", str(batch)]
    result = subprocess.run(argv, capture_output=True, text=True,
                            timeout=arrive + hold + 300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def crowd_project(work: Path, runs: int, steps: int, log=print) -> tuple[str, Path]:
    """The crowd's project (name, folder), written once per work dir with trackio's writer."""
    project = f"bench{runs}x{steps}"
    source = work / f"src-{project}"
    if not (source / f"{project}.db").exists():
        log(f"crowd: building {runs} runs × 12 metrics × {steps:,} steps with trackio's writer")
        build(source, project, runs, steps)
    return project, source


def crowd(work: Path, runs: int = 32, steps: int = 5000, levels: tuple[int, ...] = (100, 300, 1000),
          theirs: tuple[int, ...] = (10,), arrive: float = 30, hold: float = 60,
          log=print) -> list[dict]:
    """Run each level against ours (cold server each time) and trackio's; return result rows."""
    project, source = crowd_project(work, runs, steps, log)
    rows = []
    sides = [("ours", n) for n in levels] + [("theirs", n) for n in theirs]
    for index, (side, viewers) in enumerate(sides):
        data = copy(source, work / f"crowd-{side}-{project}")
        server = (start_as_dockerfile(data, work, f"crowd-{viewers}") if side == "ours"
                  else start_theirs(data, work))
        memory = WorkerMemory(server.proc.pid)
        writer = start_appender(data, project, runs, steps + 100_000 * (index + 1),
                                arrive + hold + 120)
        try:
            # The Space is up and has served its project before the crowd arrives.
            page = f"/projects/{project}" if side == "ours" else f"/?project={project}"
            urllib.request.urlopen(server.url + page, timeout=600).read()
            log(f"crowd: {viewers} viewers against {side}")
            if side == "ours":
                result = run_node(server.url, f"/projects/{project}", viewers, arrive, hold,
                                  "ours")
            else:
                batch = work / "crowd-batch.json"
                batch.write_text(json.dumps(batch_payload(project, min(runs, 64))))
                result = run_node(server.url, f"/?project={project}", viewers, arrive, hold,
                                  "trackio", batch)
        finally:
            writer.terminate()
            writer.wait()
            result_rss = memory.stop()
            server.stop()
        rows.append({"side": side, "viewers": viewers, **result, "peak_worker_rss": result_rss})
        log(f"crowd: {json.dumps(rows[-1])}")
    return rows


def meets_goal(row: dict) -> bool:
    return (row["side"] == "ours" and row["errors"] == 0 and row["timeouts"] == 0
            and row["throttled"] == 0 and row["pages"] == row["viewers"]
            and (row["poll_p95_ms"] or 1e9) < GOAL["poll_p95_ms"]
            and (row["page_p95_ms"] or 1e9) < GOAL["page_p95_ms"]
            and row["peak_worker_rss"] <= GOAL["rss_mb"] * 2**20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crowd", description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--levels", default="100,300,1000")
    parser.add_argument("--theirs", default="10")
    parser.add_argument("--arrive", type=float, default=30)
    parser.add_argument("--hold", type=float, default=60)
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None,
                        help="replace table 5 of this BENCHMARKS.md with the result")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    levels = tuple(int(n) for n in args.levels.split(",") if n)
    theirs = tuple(int(n) for n in args.theirs.split(",") if n)
    rows = crowd(args.work, args.runs, args.steps, levels, theirs, args.arrive, args.hold)
    print(json.dumps(rows, indent=1))
    if args.out is not None:
        replace_crowd_section(args.out, rows, {"runs": args.runs, "steps": args.steps,
                                               "arrive": args.arrive, "hold": args.hold}, argv)
    return 0


def replace_crowd_section(report: Path, rows: list[dict], cfg: dict, argv) -> None:
    """Put this run's crowd table in place of table 5 of an existing BENCHMARKS.md."""
    from datetime import datetime, timezone

    from .run import _crowd_section

    command = "python -m bench.crowd " + " ".join(argv or sys.argv[1:])
    section = _crowd_section(rows, cfg) + (
        f"\nThis table alone comes from `{command}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, after the full run above.\n")
    text = report.read_text()
    start = text.index("### 5. Crowd")
    end = text.index("### 6.", start)
    report.write_text(text[:start] + section + "\n" + text[end:])


if __name__ == "__main__":
    raise SystemExit(main())
