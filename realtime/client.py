"""
One connection's outgoing side: frames written once, coalesced, bounded, and
the way out for a socket that stops reading.

Everything written to a socket (publications, replies, errors) goes through
`Client.write`, in order, and never waits. Under our servers (realtime.servers)
a message's frame bytes, built once for all its sockets (realtime.wsframe), go
straight to the socket's transport: what a socket is given during one turn of
the event loop is joined into one write at the end of that turn. While the
transport is above its high-water mark (the peer is not reading), messages
wait in the client's queue and a writer task writes them as the socket drains.
The queue is bounded by REALTIME["MAX_SOCKET_BUFFER_BYTES"]: a socket past it
is a slow consumer. Its queue is dropped, it gets `error` `slow_consumer` if
that can still be written, then close 4009; if that close cannot be written
within CLOSE_TIMEOUT seconds, or the peer has not gone CLOSE_TIMEOUT seconds
after it, the connection is aborted. No socket ever waits for another one.

Under any other server (the in-process test communicator, a bare daphne or
uvicorn) a Client writes text through ASGI `send` from its writer task; it
still bounds its queue, but can only close, not abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .servers.extension import SocketTransport
from .wsframe import Outgoing

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

# Seconds a closing socket has to take its close frame, and then to go.
CLOSE_TIMEOUT = 5.0
# Most bytes the writer joins into one write while a socket drains.
DRAIN_CHUNK = 256 * 1024


class Client:
    """An open socket on this process: who it is, what it holds, and its writes."""

    __slots__ = (
        "id",
        "channels",
        "user_id",
        "user_type",
        "holds",
        "limit",
        "closing",
        "gone",
        "_send",
        "_transport",
        "_pending",
        "_queue",
        "_queued",
        "_writer",
        "_on_pending",
        "_on_failure",
        "_on_slow",
        "__weakref__",
    )

    def __init__(
        self,
        send: Send,
        transport: SocketTransport | None,
        *,
        limit: int,
        on_pending: Callable[[Client], None],
        on_failure: Callable[[Client], None],
        on_slow: Callable[[Client], None],
    ) -> None:
        self.id = str(uuid.uuid4())
        self.channels: set[str] = set()
        self.user_id: int | None = None
        self.user_type: str = ""
        # Channels whose publications are kept back while the socket catches
        # up on their history: channel -> [(offset, message)].
        self.holds: dict[str, list[tuple[int | None, Outgoing]]] | None = None
        self.limit = limit
        self.closing = False  # no more writes: slow, failed or closing
        self.gone = False  # the server told us the connection ended
        self._send = send
        self._transport = transport
        # Frames for the transport, written together at the end of this turn.
        self._pending: list[bytes] = []
        # Messages waiting for the socket to drain (or, without our
        # transport, for the writer task); made when first needed and dropped
        # once drained: an empty deque is a 64-slot block (~760 bytes) that
        # every idle socket would keep.
        self._queue: deque[Outgoing] | None = None
        self._queued = 0
        self._writer: asyncio.Task[None] | None = None
        self._on_pending = on_pending
        self._on_failure = on_failure
        self._on_slow = on_slow

    def write(self, message: Outgoing) -> None:
        """Write one message. Never waits for the peer: what the server cannot
        take now is queued, up to the limit."""
        if self.closing:
            return
        transport = self._transport
        queue = self._queue
        if transport is not None and not queue and transport.is_writable():
            if not self._pending:
                self._on_pending(self)
            self._pending.append(message.frame)
            return
        if queue is None:
            queue = self._queue = deque()
        queue.append(message)
        self._queued += message.size
        if self._queued > self.limit:
            self._slow()
        elif self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    def write_pending(self) -> None:
        """Write what this turn gave the socket, in one write."""
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        if self.gone:
            return
        assert self._transport is not None
        try:
            self._transport.write(data)
        except Exception as exc:
            self._fail(exc)

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._writable()
                queue = self._queue
                if not queue:
                    break  # dropped meanwhile
                if self._transport is None:
                    message = queue.popleft()
                    self._queued -= message.size
                    await self._send({"type": "websocket.send", "text": message.text})
                    continue
                self.write_pending()
                chunk: list[bytes] = []
                size = 0
                while queue and size < DRAIN_CHUNK:
                    message = queue.popleft()
                    self._queued -= message.size
                    chunk.append(message.frame)
                    size += len(message.frame)
                self._transport.write(b"".join(chunk))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
        finally:
            self._writer = None
            if not self._queue:
                self._queue = None

    async def flush(self, timeout: float) -> bool:
        """Wait until everything queued went to the server; False on timeout."""
        self.write_pending()
        writer = self._writer
        if writer is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(writer)
        except TimeoutError:
            return False
        return True

    def _fail(self, exc: BaseException) -> None:
        if self.closing:
            return
        logger.info("Writing to client %s failed (%s); dropping it", self.id, exc)
        self._stop_writing()
        self._on_failure(self)

    def _slow(self) -> None:
        logger.warning(
            "Client %s is a slow consumer (%s bytes waiting); disconnecting it",
            self.id,
            self._queued,
        )
        self._stop_writing()
        self._on_slow(self)

    def _stop_writing(self) -> None:
        self.closing = True
        self._pending.clear()
        self._queue = None
        self._queued = 0
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
            self._writer = None

    async def close(self, code: int, *, last_words: str | None = None) -> None:
        """Write `last_words` (an encoded error) if given, then close with
        `code` once what is queued went out. Bounded by CLOSE_TIMEOUT, then
        the connection is aborted."""
        if self.gone:
            return
        if last_words is not None:
            self.write(Outgoing(last_words))
        self.closing = True
        if not await self.flush(CLOSE_TIMEOUT):
            self.abort("its queue did not drain")
            return
        await self._send_close(code)

    async def cut_off(self, code: int, last_words: str) -> None:
        """Close a slow socket: its queue is gone; `last_words` and the close
        go out if the socket drains within CLOSE_TIMEOUT, else abort."""
        await self._send_close(code, last_words)

    async def _send_close(self, code: int, last_words: str | None = None) -> None:
        if self.gone:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                if last_words is not None:
                    await self._writable()
                    await self._send({"type": "websocket.send", "text": last_words})
                # After every frame written so far, through the same server.
                await self._writable()
                await self._send({"type": "websocket.close", "code": code})
        except TimeoutError:
            self.abort("its close could not be written")
            return
        except Exception as exc:
            logger.debug("Closing client %s failed: %s", self.id, exc)
            return
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort_if_lingering)

    async def _writable(self) -> None:
        if self._transport is not None:
            await self._transport.wait_writable()

    def _abort_if_lingering(self) -> None:
        if not self.gone:
            self.abort("it did not go after its close")

    def abort(self, why: str) -> None:
        if self.gone or self._transport is None:
            return
        logger.info("Dropping the connection of client %s: %s", self.id, why)
        with contextlib.suppress(Exception):
            self._transport.abort()

    def disconnected(self) -> None:
        """The server says the connection is gone."""
        self.gone = True
        self._stop_writing()


# Scope key under which the server's own `send` is kept (see keep_server_send).
SERVER_SEND = "realtime.server_send"


def keep_server_send(application: Any) -> Any:
    """Outermost wrapper of the socket stack: keeps the ASGI server's own
    `send` in the scope. Middleware below (sessions, auth) wraps `send` to
    watch for the accept; a Client writes through the server's `send`
    directly, one call per frame instead of one per wrapper.

    A plain function returning the application's coroutine, not a coroutine
    of its own: this wrapper's frame would stay suspended for as long as each
    socket is open."""

    def app(scope: dict[str, Any], receive: Any, send: Send) -> Awaitable[Any]:
        return application({**scope, SERVER_SEND: send}, receive, send)  # type: ignore[no-any-return]

    return app
