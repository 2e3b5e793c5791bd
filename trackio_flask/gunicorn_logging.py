"""A gunicorn logger that keeps write tokens out of access logs (`--logger-class`).

The documented `?write_token=` link reaches gunicorn's access log before the app can move the
token into a cookie, so the logger redacts it from the request line, path, query, referer and
any logged header or environ value.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

# A query parameter: its name (still percent-encoded, as the client sent it) and its value.
PARAMETER = re.compile(r"((?:^|[?&;\s])([^=&;\s?]+)=)[^&;\s\"]*")
TOKEN_PARAM = "write_token"
SECRET_KEYS = ("write-token", "write_token", "cookie", "authorization")


def redact(value: Any) -> Any:
    """The value with the value of every parameter named `write_token` replaced, however the
    name was percent-encoded (`write%5Ftoken` is the same parameter to the app)."""
    if not isinstance(value, str) or "=" not in value:
        return value
    return PARAMETER.sub(lambda m: m.group(1) + "[redacted]"
                         if unquote_plus(m.group(2)).lower() == TOKEN_PARAM else m.group(0),
                         value)


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
