"""
daphne with our transport extension.

daphne's documented extension points take a `Server` subclass:
`CommandLineInterface.server_class` (the `daphne` command; `paychain.serve
--server daphne` runs `RealtimeCommandLineInterface`) and the runserver
command's `server_cls` (`realtime/management/commands/runserver.py`).

A Twisted transport tells a registered streaming producer when its write
buffer goes over its limit (`pauseProducing`, more than 64 KiB buffered) and
when it has drained (`resumeProducing`, once it is empty). Each WebSocket's
`TwistedSocketTransport` registers itself as that producer and turns the calls
into an asyncio event: daphne runs Twisted on the asyncio loop of the
application, so no thread is crossed.

A transport takes one producer. daphne hands the TCP transport over from
twisted.web's `HTTPChannel` to the WebSocket protocol on the upgrade, but the
channel stays registered as the transport's producer (it registers itself in
`connectionMade`, and only its `loseConnection` unregisters it), so it is
unregistered first. The channel loses nothing by it: it is still handling the
upgrade request, which never finishes, and while it handles a request its own
`pauseProducing`/`resumeProducing` only forward to a request producer, which
daphne never registers.

The transport calls `stopProducing` when the connection is lost, but only if
the producer is still registered, and autobahn unregisters it in
`dropConnection` before every close it makes itself (closing handshakes, ping
timeouts). So the server also ends each socket's waits from
`protocol_disconnected`, which daphne calls from the protocol's `onClose`
however the connection ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

import daphne.server
from daphne.cli import CommandLineInterface
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from .accesslog import RedactingActionLogger
from .extension import EXTENSION


@implementer(IPushProducer)
class TwistedSocketTransport:
    """`SocketTransport` over one Twisted transport, as its push producer."""

    def __init__(self, transport: Any, protocol: Any) -> None:
        self._transport = transport
        self._protocol = protocol
        self._lost = False
        self._writable = asyncio.Event()
        self._writable.set()
        transport.unregisterProducer()
        transport.registerProducer(self, True)

    def connection_lost(self) -> None:
        """Nothing will drain now: nobody waits, now or later."""
        self._lost = True
        self._writable.set()

    # IPushProducer: called by the transport.

    def pauseProducing(self) -> None:  # noqa: N802
        if not self._lost:
            self._writable.clear()

    def resumeProducing(self) -> None:  # noqa: N802
        self._writable.set()

    def stopProducing(self) -> None:  # noqa: N802
        self.connection_lost()

    # SocketTransport: called by the application.

    def is_writable(self) -> bool:
        return self._writable.is_set()

    async def wait_writable(self) -> None:
        await self._writable.wait()

    def write(self, data: bytes) -> None:
        # Between whole messages (autobahn writes each one at once), and only
        # while the WebSocket is open.
        if self._lost or self._protocol.state != self._protocol.STATE_OPEN:
            raise ConnectionError("The WebSocket is closing or closed.")
        self._transport.write(data)

    def abort(self) -> None:
        self._transport.abortConnection()

    def buffered_bytes(self) -> int:
        # twisted.internet.abstract.FileDescriptor keeps what it has not sent
        # in `dataBuffer` from `offset` (and, until its next write, in a list
        # Twisted does not expose): a lower bound, 0 where those are absent.
        transport = self._transport
        try:
            return max(0, len(transport.dataBuffer) - transport.offset)
        except (AttributeError, TypeError):
            return 0


class RealtimeServer(daphne.server.Server):
    """daphne's server, adding our transport to every WebSocket scope, and
    keeping query strings (tokens) out of its access log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("action_logger") is not None:
            kwargs["action_logger"] = RedactingActionLogger(kwargs["action_logger"])
        super().__init__(*args, **kwargs)
        self.socket_transports: dict[Any, TwistedSocketTransport] = {}

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        if scope.get("type") == "websocket":
            transport = TwistedSocketTransport(protocol.transport, protocol)
            self.socket_transports[protocol] = transport
            scope.setdefault("extensions", {})[EXTENSION] = transport
        queue = super().create_application(protocol, scope)
        if queue is None:  # daphne no longer knows the protocol: no application runs
            self.forget_socket(protocol)
        return queue

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self.forget_socket(protocol)

    def forget_socket(self, protocol: Any) -> None:
        transport = self.socket_transports.pop(protocol, None)
        if transport is not None:
            transport.connection_lost()


class RealtimeCommandLineInterface(CommandLineInterface):
    """The `daphne` command, serving with `RealtimeServer`."""

    server_class = RealtimeServer


# daphne's -v levels; it has no finer control of its logging.
VERBOSITY = {"critical": 0, "error": 0, "warning": 0, "info": 1, "debug": 2, "trace": 3}


def serve(app: str, *, host: str, port: int, log_level: str = "info") -> None:
    """Run the `daphne` command with `RealtimeServer`: one process, one core.
    daphne negotiates no per-message deflate and has no lifespan."""
    RealtimeCommandLineInterface().run(
        ["--bind", host, "--port", str(port), "--verbosity", str(VERBOSITY[log_level]), app]
    )
