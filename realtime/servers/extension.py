"""
What our servers add to a WebSocket scope, beyond plain ASGI.

ASGI gives an application no view of the server's write buffer: uvicorn's
`send()` blocks while the socket is paused, daphne buffers without limit, and
neither can drop a connection whose peer stops reading. Our server adapters
(`uvicorn_ws`, `daphne_server`) put one `SocketTransport` per WebSocket into
`scope["extensions"][EXTENSION]`; `transport_of(scope)` reads it, and gives
`None` under any other server (the in-process test communicator included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

EXTENSION = "paychain.transport"


@runtime_checkable
class SocketTransport(Protocol):
    """One WebSocket's connection, as the server holds it."""

    def is_writable(self) -> bool:
        """False while the server's buffer for this socket is above its
        high-water mark (the client is not reading fast enough)."""
        ...

    async def wait_writable(self) -> None:
        """Return once writable again, or at once when the connection is lost."""
        ...

    def write(self, data: bytes) -> None:
        """Write finished WebSocket frames (realtime.wsframe) to the
        connection as they are. Raises ConnectionError once the connection is
        closing or gone."""
        ...

    def abort(self) -> None:
        """Drop the TCP connection now, discarding buffered data."""
        ...

    def buffered_bytes(self) -> int:
        """Bytes waiting in the server for this socket (best effort; 0 if unknown)."""
        ...


def transport_of(scope: Mapping[str, Any]) -> SocketTransport | None:
    """The socket transport our server put into `scope`, if any."""
    extensions = scope.get("extensions") or {}
    return extensions.get(EXTENSION)
