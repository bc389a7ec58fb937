"""Query strings never reach a log: the filter on uvicorn's loggers and the
wrapper of daphne's access log (live: tests/test_live_security.py)."""

from __future__ import annotations

import logging

from realtime.servers.accesslog import QueryRedactingFilter, RedactingActionLogger


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, None)


def test_the_filter_removes_the_query_of_a_logged_path():
    line = record('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/ws?token=abc.def", "1.1", 101)
    assert QueryRedactingFilter().filter(line)
    assert line.getMessage() == '1.2.3.4:5 - "GET /ws?[redacted] HTTP/1.1" 101'


def test_the_filter_leaves_paths_without_a_query_and_other_arguments_alone():
    line = record("%s %s %s", "/health", "why? because", 3)
    assert QueryRedactingFilter().filter(line)
    assert line.getMessage() == "/health why? because 3"


def test_daphnes_access_log_gets_the_path_without_its_query():
    seen = []
    log = RedactingActionLogger(lambda *entry: seen.append(entry))
    log("websocket", "connected", {"path": "/ws?token=abc", "client": "1.2.3.4:5"})
    log("http", "complete", {"path": "/health", "status": 200})
    assert seen == [
        ("websocket", "connected", {"path": "/ws?[redacted]", "client": "1.2.3.4:5"}),
        ("http", "complete", {"path": "/health", "status": 200}),
    ]
