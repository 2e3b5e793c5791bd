"""`make bench`: trackio_flask and the trackio package side by side on the same data; writes BENCHMARKS.md.

Usage: python -m bench.run [--quick] [--out BENCHMARKS.md] [--work DIR] [--only NAMES] [--update]

Tables 1-7 are the core run; every module in bench/tables/ adds one more table after them
(`NUMBER`, `TITLE`, `section(work, quick, log) -> str`), in NUMBER order. `--only core` runs
tables 1-7 alone, `--only history,attackers` only those modules. `--update` replaces only the
tables it ran in an existing --out file and says so in its header, keeping the others: the
long tables can then be refreshed one at a time on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

from . import browser as chromium_bench
from . import limiter as limiter_bench
from .crowd import crowd, meets_goal
from .datasets import SIZES, copy, source_project, start_appender, trackio_env
from .measure import Http, Viewer, batch_payload, stats
from .procs import start_ours, start_theirs

FULL = {"sizes": SIZES, "repeats": 5, "per_round": 10,
        "live_s": 20, "rpm_s": 60, "settle_s": 5, "sdk_rows": 50_000,
        "crowd": {"runs": 32, "steps": 5000, "levels": (100, 300, 1000), "theirs": (10, 100),
                  "arrive": 30, "hold": 60},
        "limiter": (7, 2000)}  # rounds, requests per round
QUICK = {"sizes": [(2, 300, 12)], "repeats": 2, "per_round": 3, "live_s": 3, "rpm_s": 3, "settle_s": 2,
         "sdk_rows": 2000,
         "crowd": {"runs": 2, "steps": 300, "levels": (5,), "theirs": (2,), "arrive": 2,
                   "hold": 4},
         "limiter": (1, 50)}


def ratio(theirs: float, ours: float) -> str:
    if not ours or ours != ours or theirs != theirs:
        return "—"
    return f"{theirs / ours:,.1f}×"


def fmt(value: float, unit: str = "") -> str:
    if value != value:
        return "—"
    if unit == "B":
        for scale, name in ((1e6, "MB"), (1e3, "kB")):
            if value >= scale:
                return f"{value / scale:,.2f} {name}"
        return f"{value:,.0f} B"
    return f"{value:,.1f}{unit}"


def table(title: str, rows: list[tuple[str, str, str, str]], note: str = "") -> str:
    lines = [f"### {title}", "", "| measure | trackio_flask | trackio | trackio ÷ ours |",
             "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def refresh_unchanged(ours_base: str, theirs_base: str, project: str, runs: int,
                      cfg: dict) -> dict:
    """Interleaved rounds: our poll (204) vs trackio's get_logs_batch for the same runs."""
    ours_http, theirs_http = Http(ours_base), Http(theirs_base)
    viewer = Viewer(ours_http, project)
    payload = batch_payload(project, runs)
    ours_t, theirs_t, ours_b, theirs_b, statuses = [], [], [], [], set()
    # Keep each side's round near 10 s however slow one call is (trackio reads every row).
    _, _, probe = theirs_http.post_json("/api/get_logs_batch", payload)
    theirs_per_round = max(1, min(cfg["per_round"], int(10 / max(probe, 1e-3))))
    for _ in range(cfg["repeats"]):
        for _ in range(cfg["per_round"]):
            status, size, seconds = viewer.poll()
            statuses.add(status)
            ours_t.append(seconds)
            ours_b.append(size)
        for _ in range(theirs_per_round):
            status, body, seconds = theirs_http.post_json("/api/get_logs_batch", payload)
            assert status == 200, status
            theirs_t.append(seconds)
            theirs_b.append(theirs_http.last_wire_bytes)
    ours_http.close()
    theirs_http.close()
    return {"ours": {**stats(ours_t), "bytes": statistics.median(ours_b), "statuses": statuses},
            "theirs": {**stats(theirs_t), "bytes": statistics.median(theirs_b)},
            "first_load": {"ours_s": viewer.first_load_s, "ours_bytes": viewer.first_load_bytes}}


