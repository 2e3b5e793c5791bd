"""What Flask-Limiter adds to the cheapest request (an unchanged poll, 204): python -m bench.limiter.

Both apps serve the same small project in-process (no sockets, so the difference is the
limiter's own work); rounds alternate and the medians are reported.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project(data_dir: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from builders import ProjectDB

    db = ProjectDB(data_dir / "p.db")
    db.log_many("r", range(100), lambda s: {"loss": 1 / (s + 1)})
    db.close()


def _poll_url(client) -> str:
    import html
    import re

    body = client.get("/projects/p", headers={"Accept-Encoding": "identity"}).data
    return html.unescape(re.search(rb'hx-get="([^"]+)"', body).group(1).decode())


def per_request_us(enabled: bool, data_dir: Path, requests: int) -> float:
    from trackio_flask import create_app

    app = create_app({"DATA_DIR": data_dir, "RATELIMIT_ENABLED": enabled,
                      "RATELIMIT_REFRESH": "1000000 per minute"})
    client = app.test_client()
    url = _poll_url(client)
    assert client.get(url).status_code == 204
    started = time.perf_counter()
    for _ in range(requests):
        client.get(url)
    return (time.perf_counter() - started) / requests * 1e6


def measure(rounds: int = 7, requests: int = 2000) -> dict[str, float]:
    """Median µs per unchanged poll with and without the limiter, and their difference."""
    data_dir = Path(tempfile.mkdtemp(prefix="limiter-bench-"))
    _project(data_dir)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for enabled in (True, False):
            times[enabled].append(per_request_us(enabled, data_dir, requests))
    on, off = statistics.median(times[True]), statistics.median(times[False])
    return {"with_limiter_us": round(on, 1), "without_us": round(off, 1),
            "limiter_us": round(on - off, 1)}


def main() -> int:
    print(json.dumps(measure()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
