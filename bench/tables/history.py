"""History at scale (#20): what a long project costs with the columnar series store.

Per size, our gunicorn server (the Dockerfile's worker model, gthread) with an empty store:
the first page (it decodes Trackio's SQLite and builds the store); then a restart and the first
page again (the store is mapped, only rows past its watermark are decoded); a live poll after
one row per run is written; a zoom into a 1,000-step window; worker RSS (and the private part,
USS: the mapped store is page cache shared by the workers) with 1, 2 and then 4 workers sharing
one store. Trackio beside it: its Metrics page's `get_logs_batch` call, first after a start and
after a write, on a copy of the same file.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psutil

from ..history_data import build, metric_names
from ..measure import Http, Viewer, batch_payload
from ..procs import Server, free_port, start_theirs

NUMBER = 30
TITLE = "History at scale: the series store"
# runs, steps, metrics: the 4.8 M, 19.2 M and 100 M points. On a quiet 2-core machine
# (load 1.7) the 100 M size takes ~3.5 min (writing 100 s, first build 70 s) and the whole
# full mode ~6.5 min; under load 9 writing alone is ~2.5 times slower. One size alone:
# `HISTORY_BENCH_SIZE=10,500000,20 python -m bench.run --only history`.
FULL = {"sizes": [(8, 50_000, 12), (8, 200_000, 12), (10, 500_000, 20)], "polls": 5,
        "zooms": 3, "theirs_max_points": 20_000_000}
THEIRS_TIMEOUT_S = 180
GROUPED = "group=config:lr"  # the history's runs take 4 learning rates
WORKERS = (1, 2, 4)  # the goal: RSS per worker with 1, 2 and 4 gunicorn workers
QUICK = {"sizes": [(4, 20_000, 8)], "polls": 2, "zooms": 2, "theirs_max_points": 0}


def start_ours(data_dir: Path, store_dir: Path, workers: int, log_path: Path) -> Server:
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
    port = free_port()
    env = {**os.environ, "TRACKIO_DIR": str(data_dir), "TRACKIO_FLASK_STORE_DIR": str(store_dir),
           "TRACKIO_FLASK_RATELIMIT_ENABLED": "false", "TRACKIO_FLASK_TICK_S": "0",
           "TRACKIO_FLASK_POLL_IDLE_AFTER_S": "3600"}
    argv = [gunicorn, "-w", str(workers), "--threads", "8", "-b", f"127.0.0.1:{port}",
            "--timeout", "600", "trackio_flask:create_app()"]
    return Server("trackio_flask", argv, env, port, log_path)


def worker_memory(server: Server) -> list[tuple[int, int, int]]:
    """(RSS, PSS, USS) in bytes of each gunicorn worker (/proc/PID/smaps_rollup): RSS counts
    every page the worker maps, the shared store included; PSS splits each shared page among
    the processes mapping it; USS (private) counts only pages no other process maps."""
    out = []
    for child in psutil.Process(server.proc.pid).children():
        info = child.memory_full_info()
        out.append((info.rss, info.pss, info.uss))
    return out


def build_warmup(data: Path, metrics: int) -> None:
    """Two steps of one run with the same metric names and a system sample: the same chart
    shapes as the project, so their specs are compiled before the timed page."""
    build(data / "warmup.db", 1, 2, metrics, log=lambda _: None)


def write_rows(db: Path, runs: int, step: int, metrics: int) -> None:
    """One row per run at `step`, as a live trainer logs it."""
    names = metric_names(metrics)
    stamp = (datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=step)).isoformat()
    conn = sqlite3.connect(db, timeout=30)
    with conn:
        conn.executemany(
            "INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) VALUES (?,?,?,?,?)",
            [(f"run{r:03d}", stamp, f"run-{r:03d}", step,
              orjson.dumps({name: 0.5 for name in names})) for r in range(runs)])
    conn.close()


def last_step(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute("SELECT MAX(step) FROM metrics").fetchone()[0])
    finally:
        conn.close()


def generation(store: Path, project: str) -> str:
    """The project's store build id (a rebuild changes it, an append does not)."""
    (manifest,) = store.glob(f"{project}-*/manifest.json")
    return orjson.loads(manifest.read_bytes())["generation"]


def warm(http: Http) -> None:
    """A start compiles the chart specs once (seconds, whatever the data): pay it on a
    two-row project of the same shapes, so the timed page is the history's cost."""
    timed_get(http, "/projects/warmup")


