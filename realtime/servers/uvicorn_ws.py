"""
uvicorn's sans-I/O WebSocket protocol with our transport extension.

Run it through uvicorn's own extension point, `--ws` with a dotted path:

    uvicorn paychain.asgi:application \\
        --ws realtime.servers.uvicorn_ws:RealtimeWebSocketProtocol

(`paychain.serve` does.) uvicorn's protocol already tracks the asyncio
transport's flow control in its `writable` event: `pause_writing()` clears it
above the transport's high-water mark, `resume_writing()` sets it below the
low one, and `connection_lost()` sets it so no waiter is left behind.
"""

from __future__ import annotations

import weakref

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from . import uvicorn_http
from .extension import EXTENSION


class AsyncioSocketTransport:
    """`SocketTransport` over one uvicorn protocol and its asyncio transport.

    It holds the protocol weakly: the protocol holds the scope that holds this
    object, and a cycle would keep every closed connection alive until the next
    full garbage collection."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = weakref.ref(protocol)

    def is_writable(self) -> bool:
        protocol = self._protocol()
        return protocol is None or protocol.writable.is_set()

    async def wait_writable(self) -> None:
        protocol = self._protocol()
        if protocol is not None:
            await protocol.writable.wait()

    def write(self, data: bytes) -> None:
        protocol = self._protocol()
        # Between whole frames, and never after a close: what uvicorn's own
        # send() does with the bytes websockets' protocol gives it.
        if (
            protocol is None
            or protocol.close_sent
            or protocol.disconnected
            or protocol.transport.is_closing()
        ):
            raise ConnectionError("The WebSocket is closing or closed.")
        protocol.transport.write(data)

    def abort(self) -> None:
        protocol = self._protocol()
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()

    def buffered_bytes(self) -> int:
        protocol = self._protocol()
        if protocol is None or protocol.transport is None:
            return 0
        return protocol.transport.get_write_buffer_size()


class RealtimeWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        # uvicorn builds the scope and schedules the application task here; the
        # task starts on a later turn of the loop and reads the same dict, so
        # the extension is in place before the application sees the scope.
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # only set when the handshake is accepted
        if scope is not None:
            scope["extensions"][EXTENSION] = AsyncioSocketTransport(self)


PROTOCOL = f"{__name__}:{RealtimeWebSocketProtocol.__name__}"


def serve(app: str, *, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
    """Run uvicorn as production does (docs/benchmarks.md): this module's
    protocol, per-message deflate off (about 40 KB of zlib state per socket, for
    frames of a few hundred bytes), no lifespan (the application has none),
    uvloop, and httptools with the head limits of `uvicorn_http` and query strings
    kept out of the logs. `app` is an import string, as uvicorn's workers need."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        ws=PROTOCOL,
        ws_per_message_deflate=False,
        lifespan="on",
        loop="uvloop",
        http=uvicorn_http.PROTOCOL,
        log_config=uvicorn_http.log_config(),
    )
