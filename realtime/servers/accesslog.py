"""
Access logs without query strings.

Sockets may authenticate with `/ws?token=<jwt>`, and any query string may
carry a secret, so no server log line shows one: `/ws?token=…` is logged as
`/ws?[redacted]`. Both servers are covered through their public hooks:

- uvicorn logs each request on `uvicorn.access` and each WebSocket handshake on
  `uvicorn.error`, the path with its query string among the record's `args`.
  `QueryRedactingFilter` rewrites those arguments; `uvicorn_ws.serve` sets it on
  uvicorn's log handlers, and `paychain.settings.LOGGING` on its own.
- daphne writes its access log through the `action_logger` its `Server` takes;
  `RedactingActionLogger` wraps it (`daphne_server.RealtimeServer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeGuard

REDACTED = "[redacted]"


def redact_query(path: str) -> str:
    """`/ws?token=abc` -> `/ws?[redacted]`; a path without a query is left as it is."""
    head, mark, query = path.partition("?")
    return f"{head}?{REDACTED}" if mark and query else path


def is_path_with_query(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith("/") and "?" in value


class QueryRedactingFilter(logging.Filter):
    """Removes the query string of each request path (an argument starting
    with `/`) among a log record's arguments; the rest passes untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(is_path_with_query(a) for a in args):
            record.args = tuple(redact_query(a) if is_path_with_query(a) else a for a in args)
        return True


class RedactingActionLogger:
    """daphne's `action_logger` (its access log) with query strings removed
    from the `path` it is given."""

    def __init__(self, inner: Callable[[str, str, dict[str, Any]], None]) -> None:
        self.inner = inner

    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        path = details.get("path")
        if is_path_with_query(path):
            details = {**details, "path": redact_query(path)}
        self.inner(protocol, action, details)
