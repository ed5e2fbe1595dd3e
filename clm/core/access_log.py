"""The server's access log without secrets or look-ups of personal data.

The link behind a survey, an unsubscribe page, an open pixel or a tracked click is itself the
key (`/s/{token}`, `/u/{token}`, `/t/o/{token}`, `/t/c/{token}`), and a customer look-up puts an
email address or phone number in the query string: each would sit in plain text in every log
file and log shipper. `RedactSecrets` rewrites the request line of uvicorn's access log records
before any handler sees them: `/s/***`, `?email=***`.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote_plus

MASK = "***"
# the page or link whose path segment is a secret
_TOKEN_PATH = re.compile(r"^(/(?:s|u|t/o|t/c)/)[^/?#]+")
# query parameters whose values are personal data or secrets (compared in lower case)
SECRET_PARAMS = frozenset(
    {"email", "phone", "q", "token", "s", "u", "openid", "unionid", "password", "key", "api_key"}
)


def redact_target(target: str) -> str:
    """A request target (path and query, as uvicorn logs it) with secrets masked."""
    path, sep, query = target.partition("?")
    path = _TOKEN_PATH.sub(lambda m: m.group(1) + MASK, path)
    if not sep:
        return path
    parts = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        secret = eq and unquote_plus(name).lower() in SECRET_PARAMS
        parts.append(f"{name}={MASK}" if secret else pair)
    return f"{path}?{'&'.join(parts)}"


class RedactSecrets(logging.Filter):
    """For the `uvicorn.access` logger: its records carry (client, method, target, version,
    status) as arguments; the target is masked, the rest is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args: Any = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up with the access log redacted (in every worker process)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": "clm.core.access_log.RedactSecrets"}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_secrets"]
    return config
