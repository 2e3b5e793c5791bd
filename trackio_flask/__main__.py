"""Run `python -m trackio_flask show|demo`."""

from .cli import main

raise SystemExit(main())
