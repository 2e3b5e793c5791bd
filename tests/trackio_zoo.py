"""A project logged by trackio's own client with every rich type a Trackio user logs: images,
a table, histograms, Markdown reports, alerts, HTML and system metrics of two GPUs.

Several test modules (app tests and the Chromium e2e tests of the Trackio pages) build it;
`log_zoo(data_dir)` writes project ZOO into data_dir with trackio 0.43 in a subprocess, and
`log_more(data_dir, code)` adds to it later (a live refresh). Hostile strings are part of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ZOO = "zoo"
HOSTILE = "<img src=x onerror=alert(1)>"
RUNS = ("alpha", "beta", HOSTILE)

ZOO_CODE = f"""
import math, numpy as np, trackio
HOSTILE = {HOSTILE!r}
rng = np.random.default_rng(7)
for index, name in enumerate({RUNS!r}):
    trackio.init(project={ZOO!r}, name=name, auto_log_cpu=False,
                 config={{"lr": 0.01 * (index + 1), "batch": 32, "model": {{"depth": 4 + index}},
                          "note": HOSTILE if index == 2 else "plain"}})
    for step in range(30):
        trackio.log({{"train/loss": 1 / (step + 1) + index, "eval/acc": step / 30,
                     "train/sub/grad": step * 0.1}}, step=step)
        if step == 12:
            trackio.alert("loss spike " + HOSTILE, text="look at step 12 " + HOSTILE,
                          level=trackio.AlertLevel.WARN if index else trackio.AlertLevel.ERROR)
        if step % 10 == 0:
            pixels = np.full((16, 24, 3), (40 * index + step * 5) % 256, dtype=np.uint8)
            trackio.log({{"samples/image": trackio.Image(pixels, caption=f"{{name}} at {{step}} " + HOSTILE),
                         "weights": trackio.Histogram(rng.normal(index, 1 + step / 30, 500)),
                         "preds": trackio.Table(columns=["id", "text", "score"],
                                                data=[[i, ("long text " * 40 if i == 0 else HOSTILE), i / 3]
                                                      for i in range(5)])}}, step=step)
    trackio.log({{"report": trackio.Markdown("# Report for " + name + "\\n\\n*fine* " + HOSTILE
                                               + "\\n\\n[link](javascript:alert(1))")}}, step=30)
    trackio.log({{"page": trackio.Html("<p>hello</p><script>window.pwned = 1</script>")}}, step=30)
    for gpu in (0, 1):
        for at in range(3):
            trackio.log_system({{f"gpu/{{gpu}}/utilization": 10.0 * gpu + at,
                                f"gpu/{{gpu}}/memory": 100.0 + gpu}})
    trackio.alert("all good", level=trackio.AlertLevel.INFO)
    trackio.finish()
"""


def run_trackio(data_dir: Path, code: str) -> str:
    """Run code with the trackio package in a subprocess (it reads TRACKIO_DIR at import)."""
    env = {**os.environ, "TRACKIO_DIR": str(data_dir), "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def log_zoo(data_dir: Path) -> Path:
    """Write project ZOO with trackio's client; return its database path."""
    run_trackio(data_dir, ZOO_CODE)
    return Path(data_dir) / f"{ZOO}.db"


def log_more(data_dir: Path, code: str) -> None:
    """Log more to ZOO with trackio's client (resuming run alpha); `code` runs after init."""
    run_trackio(data_dir, f"import numpy as np, trackio\n"
                          f"trackio.init(project={ZOO!r}, name='alpha', resume='allow', "
                          f"auto_log_cpu=False)\n" + textwrap.dedent(code) + "\ntrackio.finish()\n")
