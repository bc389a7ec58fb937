"""
uvicorn's httptools HTTP protocol, with limits on the request head.

uvicorn puts no deadline on a request head and no limit on its size with
httptools: a client sending a byte a second is never dropped, and one sending
a megabyte of headers has it buffered. `RealtimeHttpToolsProtocol` (selected
with uvicorn's `http=` option, as `paychain.serve` does) adds both, for plain
requests and WebSocket handshakes alike:

- the head of a request (request line and headers) must be complete within
  `HEAD_TIMEOUT` seconds of the connection being made, or of the request's
  first byte on a kept-alive connection: otherwise `408` and the connection
  is closed;
- a head over `MAX_HEAD_BYTES` is answered `431` and the connection is closed,
  before more of it is buffered.

Bytes are counted as they reach the parser, in slices of at most `SLICE`
bytes; a head that begins inside a slice (a pipelined request) is counted
from the slice's start, so the count never falls short.

`log_config()` is uvicorn's default logging with query strings kept out of
its access and handshake lines (`accesslog.QueryRedactingFilter`).
"""

from __future__ import annotations

import asyncio
import copy
import http
from typing import Any

from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .accesslog import QueryRedactingFilter

HEAD_TIMEOUT = 10.0
MAX_HEAD_BYTES = 64 * 1024
SLICE = 16 * 1024


def error_response(status: http.HTTPStatus) -> bytes:
    body = f"{status.value} {status.phrase}\n".encode("ascii")
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("ascii") + body


class RealtimeHttpToolsProtocol(HttpToolsProtocol):
    head_pending = True
    head_bytes = 0
    head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_head()
        super().connection_lost(exc)

    # --- the head's deadline and size --------------------------------------------

    def start_head(self) -> None:
        self.head_pending = True
        self.head_bytes = 0
        if self.head_deadline is None:
            self.head_deadline = self.loop.call_later(HEAD_TIMEOUT, self.head_timed_out)

    def stop_head(self) -> None:
        self.head_pending = False
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def head_timed_out(self) -> None:
        self.head_deadline = None
        if self.head_pending:
            self.refuse(http.HTTPStatus.REQUEST_TIMEOUT)

    def refuse(self, status: http.HTTPStatus) -> None:
        self.stop_head()
        if not self.transport.is_closing():
            self.logger.info("Refused a request head: %s %s", status.value, status.phrase)
            self.transport.write(error_response(status))
            self.transport.close()

    # --- parser callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self.head_pending:
            self.start_head()
            # Counted from the start of the slice it began in (see data_received).
            self.head_bytes = -1

    def on_headers_complete(self) -> None:
        self.stop_head()
        super().on_headers_complete()

    # --- bytes in -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if len(data) <= SLICE:
            self.feed(data)
            return
        for start in range(0, len(data), SLICE):
            if self.transport.is_closing():
                return
            protocol = self.transport.get_protocol()
            if protocol is not self:  # upgraded to a WebSocket: the rest is its
                assert isinstance(protocol, asyncio.Protocol)
                protocol.data_received(data[start:])
                return
            self.feed(data[start : start + SLICE])

    def feed(self, chunk: bytes) -> None:
        if self.transport.is_closing():
            return
        super().data_received(chunk)
        if self.head_pending:
            if self.head_bytes < 0:  # the head began inside this chunk
                self.head_bytes = 0
            self.head_bytes += len(chunk)
            if self.head_bytes > MAX_HEAD_BYTES:
                self.refuse(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)


PROTOCOL = f"{__name__}:{RealtimeHttpToolsProtocol.__name__}"


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, `QueryRedactingFilter` on each
    of its handlers (for `uvicorn.run(log_config=...)`)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": QueryRedactingFilter}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_query")
    return config
