"""Compatibility with the real `trackio` package: each reads what the other wrote, value for value."""

from __future__ import annotations

import json
import math

import pytest
from trackio_zoo import run_trackio

import trackio_flask as tf
from trackio_flask.live import ProjectStore

pytest.importorskip("trackio", reason="trackio is a dev dependency (pip install -e '.[dev]')")


def run_trackio_json(data_dir, code: str):
    """Run trackio code that prints one JSON document as its last line."""
    return run_trackio(data_dir, code).strip().splitlines()[-1]


def encode(value):
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def test_project_written_by_trackio_reads_identically(data_dir):
    run_trackio(data_dir, """
        import math, trackio
        for index, name in enumerate(["first", "second", "<img src=x onerror=alert(1)>"]):
            trackio.init(project="compat", name=name, config={"lr": 0.1 * (index + 1), "deep": {"k": 1}})
            for step in range(120):
                trackio.log({"train/loss": 1.0 / (step + 1) + index,
                             "eval/acc": float("nan") if step == 7 else step / 120,
                             "inf": math.inf if step % 2 else -math.inf,
                             "nested": {"b": step * 2}})
            trackio.log_system({"cpu/0/utilization": 10.0 + index})
            trackio.finish()
    """)
    dumped = json.loads(run_trackio_json(data_dir, """
        import json, math
        from trackio.sqlite_storage import SQLiteStorage as S
        def enc(v):
            return repr(v) if isinstance(v, float) and not math.isfinite(v) else v
        runs = S.get_run_records("compat")
        out = {"runs": runs, "configs": S.get_all_run_configs("compat"), "logs": {}}
        for run in runs:
            out["logs"][run["id"]] = [{k: enc(v) for k, v in row.items()}
                                      for row in S.get_logs("compat", run["name"], run_id=run["id"])]
        print(json.dumps(out))
    """))
    state = ProjectStore(data_dir, 2**30).get("compat")
    assert {r["id"]: r["name"] for r in dumped["runs"]} == {k: r.name for k, r in state.runs.items()}
    for run_id, rows in dumped["logs"].items():
        columns = state.metrics[run_id]
        assert columns.steps[: columns.length].tolist() == [row["step"] for row in rows]
        for metric in ("train/loss", "eval/acc", "inf"):
            ours = [encode(v) for v in columns.column(metric).tolist()]
            assert ours == [row[metric] for row in rows], metric
        assert columns.column("nested/b").tolist() == [row["nested"]["b"] for row in rows]
        assert state.configs[run_id] == dumped["configs"][run_id]


def test_project_written_by_our_sdk_reads_identically_in_trackio(data_dir):
    runs = {}
    for index, name in enumerate(["ours-a", "ours-b"]):
        run = tf.init(project="ours", name=name, data_dir=data_dir, config={"lr": index + 0.5})
        for step in range(200):
            tf.log({"train/loss": 1.0 / (step + 1), "special": math.nan if step == 3 else math.inf,
                    "eval/acc": step / 200})
        tf.log_system({"cpu/0/utilization": 33.0})
        tf.finish()
        runs[run.id] = name
    dumped = json.loads(run_trackio_json(data_dir, """
        import json, math
        from trackio.sqlite_storage import SQLiteStorage as S
        def enc(v):
            return repr(v) if isinstance(v, float) and not math.isfinite(v) else v
        runs = S.get_run_records("ours")
        print(json.dumps({
            "runs": runs,
            "configs": S.get_all_run_configs("ours"),
            "logs": {r["id"]: [{k: enc(v) for k, v in row.items()}
                               for row in S.get_logs("ours", r["name"], run_id=r["id"])] for r in runs},
            "system": {r["id"]: S.get_system_logs("ours", r["name"], run_id=r["id"]) for r in runs},
        }))
    """))
    assert {r["id"]: r["name"] for r in dumped["runs"]} == runs
    for run_id in runs:
        rows = dumped["logs"][run_id]
        assert [row["step"] for row in rows] == list(range(200))
        assert [row["train/loss"] for row in rows] == [1.0 / (s + 1) for s in range(200)]
        assert rows[3]["special"] == "nan" and rows[4]["special"] == "inf"
        assert dumped["configs"][run_id]["lr"] in (0.5, 1.5)
        assert dumped["system"][run_id][0]["cpu/0/utilization"] == 33.0
