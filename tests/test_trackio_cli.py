"""The unmodified trackio 0.43 client and CLI against this server, with the limiter at its
defaults: every served API name is driven at least once, with a logged image, table,
histogram, markdown report, trace, alert and artifact read back."""

from __future__ import annotations

import json
import threading

import pytest
from servers import serving
from test_compat_trackio import run_trackio, run_trackio_json
from test_trackio_api_reads import assert_same, kw, our_answers, trackio_answers

from trackio_flask import create_app
from trackio_flask.trackio_api import TrackioApi

pytest.importorskip("trackio", reason="trackio is a dev dependency (pip install -e '.[dev]')")

TOKEN = "cli-token"

CLIENT = """
    import json, pathlib, sys, trackio, numpy as np
    from trackio.remote_client import RemoteClient
    server = sys.argv[1]
    work = pathlib.Path(sys.argv[2])
    (work / "weights.bin").write_bytes(b"weights")
    (work / "notes.txt").write_text("notes")
    trackio.init(project="cli", name="main", config={"lr": 0.01}, server_url=server,
                 auto_log_cpu=False)
    for step in range(20):
        trackio.log({"train/loss": 1 / (step + 1), "note": "n"})
    trackio.log({"img": trackio.Image(np.full((6, 6, 3), 200, dtype=np.uint8), caption="grey"),
                 "tbl": trackio.Table(columns=["a", "b"], data=[[1, "x"]]),
                 "hist": trackio.Histogram([1, 2, 2, 3]),
                 "md": trackio.Markdown("# Report\\nall fine")}, step=20)
    trackio.log({"chat": trackio.Trace(messages=[{"role": "user", "content": "hi there"}])},
                step=21)
    trackio.log_system({"cpu/0/util": 3.0})
    trackio.alert("loss spike", text="have a look", level=trackio.AlertLevel.ERROR)
    art = trackio.Artifact("weights", type="model")
    art.add_file(str(work / "weights.bin"))
    trackio.log_artifact(art, aliases=["best"])
    trackio.save(str(work / "notes.txt"))
    trackio.finish()
    trackio.init(project="cli", name="main", resume="allow", server_url=server,
                 auto_log_cpu=False)
    trackio.log({"train/loss": 0.01})
    used = trackio.use_artifact("weights:best")
    fetched = pathlib.Path(used.download(str(work / "download")))
    trackio.finish()
    trackio.init(project="cli", name="scratch", server_url=server, auto_log_cpu=False)
    trackio.log({"x": 1})
    trackio.finish()

    client = RemoteClient(server)
    results = {"downloaded": sorted(p.name for p in fetched.rglob("*") if p.is_file())}
    calls = [
        ("get_run_configs", {"project": "cli"}),
        ("get_logs_batch", {"project": "cli", "runs": [{"run": "main"}], "scalar_only": True}),
        ("get_system_logs_batch", {"project": "cli", "runs": [{"run": "main"}]}),
        ("get_trace_steps", {"project": "cli", "run": "main"}),
        # `trackio get snapshot` sends its step where trackio's server expects run_id.
        ("get_snapshot", {"project": "cli", "run": "main", "step": 20}),
        ("get_tab_availability", {"project": "cli"}),
        ("get_settings", {}),
        ("get_project_files", {"project": "cli"}),
        ("get_run_mutation_status", {}),
        ("force_sync", {}),
        ("list_artifacts", {"project": "cli"}),
        ("get_run_artifacts", {"project": "cli", "run": "main"}),
        ("get_run_artifact_counts", {"project": "cli"}),
        ("get_artifact_consumers", {"project": "cli", "version_id": 1}),
        ("get_artifact_lineage", {"project": "cli", "version_id": 1}),
        ("get_registries", {}),
        ("log", {"project": "cli", "run": "legacy", "metrics": {"x": 2}, "step": None,
                 "hf_token": None}),
        ("rename_run", {"project": "cli", "old_name": "legacy", "new_name": "legacy2"}),
        ("delete_run", {"project": "cli", "run": "legacy2"}),
        ("get_registry_details", {"registry": "none-here"}),
    ]
    for name, kwargs in calls:
        try:
            results[name] = client.predict(api_name=f"/{name}", **kwargs)
        except Exception as exc:
            results[name] = {"raised": str(exc)}
    print(json.dumps(results))
"""

