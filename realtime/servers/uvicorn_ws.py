"""
uvicorn's sans-I/O WebSocket protocol, lean, with our transport extension.

Run it through uvicorn's own extension point, `--ws` with a dotted path:

    uvicorn paychain.asgi:application \\
        --ws realtime.servers.uvicorn_ws:RealtimeWebSocketProtocol

(`paychain.serve` does.) It speaks to the ASGI application exactly as
uvicorn's `WebSocketsSansIOProtocol` does (the same websockets `ServerProtocol`
underneath, the same events, keepalive pings, close handshake, denial
responses, shutdown and log lines), but holds what an idle socket needs and
no more; an idle socket is most of what a real-time server holds:

- no `asyncio.Queue` for the messages to the application (three deques and an
  Event, about 3 KB) but a list made when a message waits, and one future
  while the application waits;
- no `asyncio.Event` for the transport's flow control (a deque, ~0.8 KB) but
  a flag, and futures only while someone waits for the socket to drain;
- the handshake's request and response are not kept once answered (their
  headers, ~3 KB): the scope carries what the application needs of them;
- `__slots__` instead of an instance dict of forty attributes (~1.5 KB).

Flow control: `pause_writing()` above the transport's high-water mark marks
the socket unwritable, `resume_writing()` below the low one writable again,
and `connection_lost()` writable for good, so no waiter is left behind.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import struct
import weakref
from http import HTTPStatus
from typing import Any, Literal, cast
from urllib.parse import unquote

import uvicorn
from uvicorn.config import Config
from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
)
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.exceptions import InvalidState
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from . import uvicorn_http
from .extension import EXTENSION

LOGGER = logging.getLogger("uvicorn.error")
Message = dict[str, Any]


def _status_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


STATUS_PHRASES = {code: _status_phrase(code) for code in range(100, 600)}


class AsyncioSocketTransport:
    """`SocketTransport` over one of our protocols and its asyncio transport.

    It holds the protocol weakly: the protocol holds the scope that holds this
    object, and a cycle would keep every closed connection alive until the next
    full garbage collection."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: RealtimeWebSocketProtocol) -> None:
        self._protocol = weakref.ref(protocol)

    def is_writable(self) -> bool:
        protocol = self._protocol()
        return protocol is None or protocol.is_writable()

    async def wait_writable(self) -> None:
        protocol = self._protocol()
        if protocol is not None:
            await protocol.wait_writable()

    def write(self, data: bytes) -> None:
        protocol = self._protocol()
        # Between whole frames, and never after a close: what the protocol's
        # own send() does with the bytes websockets' protocol gives it.
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


class RealtimeWebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection under uvicorn (see the module's docstring)."""

    __slots__ = (
        "config",
        "app",
        "loop",
        "root_path",
        "asgi_version",
        "app_state",
        "connections",
        "tasks",
        "default_headers",
        "transport",
        "server",
        "client",
        "scheme",
        "scope",
        "conn",
        "response",
        "initial_response",
        "handshake_complete",
        "close_sent",
        "disconnected",
        "close_timer",
        "close_timeout",
        "read_paused",
        "write_paused",
        "messages",
        "receiver",
        "drainers",
        "ping_interval",
        "ping_timeout",
        "ping_timer",
        "pong_timer",
        "pending_ping_payload",
        "ping_sent_at",
        "last_ping_rtt",
        "fragments",
        "fragments_type",
        "__weakref__",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.root_path = config.root_path
        self.asgi_version = config.asgi_version
        self.app_state = app_state
        # Shared server state.
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        # Connection state.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme: Literal["wss", "ws"] = "ws"
        self.scope: dict[str, Any] = None  # type: ignore[assignment]
        extensions = []
        if config.ws_per_message_deflate:
            extensions = [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12,
                    client_max_window_bits=12,
                    compress_settings={"memLevel": 5},
                )
            ]
        self.conn = ServerProtocol(
            extensions=extensions, max_size=config.ws_max_size, logger=LOGGER
        )
        # The handshake's response, from the request until the application
        # accepts or refuses it; then dropped.
        self.response: Response | None = None
        self.initial_response: tuple[int, list[tuple[str, str]], bytes] | None = None
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        self.close_timer: asyncio.TimerHandle | None = None
        self.close_timeout = 10.0
        # Messages for the application (None when there are none), and the
        # future its receive() waits on while there are none.
        self.messages: list[Message] | None = None
        self.receiver: asyncio.Future[None] | None = None
        self.read_paused = False
        # Flow control: futures waiting for the transport to drain, if any.
        self.write_paused = False
        self.drainers: list[asyncio.Future[None]] | None = None
        # Keepalive.
        self.ping_interval = config.ws_ping_interval
        self.ping_timeout = config.ws_ping_timeout
        self.ping_timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.pending_ping_payload: bytes | None = None
        self.ping_sent_at = 0.0
        self.last_ping_rtt = 0.0
        # A fragmented message's frames so far.
        self.fragments: list[bytes] | None = None
        self.fragments_type: Literal["text", "bytes"] = "bytes"

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self)  # type: ignore[arg-type]
        self.transport = cast(asyncio.Transport, transport)
        self.server = get_local_addr(self.transport)
        self.client = get_remote_addr(self.transport)
        self.scheme = "wss" if is_ssl(self.transport) else "ws"
        self.trace("WebSocket connection made")

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_keepalive()
        code = 1005 if self.handshake_complete else 1006
        self.put({"type": "websocket.disconnect", "code": code})
        self.connections.remove(self)  # type: ignore[arg-type]
        self.trace("WebSocket connection lost")
        self.handshake_complete = True
        self.disconnected = True
        self.response = None
        # Unblock any send() waiting to write: asyncio never calls
        # resume_writing() on a transport lost while paused.
        self.resume_writing()
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if exc is None:
            self.transport.close()

    def eof_received(self) -> None:
        pass

    def trace(self, what: str) -> None:
        if LOGGER.level <= TRACE_LOG_LEVEL:
            prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            LOGGER.log(TRACE_LOG_LEVEL, "%s%s", prefix, what)

    def pause_writing(self) -> None:
        """The transport's buffer is above its high-water mark."""
        self.write_paused = True

    def resume_writing(self) -> None:
        """The transport's buffer is below its low-water mark (or gone)."""
        self.write_paused = False
        drainers, self.drainers = self.drainers, None
        for waiter in drainers or ():
            if not waiter.done():
                waiter.set_result(None)

    def is_writable(self) -> bool:
        return not self.write_paused

    async def wait_writable(self) -> None:
        """Return once the transport takes writes again (or the connection is lost)."""
        while self.write_paused:
            waiter = self.loop.create_future()
            if self.drainers is None:
                self.drainers = []
            self.drainers.append(waiter)
            await waiter

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        if self.conn.parser_exc is not None:
            self.handle_parser_exception()
            return
        self.handle_events()

    def shutdown(self) -> None:
        """uvicorn's server is stopping: close with 1012 (or a 500 before the handshake)."""
        self.stop_keepalive()
        if self.close_sent:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
            return
        if self.handshake_complete:
            self.put({"type": "websocket.disconnect", "code": 1012})
            self.conn.send_close(1012)
            self.transport.write(b"".join(self.conn.data_to_send()))
        else:
            self.send_500_response()
        self.transport.close()

    # --- messages to the application --------------------------------------------------

    def put(self, message: Message) -> None:
        if self.messages is None:
            self.messages = []
        self.messages.append(message)
        receiver, self.receiver = self.receiver, None
        if receiver is not None and not receiver.done():
            receiver.set_result(None)

    async def receive(self) -> Message:
        while not self.messages:
            receiver = self.receiver
            if receiver is None or receiver.done():
                receiver = self.receiver = self.loop.create_future()
            await receiver
        message = self.messages.pop(0)
        if not self.messages:
            self.messages = None
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
        return message

    # --- websockets' events -----------------------------------------------------------

    def handle_events(self) -> None:
        for event in self.conn.events_received():
            if isinstance(event, Request):
                self.handle_connect(event)
            elif isinstance(event, Frame):
                opcode = event.opcode
                if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                    self.handle_data(event)
                elif opcode is Opcode.PING:
                    self.handle_ping()
                elif opcode is Opcode.PONG:
                    self.handle_pong(event)
                elif opcode is Opcode.CLOSE:
                    self.handle_close(event)

    def handle_connect(self, event: Request) -> None:
        response = self.conn.accept(event)
        if response.status_code != 101:
            self.handshake_complete = True
            self.close_sent = True
            self.conn.send_response(response)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
            return
        self.response = response
        # websockets (pinned at 17) documents header values as ISO-8859-1.
        headers = [(k.encode("ascii"), v.encode("latin-1")) for k, v in event.headers.raw_items()]
        raw_path, _, query_string = event.path.partition("?")
        subprotocols: list[str] = []
        for header in event.headers.get_all("Sec-WebSocket-Protocol"):
            subprotocols.extend([token.strip() for token in header.split(",")])
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path),
            "raw_path": self.root_path.encode("ascii") + raw_path.encode("ascii"),
            "query_string": query_string.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {
                "websocket.http.response": {},
                EXTENSION: AsyncioSocketTransport(self),
            },
        }
        self.put({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def handle_data(self, event: Frame) -> None:
        data = event.data if isinstance(event.data, bytes) else bytes(event.data)
        if event.opcode is Opcode.CONT:
            if self.fragments is None:
                self.fragments = []
            self.fragments.append(data)
        else:
            self.fragments_type = "text" if event.opcode is Opcode.TEXT else "bytes"
            self.fragments = None if event.fin else [data]
        if not event.fin:
            return
        if self.fragments is not None:
            data = b"".join(self.fragments)
            self.fragments = None
        if self.close_sent:
            # The application is past `websocket.close`: discard the message
            # rather than queue it, so reads go on until the peer's close.
            return
        if self.fragments_type == "text":
            try:
                self.put({"type": "websocket.receive", "text": data.decode()})
            except UnicodeDecodeError:
                LOGGER.exception("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        else:
            self.put({"type": "websocket.receive", "bytes": data})
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def handle_ping(self) -> None:
        self.transport.write(b"".join(self.conn.data_to_send()))

    def handle_pong(self, event: Frame) -> None:
        # Unsolicited and stale pongs (not this ping's payload) are ignored.
        if self.pending_ping_payload is None or bytes(event.data) != self.pending_ping_payload:
            return
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        # With a ping timeout the pong schedules the next ping (without one,
        # send_keepalive_ping already did).
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
            self.schedule_ping()

    def handle_close(self, event: Frame) -> None:
        if self.close_sent:
            # The peer echoed our close frame: the closing handshake is complete.
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
                self.transport.close()
            return
        if not self.transport.is_closing():
            assert self.conn.close_rcvd is not None
            code = self.conn.close_rcvd.code
            reason = self.conn.close_rcvd.reason
            self.put({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()

    def handle_parser_exception(self) -> None:
        assert self.conn.close_sent is not None
        code = self.conn.close_sent.code
        reason = self.conn.close_sent.reason
        self.put({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()

    # --- keepalive ----------------------------------------------------------------------

    def start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self.schedule_ping()

    def stop_keepalive(self) -> None:
        if self.ping_timer is not None:
            self.ping_timer.cancel()
            self.ping_timer = None
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
        self.pending_ping_payload = None

    def schedule_ping(self) -> None:
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self.ping_timer = self.loop.call_later(delay, self.send_keepalive_ping)

    def send_keepalive_ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        # A random payload tells this ping's pong from stale or unsolicited ones.
        self.pending_ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(self.pending_ping_payload)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.ping_timeout is not None:
            self.pong_timer = self.loop.call_later(self.ping_timeout, self.keepalive_timeout)
        else:
            self.schedule_ping()

    def keepalive_timeout(self) -> None:
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self.trace("WebSocket keepalive ping timeout")
        self.conn.fail(1011, "keepalive ping timeout")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()

    # --- the application ----------------------------------------------------------------

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            LOGGER.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                LOGGER.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                LOGGER.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None:
            self.transport.close()

    def send_500_response(self) -> None:
        if self.initial_response or self.handshake_complete:
            return
        response = self.conn.reject(500, "Internal Server Error")
        self.conn.send_response(response)
        self.transport.write(b"".join(self.conn.data_to_send()))

    async def send(self, message: Message) -> None:
        if self.write_paused:
            await self.wait_writable()
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete and self.initial_response is None:
            self.send_handshake(message)
        elif not self.close_sent and self.initial_response is None:
            try:
                self.send_frame(message)
            except InvalidState:
                raise ClientDisconnected() from None
        elif self.initial_response is not None:
            self.send_http_response(message)
        else:
            raise RuntimeError(
                f"Unexpected ASGI message '{message['type']}', after sending 'websocket.close'."
            )

    def send_handshake(self, message: Message) -> None:
        """`websocket.accept`, a refusal, or the start of a denial response."""
        kind = message["type"]
        if kind == "websocket.accept":
            LOGGER.info(
                '%s - "WebSocket %s" [accepted]',
                get_client_addr(self.scope),  # type: ignore[arg-type]
                get_path_with_query_string(self.scope),  # type: ignore[arg-type]
            )
            headers = [
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in (self.default_headers + list(message.get("headers", [])))
            ]
            subprotocol = message.get("subprotocol")
            if subprotocol:
                headers.append(("Sec-WebSocket-Protocol", subprotocol))
            response = self.response
            assert response is not None
            del response.headers["Date"]
            response.headers.update(headers)
            if not self.transport.is_closing():
                self.handshake_complete = True
                self.response = None
                self.conn.send_response(response)
                self.transport.write(b"".join(self.conn.data_to_send()))
                self.start_keepalive()
        elif kind == "websocket.close":
            self.put({"type": "websocket.disconnect", "code": 1006})
            LOGGER.info(
                '%s - "WebSocket %s" 403',
                get_client_addr(self.scope),  # type: ignore[arg-type]
                get_path_with_query_string(self.scope),  # type: ignore[arg-type]
            )
            self.response = None
            self.conn.send_response(self.conn.reject(HTTPStatus.FORBIDDEN, ""))
            self.close_sent = True
            self.handshake_complete = True
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
        elif kind == "websocket.http.response.start" and self.initial_response is None:
            if not (100 <= message["status"] < 600):
                raise RuntimeError(f"Invalid HTTP status code '{message['status']}' in response.")
            LOGGER.info(
                '%s - "WebSocket %s" %d',
                get_client_addr(self.scope),  # type: ignore[arg-type]
                get_path_with_query_string(self.scope),  # type: ignore[arg-type]
                message["status"],
            )
            headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in list(message.get("headers", []))
            ]
            self.response = None
            self.initial_response = (message["status"], headers, b"")
        else:
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' "
                f"or 'websocket.http.response.start' but got '{kind}'."
            )

    def send_frame(self, message: Message) -> None:
        """`websocket.send` or `websocket.close` on an open connection."""
        kind = message["type"]
        if kind == "websocket.send":
            bytes_data = message.get("bytes")
            text_data = message.get("text")
            if bytes_data is not None:
                self.conn.send_binary(bytes_data)
            elif text_data is not None:
                self.conn.send_text(text_data.encode())
            self.transport.write(b"".join(self.conn.data_to_send()))
        elif kind == "websocket.close":
            if not self.transport.is_closing():
                code = message.get("code", 1000)
                reason = message.get("reason", "") or ""
                self.put({"type": "websocket.disconnect", "code": code, "reason": reason})
                self.conn.send_close(code, reason)
                self.transport.write(b"".join(self.conn.data_to_send()))
                self.close_sent = True
                if self.read_paused:
                    self.read_paused = False
                    self.transport.resume_reading()
                self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'."
            )

    def send_http_response(self, message: Message) -> None:
        """The body of a denial response (`websocket.http.response.*`)."""
        assert self.initial_response is not None
        if message["type"] != "websocket.http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'websocket.http.response.body' but got '{message['type']}'."
            )
        body = self.initial_response[2] + message["body"]
        self.initial_response = self.initial_response[:2] + (body,)
        if message.get("more_body", False):
            return
        status_code = self.initial_response[0]
        response_headers = Headers(self.initial_response[1])
        response_headers.setdefault("Date", email.utils.formatdate(usegmt=True))
        response_headers.setdefault("Connection", "close")
        response_headers.setdefault("Content-Length", str(len(body)))
        response_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        response = Response(status_code, STATUS_PHRASES[status_code], response_headers, body)
        self.put({"type": "websocket.disconnect", "code": 1006})
        self.conn.send_response(response)
        self.close_sent = True
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()


PROTOCOL = f"{__name__}:{RealtimeWebSocketProtocol.__name__}"


def serve(app: str, *, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
    """Run uvicorn as production does (docs/benchmarks.md): this module's
    protocol, per-message deflate off (about 40 KB of zlib state per socket, for
    frames of a few hundred bytes), lifespan on (shutdown stops the node and
    closes its Redis clients), uvloop, and httptools with the head limits of
    `uvicorn_http` and query strings kept out of the logs. `app` is an import
    string, as uvicorn's workers need."""
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
