"""Crowd behind a shared cache: the crowd benchmark's shape through nginx with the shipped
microcaching config (docs/deploy/nginx.conf), counting the requests that reach the app.

Same shape as table 5: trackio's writer commits one step per run per second, viewers arrive
over the arrival window, open the project page once and follow its poller (bench/crowd.js).
The server runs as the Dockerfile starts it; one level goes to it directly for comparison, the
others through nginx. The app's requests are counted in its own access log (gunicorn's, which
the Dockerfile's command writes to the server log). nginx runs the shipped site file with
ports, cache path and the trusted front proxy (127.0.0.1: the generator) replaced, so each
viewer's X-Forwarded-For address reaches the app as it would from distinct clients behind a
balancer. On the nginx levels, readers then fetch every closed history chunk of the project
(views/history.py) while the writer goes on: the app should see each chunk once.

python -m bench.run --only shared_cache [--quick]
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil

from ..crowd import crowd_project, run_node, start_as_dockerfile
from ..datasets import copy, start_appender
from ..procs import free_port

NUMBER = 26
TITLE = "Crowd behind a shared cache"
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "docs" / "deploy" / "nginx.conf"
FULL = {"runs": 32, "steps": 5000, "direct": (1000,), "cached": (1000, 3000), "arrive": 30,
        "hold": 60, "readers": 1000}
# 4,200 steps: each run has a closed history chunk (4,096 rows) for the chunk readers.
QUICK = {"runs": 2, "steps": 4200, "direct": (20,), "cached": (20,), "arrive": 3, "hold": 10,
         "readers": 200}
CHUNK_THREADS = 16
POLL_S = 3.5  # crowd.js sends Host: crowd.hf.space, so pages poll at POLL_HF_S
MAIN = """
worker_processes 1;
daemon off;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 8192; }}
worker_rlimit_nofile 16384;
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  include {tmp}/trackio.conf;
}}
"""


def start_nginx(tmp: Path, upstream: int) -> tuple[subprocess.Popen, str]:
    """nginx with the shipped site in front of `upstream`; (process, base URL)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if tmp.exists():
        shutil.rmtree(tmp)
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "cache", "cache-history"):
        (tmp / folder).mkdir(parents=True)
    port = free_port()
    site = SHIPPED.read_text()
    for old, new in (("listen 80;", f"listen 127.0.0.1:{port} backlog=4096;"),
                     ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};"),
                     ("/var/cache/nginx/trackio", str(tmp / "cache")),
                     # The generator plays the balancer: its X-Forwarded-For names the viewer.
                     ("set_real_ip_from 10.0.0.0/8;", "set_real_ip_from 127.0.0.1;")):
        site = site.replace(old, new)
    (tmp / "trackio.conf").write_text(site)
    (tmp / "nginx.conf").write_text(MAIN.format(tmp=tmp))
    proc = subprocess.Popen([nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/version", timeout=2).read()
            return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"nginx did not start; see {tmp / 'nginx-error.log'}")


def app_requests(log_path: Path) -> int:
    """Requests the app has served (gunicorn's access log lines in the server log)."""
    return sum(1 for line in log_path.read_text(errors="replace").splitlines()
               if '"GET ' in line or '"POST ' in line or '"HEAD ' in line)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process tree so far."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def read_chunks(base: str, project: str, readers: int, server_log: Path, proxy_pid: int
                ) -> dict:
    """`readers` clients each fetch every closed history chunk through nginx; what reached the
    app and nginx's CPU per cached chunk answer."""
    from concurrent.futures import ThreadPoolExecutor

    import orjson

    index = orjson.loads(urllib.request.urlopen(f"{base}/projects/{project}/history",
                                                timeout=600).read())
    urls = [base + url for run in index["runs"] for url in run["metrics"]["chunks"]]
    before, cpu = app_requests(server_log), cpu_seconds(proxy_pid)

    def fetch(url: str) -> int:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return len(answer.read())

    started = time.time()
    with ThreadPoolExecutor(CHUNK_THREADS) as pool:
        sizes = list(pool.map(fetch, urls * readers))
    wall = time.time() - started
    reached = app_requests(server_log) - before
    cpu = cpu_seconds(proxy_pid) - cpu
    cached = max(0, len(sizes) - reached)
    return {"readers": readers, "chunks": len(urls), "fetches": len(sizes), "reached": reached,
            "bytes": sum(sizes) // max(1, len(sizes)), "per_s": len(sizes) / wall,
            "proxy_us_per_cached": cpu * 1e6 / cached if cached else None}


