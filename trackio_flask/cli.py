"""The `trackio-flask` command: `show` serves a data dir, `demo` writes and serves a live demo."""

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
    args = parser.parse_args(argv)
    try:
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