def timed_get(http: Http, path: str) -> float:
    http.conn.timeout = 600  # a cold build of a long history on a busy machine takes minutes
    status, _body, seconds = http.get(path)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}")
    return seconds


def source(work: Path, runs: int, steps: int, metrics: int, log) -> tuple[str, Path]:
    project = f"hist{runs}x{steps}x{metrics}"
    folder = work / f"history-src-{project}"
    if not (folder / f"{project}.db").exists():
        folder.mkdir(parents=True, exist_ok=True)
        log(f"history: writing {runs * steps * metrics:,} points ({runs} runs × {metrics} "
            f"metrics × {steps:,} steps)")
        started = time.perf_counter()
        build(folder / f"{project}.db", runs, steps, metrics, log=log)
        log(f"history: written in {time.perf_counter() - started:.0f} s")
    return project, folder


def measure(work: Path, size: tuple[int, int, int], cfg: dict, log) -> dict:
    runs, steps, metrics = size
    project, src = source(work, runs, steps, metrics, log)
    data = work / f"history-ours-{project}"
    store = work / f"history-store-{project}"
    db = data / f"{project}.db"
    row: dict = {"points": runs * steps * metrics}
    # HISTORY_BENCH_KEEP=1: measure restarts on the copy and store a former run left (the
    # 100 M build takes minutes), so one measurement stays short; the build column is then "—".
    keep = os.environ.get("HISTORY_BENCH_KEEP") == "1" and db.exists() \
        and list(store.glob("*/manifest.json"))
    if not keep:
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(src, data)
        shutil.rmtree(store, ignore_errors=True)
        log(f"history {project}: first page (builds the store)")
        build_warmup(data, metrics)
        # The copy just made (5 GB for 100 M points) is dirty in the page cache; its writeback
        # would take CPU from the build it times. A trainer's file was written long before.
        os.sync()
        ours = start_ours(data, store, 1, work / f"history-{project}-build.log")
        try:
            http = Http(ours.url)
            warm(http)
            row["cold_s"] = timed_get(http, f"/projects/{project}")
            http.close()
        finally:
            ours.stop()
    row["store_mb"] = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**20
    # The copy and the build leave gigabytes of dirty pages; their writeback took CPU from the
    # polls measured next (100 M points: 19 ms of server time per poll instead of 8). A
    # restart finds a store written long before, so the disk is made quiet first.
    os.sync()
    built = generation(store, project)
    for workers in WORKERS:
        log(f"history {project}: restart with {workers} worker(s)")
        ours = start_ours(data, store, workers, work / f"history-{project}-{workers}w.log")
        try:
            http = Http(ours.url)
            warm(http)
            page_s = timed_get(http, f"/projects/{project}")
            if workers == 1:
                row["restart_s"] = page_s
                viewer = Viewer(http, project)
                polls, poll_server = [], []
                # Past the largest step logged (a kept copy holds a former run's polls), as a
                # trainer goes on: steps stay sorted.
                last = last_step(db)
                for n in range(cfg["polls"]):
                    write_rows(db, runs, last + 1 + n, metrics)
                    status, _bytes, seconds = viewer.poll()
                    if status != 200:
                        raise RuntimeError(f"poll after a write answered {status}")
                    polls.append(seconds)
                    poll_server.append(http.last_server_ms)
                row["poll_ms"] = statistics.median(polls) * 1000
                row["poll_server_ms"] = statistics.median(poll_server)
                row["poll_each_ms"] = [round(p * 1000, 1) for p in polls]
                # The same with EMA smoothing on: it depends on every earlier point, so a
                # poll is O(new rows) only if the smoothing goes on from where it stopped.
                smoothed = Viewer(http, project, "smoother=ema&smoothing=60")
                row["ema_page_s"] = smoothed.first_load_s
                ema_polls = []
                for n in range(cfg["polls"]):
                    write_rows(db, runs, last + 1 + cfg["polls"] + n, metrics)
                    status, _bytes, seconds = smoothed.poll()
                    if status != 200:
                        raise RuntimeError(f"smoothed poll after a write answered {status}")
                    ema_polls.append(seconds)
                row["ema_poll_ms"] = statistics.median(ema_polls) * 1000
                # Grouped by a config key: one aggregate line and band per group; a refresh
                # sends each group's points past its members' former last steps.
                offset = last + 1 + 2 * cfg["polls"]
                grouped = Viewer(http, project, GROUPED)
                row["group_page_s"] = grouped.first_load_s
                group_polls, group_bytes = [], []
                for n in range(cfg["polls"]):
                    write_rows(db, runs, offset + n, metrics)
                    status, sent, seconds = grouped.poll()
                    if status != 200:
                        raise RuntimeError(f"grouped poll after a write answered {status}")
                    group_polls.append(seconds)
                    group_bytes.append(sent)
                row["group_poll_ms"] = statistics.median(group_polls) * 1000
                row["group_poll_kb"] = statistics.median(group_bytes) / 1000
                # Windows far enough apart that the range snapped to 3 digits differs (a
                # repeated range is answered from the cache).
                group_zooms = []
                for n in range(cfg["zooms"]):
                    low = steps // 3 + n * 7919 % max(1, steps // 4)
                    group_zooms.append(timed_get(http, f"/projects/{project}/series?{GROUPED}"
                                                       f"&xmin={low}&xmax={low + 1000}"))
                row["group_zoom_ms"] = statistics.median(group_zooms) * 1000
                zooms, zoom_server = [], []
                for n in range(cfg["zooms"]):
                    low = steps // 2 + n * 7919 % max(1, steps // 4)
                    zooms.append(timed_get(http, f"/projects/{project}/series?xmin={low}"
                                                 f"&xmax={low + 1000}"))
                    zoom_server.append(http.last_server_ms)
                row["zoom_ms"] = statistics.median(zooms) * 1000
                row["zoom_server_ms"] = statistics.median(zoom_server)
                wide = [timed_get(http, f"/projects/{project}/series?xmin={steps // 4 + shift}"
                                        f"&xmax={3 * steps // 4 + shift}")
                        for shift in (n * steps // 50 for n in range(cfg["zooms"]))]
                row["wide_ms"] = statistics.median(wide) * 1000
            else:
                # Enough parallel pages and zooms that every worker serves the project.
                def visit(n: int, url: str = ours.url) -> float:
                    client = Http(url)
                    try:
                        timed_get(client, f"/projects/{project}")
                        return timed_get(client, f"/projects/{project}/series?xmin={n * 1000}"
                                                 f"&xmax={n * 1000 + 1000}")
                    finally:
                        client.close()
                with concurrent.futures.ThreadPoolExecutor(4 * workers) as pool:
                    list(pool.map(visit, range(8 * workers)))
            memory = worker_memory(ours)
            for index, name in enumerate(("rss", "pss", "uss")):
                row[f"{name}_{workers}w_mb"] = max(m[index] for m in memory) / 2**20
            http.close()
        finally:
            ours.stop()
    # A rebuild by either restart would have replaced the manifest's generation.
    row["rebuilt"] = "yes" if generation(store, project) != built else "no"
    log(f"history {project}: {row}")
    if row["points"] <= cfg["theirs_max_points"]:
        row.update(theirs(work, project, src, runs, steps, metrics, log))
    if not os.environ.get("HISTORY_BENCH_KEEP"):
        shutil.rmtree(data, ignore_errors=True)
    return row


def theirs(work: Path, project: str, src: Path, runs: int, steps: int, metrics: int,
           log) -> dict:
    """Trackio's Metrics page call after a start, and after a write, on its own copy."""
    data = work / f"history-theirs-{project}"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(src, data)
    log(f"history {project}: trackio beside")
    server = start_theirs(data, work)
    try:
        http = Http(server.url)
        http.conn.timeout = THEIRS_TIMEOUT_S
        payload = batch_payload(project, runs)
        try:
            status, _body, first = http.post_json("/api/get_logs_batch", payload)
            write_rows(data / f"{project}.db", runs, steps + 100, metrics)
            status2, _body, after = http.post_json("/api/get_logs_batch", payload)
        except TimeoutError:
            log(f"history {project}: trackio gave no answer within {THEIRS_TIMEOUT_S} s")
            return {"theirs_timeout": True, "theirs_rss_mb": server.peak_rss / 2**20}
        except OSError as exc:  # its server died (out of memory on a busy machine, say)
            log(f"history {project}: trackio failed: {exc!r}; see {work / 'theirs.log'}")
            return {}
        finally:
            http.close()
        if status != 200 or status2 != 200:
            return {}
        return {"theirs_first_s": first, "theirs_poll_ms": after * 1000,
                "theirs_rss_mb": server.peak_rss / 2**20}
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def section(work: Path, quick: bool, log) -> str:
    cfg = dict(QUICK if quick else FULL)
    if os.environ.get("HISTORY_BENCH_SIZE"):
        cfg["sizes"] = [tuple(int(x) for x in os.environ["HISTORY_BENCH_SIZE"].split(","))]
    rows = [(size, measure(work, size, cfg, log)) for size in cfg["sizes"]]
    lines = [f"### {NUMBER}. {TITLE}", "",
             "Our server: gunicorn gthread, 8 threads; store built by the first page, then the "
             "server restarted. Each start first serves a two-row project of the same chart shapes (specs "
             "compile once per process, seconds whatever the data), then the timed page. "
             "Poll: one row per run written, then the page's refresh "
             "(tick off); EMA-smoothed: the page with `smoother=ema&smoothing=60`, then its "
             "refresh after a write (the EMA depends on every earlier point). Grouped: the page "
             f"with `{GROUPED}` (a mean line and min–max band per group), its refresh after a "
             "write (only what moved in each group: its points past the members' former last "
             "steps; in brackets the bytes sent, compressed) and a 1,000-step zoom. Zoom: "
             "`/series?xmin=&xmax=` over a 1,000-step window of every panel, "
             "measured by the client, and in brackets the app's own time (its `Server-Timing` "
             "header: without the wire and the client's decompression); "
             "wide zoom: over half the history (read through the min/max pyramid). "
             "RSS / PSS / USS (from /proc/PID/smaps_rollup): the largest worker after page, "
             "polls and zooms. RSS counts every mapped store page it touched; PSS splits each "
             "shared page among the processes mapping it; USS (private) counts a mapped page "
             "too while only one process maps it, so the 2- and 4-worker USS is the memory "
             "each further worker adds. Trackio: `get_logs_batch` (its Metrics page's call).", "",
             "| points | first page, builds store | build points/s | store on disk | "
             "first page after restart | poll after a write (server) | EMA-smoothed page / poll | "
             "grouped page / poll / zoom | "
             "1,000-step zoom (server) | wide zoom | "
             "RSS / PSS / USS, 1 worker | RSS / PSS / USS, 2 workers | RSS / PSS / USS, 4 workers | "
             "rebuilt at restarts | "
             "trackio first call | trackio after a write | trackio RSS |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (runs, steps, metrics), r in rows:
        theirs_cells = ("—", "—", "—")
        if "theirs_first_s" in r:
            theirs_cells = (f"{r['theirs_first_s']:.1f} s", f"{r['theirs_poll_ms']:.0f} ms",
                            f"{r['theirs_rss_mb']:.0f} MB")
        elif r.get("theirs_timeout"):
            theirs_cells = (f"> {THEIRS_TIMEOUT_S} s", "—", f"{r['theirs_rss_mb']:.0f} MB")
        cold = (f"{r['cold_s']:.1f} s", f"{r['points'] / r['cold_s'] / 1e6:.2f} M") \
            if "cold_s" in r else ("— (kept)", "—")
        lines.append(
            f"| {r['points'] / 1e6:.1f} M ({runs}×{metrics}×{steps:,}) | {cold[0]} | "
            f"{cold[1]} | {r['store_mb']:.0f} MB | "
            f"{r['restart_s'] * 1000:.0f} ms | {r['poll_ms']:.0f} ms ({r['poll_server_ms']:.0f} ms) | "
            f"{r['ema_page_s']:.1f} s / {r['ema_poll_ms']:.0f} ms | "
            f"{r['group_page_s']:.1f} s / {r['group_poll_ms']:.0f} ms "
            f"({r['group_poll_kb']:.1f} kB) / "
            f"{r['group_zoom_ms']:.0f} ms | "
            f"{r['zoom_ms']:.0f} ms ({r['zoom_server_ms']:.0f} ms) | "
            f"{r['wide_ms']:.0f} ms | "
            f"{r['rss_1w_mb']:.0f} / {r['pss_1w_mb']:.0f} / {r['uss_1w_mb']:.0f} MB | "
            f"{r['rss_2w_mb']:.0f} / {r['pss_2w_mb']:.0f} / {r['uss_2w_mb']:.0f} MB | "
            f"{r['rss_4w_mb']:.0f} / {r['pss_4w_mb']:.0f} / {r['uss_4w_mb']:.0f} MB | "
            f"{r['rebuilt']} | " + " | ".join(theirs_cells) + " |")
    lines += ["", f"Load average when measured: {os.getloadavg()[0]:.1f}. \"Rebuilt\": whether "
              "any restart (1, 2, then 4 workers) built the store again instead of mapping it."]
    return "\n".join(lines) + "\n"
