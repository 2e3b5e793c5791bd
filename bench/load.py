"""N simulated viewers polling at the *.hf.space interval; the largest N that stays fast and clean."""

from __future__ import annotations

import asyncio
import html
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from .measure import POLL, batch_payload, stats

HF_INTERVAL_S = 3.5
P95_BUDGET_MS = 250.0


async def _ours_viewer(client: httpx.AsyncClient, url: str, until: float, out: dict) -> None:
    await asyncio.sleep(random.random() * HF_INTERVAL_S)
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await client.get(url)
            out["latency"].append(time.perf_counter() - started)
            if response.status_code == 200:
                url = html.unescape(POLL.search(response.content).group(1).decode())
            elif response.status_code != 204:
                out["errors"] += 1
        except (httpx.HTTPError, AttributeError):
            out["errors"] += 1
        await asyncio.sleep(HF_INTERVAL_S)


async def _theirs_viewer(client: httpx.AsyncClient, payload: dict, until: float,
                         out: dict) -> None:
    await asyncio.sleep(random.random() * HF_INTERVAL_S)
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await client.post("/api/get_logs_batch", json=payload)
            out["latency"].append(time.perf_counter() - started)
            if response.status_code != 200:
                out["errors"] += 1
        except httpx.HTTPError:
            out["errors"] += 1
        await asyncio.sleep(HF_INTERVAL_S)


async def _level(base: str, viewers: int, seconds: float, ours_url: str | None,
                 payload: dict | None) -> dict:
    out = {"latency": [], "errors": 0}
    limits = httpx.Limits(max_connections=viewers, max_keepalive_connections=viewers)
    headers = {"Accept-Encoding": "gzip, deflate, br"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0,
                                 headers=headers) as client:
        until = time.monotonic() + seconds
        if ours_url is not None:
            tasks = [_ours_viewer(client, ours_url, until, out) for _ in range(viewers)]
        else:
            tasks = [_theirs_viewer(client, payload, until, out) for _ in range(viewers)]
        await asyncio.gather(*tasks)
    return {"viewers": viewers, "requests": len(out["latency"]), "errors": out["errors"],
            **stats(out["latency"])}


def sustained(base: str, levels: list[int], seconds: float, ours_url: str | None = None,
              project: str = "", runs: int = 0) -> tuple[int, list[dict]]:
    """Step through `levels`; return the largest passing level and every level's figures."""
    payload = None if ours_url is not None else batch_payload(project, runs)
    results, best = [], 0
    for viewers in levels:
        # Own thread: the caller may be inside Playwright's event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            result = pool.submit(asyncio.run,
                                 _level(base, viewers, seconds, ours_url, payload)).result()
        result["ok"] = result["errors"] == 0 and result["p95_ms"] < P95_BUDGET_MS
        results.append(result)
        if not result["ok"]:
            break
        best = viewers
    return best, results
