"""The long fuzz run (`make fuzz`): at least FUZZ_EXAMPLES requests per route and API name.

Prints the answers' counts by status per route, then every distinct failure (5xx, error logged,
warning from our code, hang) with the shortest request that caused it. Exits 1 on any failure.

    FUZZ_EXAMPLES=10000 .venv/bin/python tests/fuzz_run.py [--only TEXT] [--seed N] [--jobs N]

At 10,000 requests per target this takes hours on one core; --jobs (FUZZ_JOBS) spreads the
targets over processes, each with its own data dir and app.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fuzzing import Fuzz, Outcome, Target, all_targets  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402


class Tally:
    """Counts by route and status, and the shortest example of each failure."""

    def __init__(self) -> None:
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.slowest: dict[str, float] = defaultdict(float)
        self.failures: dict[str, Outcome] = {}
        self.failure_counts: Counter = Counter()
        self.failure_routes: dict[str, Counter] = defaultdict(Counter)

    def add(self, outcome: Outcome) -> None:
        route = outcome.req.route
        self.statuses[route]["hang" if outcome.status is None else outcome.status] += 1
        self.slowest[route] = max(self.slowest[route], outcome.seconds)
        if not outcome.problems:
            return
        key = outcome.signature
        self.failure_counts[key] += 1
        self.failure_routes[key][route] += 1
        size = len(repr(outcome.req)) + len(repr(outcome.after or ""))
        best = self.failures.get(key)
        if best is None or size < len(repr(best.req)) + len(repr(best.after or "")):
            self.failures[key] = outcome

    def merge(self, other: Tally) -> None:
        for route, counts in other.statuses.items():
            self.statuses[route].update(counts)
            self.slowest[route] = max(self.slowest[route], other.slowest[route])
        for key, outcome in other.failures.items():
            self.failure_counts[key] += other.failure_counts[key]
            self.failure_routes[key].update(other.failure_routes[key])
            best = self.failures.get(key)
            if best is None or len(repr(outcome.req)) < len(repr(best.req)):
                self.failures[key] = outcome

    def requests(self, route: str) -> int:
        return sum(self.statuses[route].values())

    def show(self) -> None:
        width = max(len(route) for route in self.statuses) + 2
        print(f"\n{'route'.ljust(width)}{'requests':>9}{'max s':>8}  statuses")
        for route in sorted(self.statuses, key=lambda r: (r.startswith("after"), r)):
            counts = self.statuses[route]
            shown = "  ".join(f"{status}:{n}" for status, n in sorted(
                counts.items(), key=lambda item: str(item[0])))
            print(f"{route.ljust(width)}{sum(counts.values()):>9}{self.slowest[route]:>8.2f}  {shown}")
        print(f"\n{len(self.failures)} distinct failure(s)")
        for key, count in self.failure_counts.most_common():
            routes = ", ".join(f"{r} ×{n}" for r, n in self.failure_routes[key].most_common())
            print(f"\n[{count}×] {key}\n  on: {routes}")
            print("  " + self.failures[key].report().replace("\n", "\n  "))


def explore(fuzz: Fuzz, target: Target, wanted: int, tally: Tally, start_seed: int) -> None:
    """Generate requests for one target until it has had `wanted` of them (no shrinking)."""
    round_number = 0
    while tally.requests(target.id) < wanted:
        before = tally.requests(target.id)

        @seed(start_seed + round_number)
        @settings(max_examples=wanted - before, phases=[Phase.generate], deadline=None,
                  database=None, suppress_health_check=list(HealthCheck))
        @given(req=fuzz.strategy(target))
        def one(req):
            for outcome in fuzz.check(req):
                tally.add(outcome)

        one()
        round_number += 1
        if tally.requests(target.id) == before:
            break  # Hypothesis found nothing new to try


def fuzz_targets(ids: list[str], wanted: int, start_seed: int, with_warmup: bool) -> Tally:
    """One worker: its own data dir and app, these targets in turn."""
    # Each request's log records are judged by the fuzzer; none need printing.
    logging.getLogger().addHandler(logging.NullHandler())
    targets = {target.id: target for target in all_targets()}
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="trackio-fuzz-") as scratch:
        fuzz = Fuzz(Path(scratch))
        for outcome in fuzz.warmup if with_warmup else ():
            tally.add(outcome)
        for target_id in ids:
            started = time.perf_counter()
            explore(fuzz, targets[target_id], wanted, tally, start_seed)
            print(f"{target_id}: {tally.requests(target_id)} requests in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="fuzz only targets whose id contains this text")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "0")))
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", "1")))
    args = parser.parse_args()
    wanted = int(os.environ.get("FUZZ_EXAMPLES", "10000"))
    ids = [t.id for t in all_targets() if not args.only or args.only in t.id]
    jobs = max(1, min(args.jobs, len(ids)))
    tally = Tally()
    if jobs == 1:
        tally = fuzz_targets(ids, wanted, args.seed, True)
    else:
        with ProcessPoolExecutor(jobs) as pool:
            parts = [pool.submit(fuzz_targets, ids[i::jobs], wanted, args.seed, i == 0)
                     for i in range(jobs)]
            for part in parts:
                tally.merge(part.result())
    tally.show()
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