def refresh_live(ours_base: str, theirs_base: str, ours_dir: Path, theirs_dir: Path,
                 project: str, runs: int, steps: int, metrics: int, cfg: dict) -> dict:
    """A writer appends one step per run per second to both copies; each side polls once a second."""
    seconds = cfg["live_s"]
    writers = [start_appender(d, project, runs, steps, seconds + 2, metrics)
               for d in (ours_dir, theirs_dir)]
    ours_http, theirs_http = Http(ours_base), Http(theirs_base)
    viewer = Viewer(ours_http, project)
    payload = batch_payload(project, runs)
    ours_t, theirs_t, ours_b, theirs_b = [], [], [], []
    time.sleep(1.2)
    deadline = time.time() + seconds
    while time.time() < deadline:
        tick = time.time()
        status, size, took = viewer.poll()
        if status == 200:
            ours_t.append(took)
            ours_b.append(size)
        time.sleep(max(0.0, 0.5 - (time.time() - tick)))
        status, body, took = theirs_http.post_json("/api/get_logs_batch", payload)
        theirs_t.append(took)
        theirs_b.append(theirs_http.last_wire_bytes)
        time.sleep(max(0.0, 1.0 - (time.time() - tick)))
    for writer in writers:
        writer.wait(timeout=30)
    ours_http.close()
    theirs_http.close()
    return {"ours": {**stats(ours_t), "bytes": statistics.median(ours_b or [0]),
                     "changed": len(ours_t)},
            "theirs": {**stats(theirs_t), "bytes": statistics.median(theirs_b or [0])}}


SDK_OURS = textwrap.dedent("""
    import json, statistics, sys, time
    import trackio_flask as tf
    n = int(sys.argv[2])
    tf.init(project="sdk", name="bench", data_dir=sys.argv[1])
    values = {f"train/m{i}": float(i) for i in range(12)}
    calls = []
    start = time.perf_counter()
    for step in range(n):
        before = time.perf_counter()
        tf.log(values)
        calls.append(time.perf_counter() - before)
    tf.finish()
    total = time.perf_counter() - start
    print(json.dumps({"call_us": statistics.median(calls) * 1e6, "rows_per_s": n / total}))
""")
SDK_THEIRS = SDK_OURS.replace("import trackio_flask as tf", "import trackio as tf").replace(
    'tf.init(project="sdk", name="bench", data_dir=sys.argv[1])',
    'tf.init(project="sdk", name="bench")')


def sdk(work: Path, rows: int, repeats: int) -> dict:
    """log() call overhead and sustained rows/s, interleaved subprocess runs."""
    results: dict[str, list[dict]] = {"ours": [], "theirs": []}
    for attempt in range(repeats):
        for side, code in (("ours", SDK_OURS), ("theirs", SDK_THEIRS)):
            data_dir = work / f"sdk-{side}-{attempt}"
            done = subprocess.run([sys.executable, "-c", code, str(data_dir), str(rows)],
                                  env=trackio_env(data_dir), capture_output=True, text=True,
                                  timeout=900, check=True)
            results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {side: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for side, runs in results.items()}


