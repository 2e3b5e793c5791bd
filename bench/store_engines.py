"""Arrow IPC (memory-mapped) against DuckDB as the series store's engine, on the same columns.

Usage: python -m bench.store_engines [--runs 10 --steps 500000 --metrics 20] [--work DIR]

Measures, per engine, in a fresh child process each (so RSS is the engine's, not the writer's):
writing runs × metrics float64 columns, the size on disk, opening the store and reading every
series whole (what a restart's first page touches), reading one 1,000-step window of every
series (a deep zoom), appending one row per run (a live tick), and the reader's RSS and USS.
The columns are synthetic (numpy), so SQLite decoding is left out of both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

WRITE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import numpy as np
    engine, folder, runs, steps, metrics = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:6])
    rng = np.random.default_rng(0)
    step = np.arange(steps, dtype=np.float64)
    names = [f"m{m}" for m in range(metrics)]
    started = time.perf_counter()
    if engine == "arrow":
        import pyarrow as pa
        for run in range(runs):
            cols = [pa.array(np.arange(steps, dtype=np.int64) * runs + run), pa.array(step),
                    pa.array(step)] + [pa.array(rng.random(steps)) for _ in names]
            table = pa.Table.from_arrays(cols, names=["id", "step", "time", *names])
            with pa.OSFile(str(folder / f"r{run}.arrow"), "wb") as sink, \\
                    pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
    else:
        import duckdb
        import pyarrow as pa
        con = duckdb.connect(str(folder / "store.duckdb"))
        columns = ", ".join(f"{n} DOUBLE" for n in names)
        con.execute(f"CREATE TABLE series (run INTEGER, id BIGINT, step DOUBLE, time DOUBLE, {columns})")
        for run in range(runs):
            batch = pa.table({"run": np.full(steps, run, dtype=np.int32),
                              "id": np.arange(steps, dtype=np.int64) * runs + run,
                              "step": step, "time": step,
                              **{n: rng.random(steps) for n in names}})
            con.execute("INSERT INTO series SELECT * FROM batch")
        con.close()
    print(json.dumps({"write_s": time.perf_counter() - started}))
""")

READ = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import numpy as np, psutil
    engine, folder, runs, steps, metrics = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:6])
    names = [f"m{m}" for m in range(metrics)]
    out = {}
    started = time.perf_counter()
    total = 0.0
    if engine == "arrow":
        import pyarrow as pa
        tables = []
        for run in range(runs):
            source = pa.memory_map(str(folder / f"r{run}.arrow"))
            tables.append(pa.ipc.open_file(source).read_all())
            source.close()
        out["open_s"] = time.perf_counter() - started
        series = {(r, n): t.column(n).chunk(0).to_numpy(zero_copy_only=True)
                  for r, t in enumerate(tables) for n in names}
        steps_of = [t.column("step").chunk(0).to_numpy(zero_copy_only=True) for t in tables]
        for values in series.values():
            total += float(np.nanmax(values))
        out["read_all_s"] = time.perf_counter() - started
        started = time.perf_counter()
        low = steps // 2
        for r in range(runs):
            a, b = np.searchsorted(steps_of[r], [low, low + 1000])
            for n in names:
                total += float(series[(r, n)][a:b].max())
        out["window_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for r in range(runs):  # an append is a new small file per run
            small = pa.Table.from_arrays([pa.array([steps * runs + r]), pa.array([float(steps)]),
                                          pa.array([float(steps)])] +
                                         [pa.array([0.5]) for _ in names],
                                         names=["id", "step", "time", *names])
            with pa.OSFile(str(folder / f"tail{r}.arrow"), "wb") as sink, \\
                    pa.ipc.new_file(sink, small.schema) as writer:
                writer.write_table(small)
        out["append_s"] = time.perf_counter() - started
    else:
        import duckdb
        con = duckdb.connect(str(folder / "store.duckdb"))
        out["open_s"] = time.perf_counter() - started
        for r in range(runs):
            got = con.execute(f"SELECT {', '.join(names)} FROM series WHERE run = ? ORDER BY id",
                              [r]).fetchnumpy()
            for n in names:
                total += float(np.nanmax(got[n]))
        out["read_all_s"] = time.perf_counter() - started
        started = time.perf_counter()
        low = steps // 2
        for r in range(runs):
            got = con.execute(f"SELECT {', '.join(names)} FROM series WHERE run = ? AND step >= ? "
                              "AND step < ?", [r, low, low + 1000]).fetchnumpy()
            for n in names:
                total += float(got[n].max())
        out["window_s"] = time.perf_counter() - started
        started = time.perf_counter()
        placeholders = ", ".join("?" * (4 + metrics))
        for r in range(runs):
            con.execute(f"INSERT INTO series VALUES ({placeholders})",
                        [r, steps * runs + r, float(steps), float(steps)] + [0.5] * metrics)
        out["append_s"] = time.perf_counter() - started
        con.close()
    info = psutil.Process().memory_full_info()
    out.update(rss_mb=info.rss / 2**20, uss_mb=info.uss / 2**20, check=total)
    print(json.dumps(out))
""")


def child(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=1800, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="store-engines-"))
    sizes = [str(args.runs), str(args.steps), str(args.metrics)]
    points = args.runs * args.steps * args.metrics
    print(f"{points / 1e6:.1f} M points ({args.runs} runs × {args.metrics} metrics × "
          f"{args.steps:,} steps), load average {os.getloadavg()[0]:.1f}")
    print("| engine | write | on disk | open | read every series | 1,000-step window, every "
          "series | append a row per run | reader RSS / USS |")
    print("|---|---|---|---|---|---|---|---|")
    for engine in ("arrow", "duckdb"):
        folder = work / engine
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        wrote = child(WRITE, engine, str(folder), *sizes)
        disk = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        read = child(READ, engine, str(folder), *sizes)
        print(f"| {engine} | {wrote['write_s']:.1f} s | {disk:.0f} MB | "
              f"{read['open_s'] * 1000:.0f} ms | {read['read_all_s'] * 1000:.0f} ms | "
              f"{read['window_s'] * 1000:.1f} ms | {read['append_s'] * 1000:.1f} ms | "
              f"{read['rss_mb']:.0f} / {read['uss_mb']:.0f} MB |")
        shutil.rmtree(folder, ignore_errors=True)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
