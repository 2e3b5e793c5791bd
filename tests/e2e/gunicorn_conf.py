"""gunicorn settings for the browser tests: an access log with sub-second request times.

gunicorn's `%(t)s` has one-second resolution; the tests compare request times with the
browser's clock, so every access-log line also carries the request's start (`%(S)s`) and end
(`%(E)s`) as Unix times with microseconds.
"""

from __future__ import annotations

import time

from gunicorn.glogging import Logger


class PreciseLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        end = time.time()
        atoms["E"] = f"{end:.6f}"
        atoms["S"] = f"{end - request_time.total_seconds():.6f}"
        return atoms


logger_class = PreciseLogger