def extra_tables() -> list:
    """The modules of bench/tables/, each one table, in their NUMBER order."""
    from . import tables

    found = [importlib.import_module(f"{tables.__name__}.{info.name}")
             for info in pkgutil.iter_modules(tables.__path__)]
    return sorted(found, key=lambda module: module.NUMBER)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the CI smoke test)")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder")
    parser.add_argument("--only", default="", help="comma-separated: core and/or bench/tables "
                                                    "module names (default: everything)")
    parser.add_argument("--update", action="store_true",
                        help="replace only the tables run in an existing --out file")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    work = args.work or Path(tempfile.mkdtemp(prefix="trackio-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    only = {name for name in args.only.split(",") if name}
    extras = extra_tables()
    unknown = only - {"core"} - {module.__name__.rsplit(".", 1)[1] for module in extras}
    if unknown:
        parser.error(f"unknown --only names: {', '.join(sorted(unknown))}")
    sections: list[str] = []

    def log(message: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {message}", flush=True)

    if not only or "core" in only:
        sections += core_tables(cfg, work, log)
    for module in extras:
        if not only or module.__name__.rsplit(".", 1)[1] in only:
            log(f"table {module.NUMBER}: {module.TITLE}")
            sections.append(module.section(work, args.quick, log))
    if args.update and args.out.exists():
        _update(args.out, sections, argv, time.time() - started, args.quick)
    else:
        _write(args.out, sections, argv, time.time() - started, args.quick)
    log(f"wrote {args.out}")
    return 0


def core_tables(cfg: dict, work: Path, log) -> list[str]:
    """Tables 1-7: refresh, live refresh, first load, idle tab, crowd, SDK, peak memory."""
    sections: list[str] = []
    peak = {"ours": 0, "theirs": 0}
    unchanged_rows, live_rows = [], []
    with chromium_bench.chromium() as browser:
        for runs, steps, metrics in cfg["sizes"]:
            label = f"{runs} runs × {metrics} metrics × {steps:,} steps"
            project, source = source_project(work, runs, steps, metrics, log)
            ours_dir = copy(source, work / f"ours-{project}")
            theirs_dir = copy(source, work / f"theirs-{project}")
            ours, theirs = start_ours(ours_dir, work), start_theirs(theirs_dir, work)
            try:
                # Both servers have served the page once before it is timed (a cold start
                # reads the whole file, which is not what a visitor to a running Space meets).
                Http(ours.url).get(f"/projects/{project}")
                Http(theirs.url).get(f"/?project={project}")
                log(f"{label}: first load in Chromium")
                loads = {"ours": [], "theirs": []}
                for _ in range(max(1, cfg["repeats"] // 2)):
                    loads["ours"].append(chromium_bench.first_load(
                        browser, f"{ours.url}/projects/{project}", ours=True))
                    loads["theirs"].append(chromium_bench.first_load(
                        browser, f"{theirs.url}/?project={project}", ours=False))
                log(f"{label}: refresh with no change")
                unchanged = refresh_unchanged(ours.url, theirs.url, project, min(runs, 64), cfg)
                log(f"{label}: refresh with a live writer")
                live = refresh_live(ours.url, theirs.url, ours_dir, theirs_dir, project,
                                    min(runs, 64), steps, metrics, cfg)
                log(f"{label}: hover and zoom response in Chromium")
                feel = chromium_bench.interactions(browser, f"{ours.url}/projects/{project}")
                if (runs, steps, metrics) == cfg["sizes"][0]:
                    log("requests per minute of an idle tab")
                    rpm = {}
                    for host in ("127.0.0.1", "bench.hf.space"):
                        rpm[("ours", host)] = chromium_bench.requests_per_minute(
                            browser, f"http://{host}:{ours.port}/projects/{project}",
                            cfg["rpm_s"], cfg["settle_s"])["per_minute"]
                        rpm[("theirs", host)] = chromium_bench.requests_per_minute(
                            browser, f"http://{host}:{theirs.port}/?project={project}",
                            cfg["rpm_s"], cfg["settle_s"])["per_minute"]
            finally:
                peak["ours"] = max(peak["ours"], ours.peak_rss)
                peak["theirs"] = max(peak["theirs"], theirs.peak_rss)
                ours.stop()
                theirs.stop()
            first = {side: {"drawn_s": statistics.median(x["drawn_s"] for x in values),
                            "bytes": statistics.median(x["bytes"] for x in values)}
                     for side, values in loads.items()}
            unchanged_rows.append((label, unchanged, first, feel))
            live_rows.append((label, live))

        log("crowd: viewers arrive, open the page once, then poll (live trackio writer)")
        crowd_rows = crowd(work, log=log, **cfg["crowd"])
        log("Flask-Limiter's own cost per request")
        limiter_cost = limiter_bench.measure(*cfg["limiter"])
        log("SDK: log() overhead and sustained rows/s")
        sdk_result = sdk(work, cfg["sdk_rows"], max(1, cfg["repeats"] // 2 + 1))

    sections.append(_unchanged_section(unchanged_rows))
    sections.append(_live_section(live_rows))
    sections.append(_first_load_section(unchanged_rows))
    sections.append(_rpm_section(rpm, cfg["rpm_s"]))
    sections.append(_crowd_section(crowd_rows, cfg["crowd"], limiter_cost))
    sections.append(_sdk_section(sdk_result, cfg["sdk_rows"]))
    sections.append(table("7. Peak memory (RSS) of each server over all runs above", [
        ("peak RSS", fmt(peak["ours"], "B"), fmt(peak["theirs"], "B"),
         ratio(peak["theirs"], peak["ours"]))]))
    return sections


def _timing_rows(ours: dict, theirs: dict) -> list[tuple[str, str, str, str]]:
    return [
        ("server time, median", fmt(ours["median_ms"], " ms"), fmt(theirs["median_ms"], " ms"),
         ratio(theirs["median_ms"], ours["median_ms"])),
        ("server time, p95", fmt(ours["p95_ms"], " ms"), fmt(theirs["p95_ms"], " ms"),
         ratio(theirs["p95_ms"], ours["p95_ms"])),
        ("bytes on the wire (body)", fmt(ours["bytes"], "B"), fmt(theirs["bytes"], "B"),
         ratio(theirs["bytes"], max(ours["bytes"], 1))),
    ]


def _unchanged_section(rows) -> str:
    out = []
    for label, result, _, _ in rows:
        ours, theirs = result["ours"], result["theirs"]
        out.append(table(f"1. Refresh, unchanged — {label}", _timing_rows(ours, theirs),
                         f"Ours answered {sorted(ours['statuses'])}; trackio's is `get_logs_batch` "
           "(scalar_only, all runs) as its Metrics page sends every tick."))
    return "\n".join(out)


def _live_section(rows) -> str:
    out = []
    for label, live in rows:
        ours, theirs = live["ours"], live["theirs"]
        out.append(table(f"2. Refresh, live writer (one step per run per second) — {label}",
                         _timing_rows(ours, theirs),
                         f"Ours: the {ours['changed']} refreshes that carried new data (200)."))
    return "\n".join(out)


def _first_load_section(rows) -> str:
    out = []
    for label, result, first, feel in rows:
        load = result["first_load"]
        out.append(table(f"3. First load, all runs selected — {label}", [
            ("page HTML server time (ours, a later viewer) / one get_logs_batch (trackio)",
             fmt(load["ours_s"] * 1000, " ms"), fmt(result["theirs"]["median_ms"], " ms"),
             ratio(result["theirs"]["median_ms"], load["ours_s"] * 1000)),
            ("page HTML bytes on the wire (ours, with its data)", fmt(load["ours_bytes"], "B"), "—",
             "—"),
            ("Chromium: until the first screen of charts is drawn",
             fmt(first["ours"]["drawn_s"] * 1000, " ms"), fmt(first["theirs"]["drawn_s"] * 1000, " ms"),
             ratio(first["theirs"]["drawn_s"], first["ours"]["drawn_s"])),
            ("Chromium: bytes transferred until then (all requests)",
             fmt(first["ours"]["bytes"], "B"), fmt(first["theirs"]["bytes"], "B"),
             ratio(first["theirs"]["bytes"], first["ours"]["bytes"])),
            ("Chromium: hover → readout, median (ours)", fmt(feel["hover_ms"], " ms"), "—", "—"),
            ("Chromium: zoom → first chart / every chart re-drawn (ours)",
             f"{fmt(feel['zoom_first_chart_ms'], ' ms')} / {fmt(feel['zoom_all_charts_ms'], ' ms')}",
             "—", "—"),
            ("Chromium: console messages (ours)", f"{feel['console_messages']:.0f}", "—", "—"),
        ], "Both servers served the page once before the timed loads (a running Space, not a "
           "cold start)."))
    return "\n".join(out)


def _rpm_section(rpm: dict, seconds: float) -> str:
    rows = []
    for host, name in (("127.0.0.1", "localhost"), ("bench.hf.space", "*.hf.space host")):
        ours, theirs = rpm[("ours", host)], rpm[("theirs", host)]
        rows.append((f"requests per minute, {name}", fmt(ours), fmt(theirs),
                     ratio(theirs, max(ours, 0.01))))
    return table("4. Requests per minute of one open, idle, visible tab", rows,
                 f"Counted in Chromium over {seconds:.0f} s after the page settled (every request "
                 "the tab sent reached the loopback server); the project gets no new data.")


def _crowd_section(rows: list[dict], cfg: dict, limiter_cost: dict | None = None) -> str:
    def ms(value) -> str:
        return "—" if value is None else f"{value:,.0f} ms"

    lines = [f"### 5. Crowd: {cfg['runs']} runs × 12 metrics × {cfg['steps']:,} steps, live writer, "
             f"viewers arrive over {cfg['arrive']:.0f} s and stay {cfg['hold']:.0f} s", "",
             "| server | viewers | poll p50 | poll p95 | page p50 | page p95 | pages served | "
             "errors | 429s | peak worker RSS | bytes/s | generator CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        name = "trackio_flask" if row["side"] == "ours" else "trackio"
        goal = " ✓" if meets_goal(row) else ""
        lines.append(
            f"| {name}{goal} | {row['viewers']:,} | {ms(row['poll_p50_ms'])} | "
            f"{ms(row['poll_p95_ms'])} | {ms(row['page_p50_ms'])} | {ms(row['page_p95_ms'])} | "
            f"{row['pages']:,} of {row['viewers']:,} | {row['errors']:,} | "
            f"{row['throttled']:,} | {fmt(row['peak_worker_rss'], 'B')} | "
            f"{fmt(row['bytes_per_s'], 'B')}/s | {row['generator_cores'] * 100:.0f}% of a core |")
    lines += ["", "Ours runs exactly as the Dockerfile starts it (its CMD and ENV: one gunicorn "
              "process, rate limits on), cold for each level after one warm-up page load; "
              "trackio runs `trackio.show`. Each viewer opens the page once (the 32-run page), "
              "then follows its poller (trackio: `get_logs_batch` for every run) at the page's "
              "interval, each from its own address behind one proxy hop, obeying Retry-After. "
              "trackio's writer commits one step per run per second, run by run. Viewers come "
              "from `bench/crowd.js` (Node's http module), whose own CPU is the last column. "
              "✓ = poll p95 < 250 ms, page p95 < 2 s, no errors, no 429s, worker RSS ≤ 300 MB. "
              "Requests time out after 15 s (counted as errors). Peak worker RSS: the largest single "
              "server process (gunicorn's worker; trackio's one process)."]
    if limiter_cost is not None:
        lines += ["", f"Flask-Limiter's own cost: {limiter_cost['limiter_us']:,.0f} µs per request "
                  f"(an unchanged poll, in-process: {limiter_cost['with_limiter_us']:,.0f} µs with "
                  f"the limiter, {limiter_cost['without_us']:,.0f} µs without; medians of "
                  "interleaved rounds, `python -m bench.limiter`)."]
    return "\n".join(lines) + "\n"


def _sdk_section(result: dict, rows: int) -> str:
    ours, theirs = result["ours"], result["theirs"]
    return table("6. SDK: `log()` overhead and sustained rows/s (12 metrics per row)", [
        ("log() call, median", fmt(ours["call_us"], " µs"), fmt(theirs["call_us"], " µs"),
         ratio(theirs["call_us"], ours["call_us"])),
        ("sustained rows/s (log → finish)", fmt(ours["rows_per_s"]), fmt(theirs["rows_per_s"]),
         ratio(ours["rows_per_s"], theirs["rows_per_s"]).replace("×", "× (ours ÷ trackio)")),
    ], f"{rows:,} rows per run, local SQLite, each side in its own subprocess, interleaved.")


def _command(argv) -> str:
    return ("python -m bench.run " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))).strip()


def _table_number(section: str) -> int:
    """The table number of a section ("### 30. History…" → 30)."""
    return int(section[4:].split(".", 1)[0])


def _split(text: str) -> tuple[str, list[str]]:
    """A report's header and its table sections, each starting at its "### " heading."""
    head, *rest = text.split("\n### ")
    return head.rstrip("\n") + "\n", [f"### {part.rstrip(chr(10))}\n" for part in rest]


def _update(out: Path, sections: list[str], argv, seconds: float, quick: bool) -> None:
    """Put freshly run tables in place of the same-numbered ones of an existing report."""
    head, kept = _split(out.read_text())
    fresh = [part for section in sections for part in _split("\n" + section)[1]]
    replaced = {_table_number(part) for part in fresh}
    merged = [part for part in kept if _table_number(part) not in replaced] + fresh
    merged.sort(key=_table_number)  # stable: a table's sections keep their order
    tables = ", ".join(str(n) for n in sorted(replaced))
    # A note about tables run again now is no longer true: it goes.
    head = "".join(line for line in head.splitlines(keepends=True)
                   if not _stale_note(line, replaced))
    note = (f"Table{'s' if len(replaced) > 1 else ''} {tables} regenerated by "
            f"`{_command(argv)}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in "
            f"{seconds / 60:.1f} minutes (load average {os.getloadavg()[0]:.1f} at the end)"
            f"{' (quick smoke sizes: not representative)' if quick else ''}.\n")
    out.write_text(head + note + "\n" + "\n".join(merged))


def _stale_note(line: str, replaced: set[int]) -> bool:
    """Whether a header line is an earlier `--update`'s note about tables all run again now."""
    match = re.match(r"Tables? ([\d, ]+) regenerated by ", line)
    return bool(match) and {int(n) for n in match.group(1).split(",")} <= replaced


def _write(out: Path, sections: list[str], argv, seconds: float, quick: bool) -> None:
    import trackio

    command = _command(argv)
    header = textwrap.dedent(f"""\
        # Benchmarks: trackio_flask vs the trackio package

        Generated by `{command}` (`make bench`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC,
        {platform.machine()}, Python {platform.python_version()}, trackio {trackio.__version__},
        in {seconds / 60:.1f} minutes{' (quick smoke sizes: not representative)' if quick else ''}.
        Both servers run on this machine, one after the other on copies of the same data written
        by trackio's own `SQLiteStorage.bulk_log`; timings are medians over interleaved rounds,
        measured on loopback (client round trip ≈ server time). The machine is shared and noisy:
        read ratios, not absolute numbers. "trackio ÷ ours" > 1 means ours is faster or smaller.

        """)
    out.write_text(header + "\n".join(sections))


if __name__ == "__main__":
    raise SystemExit(main())
