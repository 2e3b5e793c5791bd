"""Only the "viewers sustained" measurement (table 5), for a quicker look: python -m bench.viewers.

Usage: python -m bench.viewers --work DIR [--runs 32] [--steps 5000] [--ours 10,25,50] [--theirs 1,2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .datasets import build, copy, start_appender
from .load import sustained
from .measure import Http, Viewer
from .procs import start_ours, start_theirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.viewers", description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--ours", default="10,25,50,100")
    parser.add_argument("--theirs", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    project = f"bench{args.runs}x{args.steps}"
    source = args.work / f"src-{project}"
    if not (source / f"{project}.db").exists():
        build(source, project, args.runs, args.steps)
    results = {}
    for side in ("ours", "theirs"):
        data = copy(source, args.work / f"viewers-{side}-{project}")
        server = (start_ours if side == "ours" else start_theirs)(data, args.work)
        writer = start_appender(data, project, args.runs, args.steps + 10_000, 600)
        try:
            levels = [int(n) for n in getattr(args, side).split(",")]
            if side == "ours":
                url = Viewer(Http(server.url), project).url
                best, detail = sustained(server.url, levels, args.seconds, ours_url=url)
            else:
                best, detail = sustained(server.url, levels, args.seconds, project=project,
                                         runs=args.runs)
            results[side] = {"best": best, "levels": detail}
        finally:
            writer.terminate()
            writer.wait()
            server.stop()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
