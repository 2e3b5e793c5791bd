"""The `trackio-flask` command: `show` serves a data dir, `demo` writes and serves a live demo,
`export` writes an offline HTML snapshot of a view."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from .settings import SettingError


def _serve(data_dir: Path | None, host: str, port: int) -> None:
    from .app import create_app

    config = {"DATA_DIR": data_dir} if data_dir is not None else {}
    app = create_app(config)
    print(f"* trackio_flask serving {app.config['DATA_DIR']} on http://{host}:{port}", flush=True)
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def _export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from werkzeug.exceptions import BadRequest

    from . import export, storage
    from .history_client import HistoryError, fetch_state
    from .settings import load_settings

    settings = load_settings(overrides={"DATA_DIR": args.dir} if args.dir else None)
    max_points = args.max_points if args.max_points is not None else export.DEFAULT_MAX_POINTS
    if max_points < 1:
        parser.exit(2, "trackio-flask: --max-points must be at least 1\n")
    try:
        storage.validate_project_name(args.project)
        if args.url:
            state, fetched = fetch_state(args.url, args.project)
            print(f"* read {args.project} from {args.url}: {fetched['chunks']} closed chunks",
                  flush=True)
            text = export.snapshot_of(state, args.view, max_points, tuple(settings["PLOT_ORDER"]))
        else:
            text = export.snapshot(Path(settings["DATA_DIR"]), args.project, args.view,
                                   max_points, tuple(settings["PLOT_ORDER"]))
    except (storage.InvalidProjectName, storage.ProjectNotFound) as exc:
        parser.exit(2, f"trackio-flask: no such project: {exc}\n")
    except HistoryError as exc:
        parser.exit(2, f"trackio-flask: --url: {exc}\n")
    except BadRequest as exc:
        parser.exit(2, f"trackio-flask: --view: {exc.description}\n")
    output = args.output or Path(f"{args.project}.html")
    output.write_text(text, encoding="utf-8")
    print(f"* wrote {output} ({output.stat().st_size:,} bytes)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trackio-flask", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("show", "serve the dashboard for a data dir"),
                            ("demo", "write a demo project with a live run and serve it")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--dir", type=Path, default=None,
                             help="data dir (default: $TRACKIO_DIR or Trackio's default)")
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=7860)
    export = commands.add_parser("export", help="write one self-contained HTML file of a view "
                                                "(opens from disk, no server)")
    export.add_argument("project")
    export.add_argument("--dir", type=Path, default=None,
                        help="data dir (default: $TRACKIO_DIR or Trackio's default)")
    export.add_argument("--url", default=None,
                        help="read the project from a dashboard at this base URL (its history "
                             "URLs, which caches in between keep) instead of a data dir")
    export.add_argument("--view", default="",
                        help="the view as a page URL's query, e.g. 'run_ids=a,b&smoothing=5'")
    export.add_argument("-o", "--output", type=Path, default=None,
                        help="the file to write (default: <project>.html)")
    export.add_argument("--max-points", type=int, default=None,
                        help="every logged point (shown once zoomed in) for the charts that "
                             "fit under this many points in all (default 250,000); the others "
                             "keep the dashboard's downsampled points")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            return _export(parser, args)
        if args.command == "demo":
            from . import demo

            data_dir = args.dir or Path(os.environ.get("TRACKIO_DIR", ".demo-data"))
            demo.prepare(data_dir)
            stop = threading.Event()
            demo.start_live_run(data_dir, stop)
            try:
                _serve(data_dir, args.host, args.port)
            finally:
                stop.set()
        else:
            _serve(args.dir, args.host, args.port)
    except SettingError as exc:
        parser.exit(2, f"trackio-flask: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