def measure(work: Path, quick: bool, log) -> tuple[list[dict], dict]:
    cfg = QUICK if quick else FULL
    runs, steps, arrive, hold = cfg["runs"], cfg["steps"], cfg["arrive"], cfg["hold"]
    project, source = crowd_project(work, runs, steps, log)
    rows: list[dict] = []
    chunk_rows: list[dict] = []
    sides = [("direct", n) for n in cfg["direct"]] + [("nginx", n) for n in cfg["cached"]]
    for index, (side, viewers) in enumerate(sides):
        name = f"shared-{side}-{viewers}"
        data = copy(source, work / f"{name}-data")
        server = start_as_dockerfile(data, work, name)
        writer = start_appender(data, project, runs, steps + 100_000 * (index + 1),
                                arrive + hold + 120)
        proxy = None
        try:
            base = server.url
            if side == "nginx":
                proxy, base = start_nginx(work / f"{name}-nginx", server.port)
            page = f"/projects/{project}"
            urllib.request.urlopen(base + page, timeout=600).read()
            log(f"shared_cache: {viewers} viewers, {side}")
            before = app_requests(Path(server.log.name))
            app_cpu = cpu_seconds(server.proc.pid)
            proxy_cpu = cpu_seconds(proxy.pid) if proxy else 0.0
            started = time.time()
            result = run_node(base, page, viewers, arrive, hold, "ours")
            wall = time.time() - started
            reached = app_requests(Path(server.log.name)) - before
            app_cpu = cpu_seconds(server.proc.pid) - app_cpu
            proxy_cpu = (cpu_seconds(proxy.pid) - proxy_cpu) if proxy else 0.0
            if proxy is not None:
                chunks = read_chunks(base, project, cfg["readers"], Path(server.log.name),
                                     proxy.pid)
                log(f"shared_cache: history chunks {chunks}")
                chunk_rows.append(chunks)
        finally:
            writer.terminate()
            writer.wait()
            if proxy is not None:
                proxy.terminate()
                proxy.wait()
            server.stop()
        asked = result["pages"] + result["polls"]
        served_by_cache = max(0, asked - reached) if side == "nginx" else 0
        rows.append({"side": side, **result, "asked": asked, "reached": reached,
                     "reached_per_s": reached / wall, "asked_per_s": asked / wall,
                     "app_cores": app_cpu / wall, "proxy_cores": proxy_cpu / wall,
                     "proxy_ms_per_cached": (proxy_cpu * 1000 / served_by_cache)
                     if served_by_cache else None})
        log(f"shared_cache: {rows[-1]}")
    return rows, {**cfg, "chunk_rows": chunk_rows}


def _ms(value) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def section(work: Path, quick: bool, log) -> str:
    rows, cfg = measure(work, quick, log)
    lines = [f"### {NUMBER}. {TITLE}", "",
             f"{cfg['runs']} runs × 12 metrics × {cfg['steps']:,} steps, live writer, viewers arrive "
             f"over {cfg['arrive']:.0f} s and stay {cfg['hold']:.0f} s (table 5's shape), straight "
             "to the app or through nginx with `docs/deploy/nginx.conf`.", "",
             "| path | viewers | poll p50 | poll p95 | page p95 | errors | 429s | requests/s "
             "asked (of a full crowd's) | requests/s reaching the app | app CPU | nginx CPU | "
             "nginx CPU per cached answer | generator CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        per_cached = row["proxy_ms_per_cached"]
        lines.append(
            f"| {row['side']} | {row['viewers']:,} | {_ms(row['poll_p50_ms'])} | "
            f"{_ms(row['poll_p95_ms'])} | {_ms(row['page_p95_ms'])} | "
            f"{row['errors']:,} | {row['throttled']:,} | "
            f"{row['asked_per_s']:,.1f} of ~{row['viewers'] / POLL_S:,.0f} | "
            f"{row['reached_per_s']:,.1f} | "
            f"{row['app_cores'] * 100:.0f}% | {row['proxy_cores'] * 100:.0f}% | "
            + ("—" if per_cached is None else f"{per_cached * 1000:,.0f} µs")
            + f" | {row['generator_cores'] * 100:.0f}% |")
    lines += ["", "Errors include requests that timed out (15 s). A full crowd asks about one "
              f"poll per viewer per {POLL_S} s (the page's interval on a Space host); fewer "
              "asked means the generator or the machine could not keep up (its CPU is the "
              "last column; the table says nothing about larger crowds then). "
              "CPU columns are shares of one core over the measured window. The app is "
              "the Dockerfile's gunicorn (one process); its requests are counted in its own "
              "access log. nginx CPU per cached answer projects a larger crowd: 10,000 viewers "
              "polling every 3.5 s ask ~2,900 answers/s, which costs that many times this "
              "figure of nginx CPU, while the app's share stays the 'reaching the app' rate."]
    measured = [row["proxy_ms_per_cached"] for row in rows if row["proxy_ms_per_cached"]]
    if measured:
        per_answer_ms = max(measured)  # the dearest level measured: a cautious projection
        rate = 10_000 / POLL_S
        lines += ["", f"Projection for 10,000 viewers: ~{rate:,.0f} polls/s × "
                  f"{per_answer_ms * 1000:,.0f} µs of nginx CPU per cached answer = "
                  f"{rate * per_answer_ms / 10:,.0f}% of one core for nginx, while the app "
                  "receives about one request per distinct URL per tick (the column above), "
                  "however many viewers there are."]
    if cfg["chunk_rows"]:
        lines += ["", "Closed history chunks through the same nginx, while the writer goes on: "
                  "readers each fetch every closed chunk (`/projects/<p>/history/…`, "
                  "`immutable`, a year).", "",
                  "| readers | closed chunks | fetches | reached the app | chunk size | "
                  "fetches/s | nginx CPU per cached chunk |", "|---|---|---|---|---|---|---|"]
        for row in cfg["chunk_rows"]:
            per = row["proxy_us_per_cached"]
            lines.append(f"| {row['readers']:,} | {row['chunks']:,} | {row['fetches']:,} | "
                         f"{row['reached']:,} | {row['bytes'] / 1024:,.0f} KiB | "
                         f"{row['per_s']:,.0f} | "
                         + ("—" if per is None else f"{per:,.0f} µs") + " |")
    return "\n".join(lines) + "\n"