CLI = """
    import contextlib, io, json, sys
    from trackio import cli
    space = sys.argv[1]
    commands = {
        "projects": ["list", "projects", "--json"],
        "runs": ["list", "runs", "--project", "cli", "--json"],
        "metrics": ["list", "metrics", "--project", "cli", "--run", "main", "--json"],
        "system-metrics": ["list", "system-metrics", "--project", "cli", "--run", "main",
                           "--json"],
        "alerts": ["list", "alerts", "--project", "cli", "--json"],
        "traces": ["list", "traces", "--project", "cli", "--json"],
        "reports": ["list", "reports", "--project", "cli", "--run", "main", "--json"],
        "artifacts": ["list", "artifacts", "--project", "cli", "--json"],
        "run": ["get", "run", "--project", "cli", "--run", "main", "--json"],
        "metric": ["get", "metric", "--project", "cli", "--run", "main", "--metric",
                   "train/loss", "--json"],
        "project": ["get", "project", "--project", "cli", "--json"],
        "system-metric": ["get", "system-metric", "--project", "cli", "--run", "main",
                          "--metric", "cpu/0/util", "--json"],
        # Not --level: trackio's CLI sends it where the server expects run_id (so does
        # trackio's own server, which then finds no alerts).
        "get-alerts": ["get", "alerts", "--project", "cli", "--run", "main", "--json"],
        "report": ["get", "report", "--project", "cli", "--run", "main", "--report", "md",
                   "--json"],
        "artifact": ["get", "artifact", "--project", "cli", "--name", "weights", "--json"],
        "query": ["query", "project", "--project", "cli", "--sql",
                  "SELECT COUNT(*) AS n FROM alerts", "--json"],
    }
    out = {}
    for key, argv in commands.items():
        sys.argv = ["trackio", "--space", space, *argv]
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                cli.main()
        except SystemExit as exc:
            out[key] = {"exit": str(exc)}
            continue
        out[key] = json.loads(buffer.getvalue())
    print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The server (default limits) after trackio's client and CLI ran against it."""
    root = tmp_path_factory.mktemp("cli")
    data_dir, client_dir = root / "server", root / "client"
    data_dir.mkdir()
    client_dir.mkdir()
    app = create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True})
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()
    inner = app.wsgi_app

    def recording(environ, start_response):
        def start(status, headers, exc_info=None):
            with lock:
                seen.append((environ["PATH_INFO"], int(status[:3])))
            return start_response(status, headers, exc_info)
        return inner(environ, start)

    app.wsgi_app = recording
    with serving(app) as url:
        server = f"{url}/?write_token={TOKEN}"
        client = json.loads(run_trackio_json(client_dir, CLIENT.replace(
            "sys.argv[1]", repr(server)).replace("sys.argv[2]", repr(str(root)))))
        cli = json.loads(run_trackio_json(client_dir, CLI.replace("sys.argv[1]",
                                                                  repr(f"{url}/"))))
    status = run_trackio(data_dir, "from trackio import cli; import sys; "
                                   "sys.argv = ['trackio', 'status']; cli.main()")
    app.wsgi_app = inner
    return {"app": app, "data_dir": data_dir, "seen": seen, "client": client, "cli": cli,
            "status": status}


def test_every_served_name_was_called_and_none_was_limited_or_failed(session):
    called = {path.removeprefix("/api/") for path, _ in session["seen"]
              if path.startswith("/api/")}
    served = set(TrackioApi.READS) | set(TrackioApi.WRITES) | {"upload"}
    assert served - called == set()
    codes = {code for _, code in session["seen"]}
    assert 429 not in codes and not {code for code in codes if code >= 500}
    failed = [(path, code) for path, code in session["seen"] if code >= 400]
    assert failed == [("/api/get_registry_details", 400)]  # no registry exists here


def test_the_cli_reads_back_every_kind_of_value(session):
    cli = session["cli"]
    assert "cli" in cli["projects"]["projects"]
    assert cli["runs"]["runs"] == ["main", "scratch"]  # "legacy" was renamed, then deleted
    assert {"hist", "img", "md", "note", "tbl", "train/loss"} <= set(cli["metrics"]["metrics"])
    assert cli["system-metrics"]["system_metrics"] == ["cpu/0/util"]
    assert [a["title"] for a in cli["get-alerts"]["alerts"]] == ["loss spike"]
    assert [a["level"] for a in cli["alerts"]["alerts"]] == ["error"]
    assert cli["traces"]["traces"][0]["messages"][0]["content"] == "hi there"
    assert "# Report" in json.dumps(cli["report"])
    assert [r["report"] for r in cli["reports"]["reports"]] == ["md"]
    assert [a["name"] for a in cli["artifacts"]["artifacts"]] == ["weights"]
    assert sorted(cli["artifact"]["aliases"]) == ["best", "latest"]
    assert cli["run"]["num_logs"] == 23 and cli["run"]["last_step"] == 22
    assert cli["metric"]["values"][-1]["value"] == 0.01
    assert cli["project"]["num_runs"] == 2
    assert cli["system-metric"]["values"][0]["cpu/0/util"] == 3.0
    assert cli["query"]["rows"] == [{"n": 1}]


def test_trackio_status_reads_the_servers_files(session):
    assert "1 local trackio project(s)" in session["status"]


def test_the_client_calls_answer_trackios_shapes(session):
    client = session["client"]
    assert client["downloaded"] == ["weights.bin"]
    assert client["get_run_mutation_status"] == {"spaces": False, "allowed": True,
                                                 "auth": "local"}
    assert client["force_sync"] is True and client["delete_run"] is True
    assert client["get_tab_availability"] == {"metrics": True, "system": True, "traces": True,
                                              "media": True, "reports": True, "files": True,
                                              "artifacts": True}
    assert [f["name"] for f in client["get_project_files"]] == ["notes.txt"]
    assert client["get_trace_steps"] == {"total": 1, "steps": [{"step": 21, "count": 1}]}
    assert client["get_snapshot"]["md"][0]["value"]["_value"] == "# Report\nall fine"
    (counts,) = client["get_run_artifact_counts"]
    assert (counts["run_name"], counts["input"], counts["output"]) == ("main", 1, 1)
    # trackio's client raises on the status before it reads the message.
    assert "400" in client["get_registry_details"]["raised"]


def test_the_logged_image_is_served_and_trackio_reads_our_rows(session):
    app, data_dir = session["app"], session["data_dir"]
    client = app.test_client()
    logs = client.post("/api/get_logs", json=["cli", "main"]).json["data"]
    image = next(row["img"] for row in logs if "img" in row)
    assert image["caption"] == "grey"
    with client.get("/file", query_string={"path": image["file_path"]}) as response:
        assert response.status_code == 200 and response.mimetype == "image/png"
        assert response.data.startswith(b"\x89PNG")
    calls = [("get_logs", kw(project="cli", run="main")),
             ("get_alerts", kw(project="cli")),
             ("get_traces", kw(project="cli", run="main")),
             ("get_artifact_manifest", kw(project="cli", name="weights", spec="best")),
             ("get_run_summary", kw(project="cli", run="main"))]
    assert_same(calls, our_answers(client, calls), trackio_answers(data_dir, calls))
