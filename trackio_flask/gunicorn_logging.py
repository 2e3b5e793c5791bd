"""A gunicorn logger that keeps write tokens out of access logs (`--logger-class`).

The documented `?write_token=` link reaches gunicorn's access log before the app can move the
token into a cookie, so the logger redacts it from the request line, path, query, referer and
any logged header or environ value.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

TOKEN_IN_URL = re.compile(r"((?:^|[?&;\s])write_token=)[^&;\s\"]*", re.IGNORECASE)
SECRET_KEYS = ("write-token", "write_token", "cookie", "authorization")


def redact(value: Any) -> Any:
    """The value with every `write_token=` parameter's value replaced."""
    if isinstance(value, str) and "write_token" in value.lower():
        return TOKEN_IN_URL.sub(r"\1[redacted]", value)
    return value


class RedactingLogger(Logger):
    """gunicorn's logger, minus write tokens."""

    def atoms(self, resp, req, environ, request_time) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if any(secret in key.lower() for secret in SECRET_KEYS):
                atoms[key] = "[redacted]"
            else:
                atoms[key] = redact(value)
        return atoms
