"""
The `/ws` consumer: translates frames into calls, and nothing more.

Parsing and the message shapes live in `realtime.protocol`; channel membership
and fan-out in `realtime.fanout`. A bad frame is answered with a typed `error`
and never closes a healthy connection (an oversized frame is the one
exception: error, then close 4013).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from . import protocol
from .conf import realtime_settings
from .fanout import Hub, JoinError, LocalSocket, counters, get_hub
from .protocol import ClientFrame, ClientType, ErrorCode, ProtocolError, ServerType

logger = logging.getLogger(__name__)


class RealtimeConsumer(AsyncWebsocketConsumer):
    # Sockets get no layer channel of their own: the process' hub is the
    # group member and writes publications to them (see realtime.fanout).
    channel_layer_alias = "realtime.sockets-have-no-layer-channel"

    hub: Hub
    socket: LocalSocket | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch closes stale DB connections through a thread on
        # every message; this consumer touches no database per frame.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # As dispatch: no per-socket database clean-up thread hop.
        await self.disconnect(message.get("code", 1000))
        raise StopConsumer()

    async def connect(self) -> None:
        self.hub = await get_hub()
        await self.accept()
        self.socket = self.hub.attach(self.base_send)
        await self.send_message(
            protocol.envelope(ServerType.CONNECTED, {"connection_id": self.socket.id})
        )
        logger.info("Client %s connected", self.socket.id)

    async def disconnect(self, code: int) -> None:
        if self.socket is not None:
            self.hub.detach(self.socket)
            logger.info("Client %s disconnected (code %s)", self.socket.id, code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        counters.received += 1
        try:
            frame = protocol.parse_frame(
                text_data, bytes_data, max_bytes=realtime_settings.MAX_FRAME_BYTES
            )
            await self.handlers[frame.type](self, frame)
        except ProtocolError as exc:
            await self.send_error(exc)
            if exc.close_code is not None:
                await self.close(exc.close_code)

    async def send_message(self, message: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(message))

    async def send_error(self, exc: ProtocolError) -> None:
        counters.errors_sent += 1
        await self.send_message(exc.as_message())

    # --- client frames ---------------------------------------------------------

    async def on_subscribe(self, frame: ClientFrame) -> None:
        assert self.socket is not None
        subscribed: list[str] = []
        for name in protocol.requested_channels(frame.body):
            if not protocol.is_valid_channel(name):
                await self.send_error(protocol.invalid_channel(name))
                continue
            try:
                await self.hub.subscribe(self.socket, name)
            except JoinError as exc:
                await self.send_error(
                    ProtocolError(
                        ErrorCode.SERVICE_UNAVAILABLE,
                        f"Could not subscribe: {exc}",
                        channel=name,
                    )
                )
                continue
            subscribed.append(name)
        if subscribed:
            await self.send_message(
                protocol.envelope(ServerType.SUBSCRIBED, {"channels": subscribed})
            )

    async def on_unsubscribe(self, frame: ClientFrame) -> None:
        assert self.socket is not None
        removed: list[str] = []
        for name in protocol.requested_channels(frame.body):
            if not protocol.is_valid_channel(name):
                await self.send_error(protocol.invalid_channel(name))
            elif self.hub.unsubscribe(self.socket, name):
                removed.append(name)
        await self.send_message(protocol.envelope(ServerType.UNSUBSCRIBED, {"channels": removed}))

    async def on_ping(self, frame: ClientFrame) -> None:
        data = frame.body.get("data", {})
        if not isinstance(data, dict):
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, "'data' of a ping must be an object.", field="data"
            )
        await self.send_message(protocol.envelope(ServerType.PONG, data))

    handlers = {
        ClientType.SUBSCRIBE: on_subscribe,
        ClientType.UNSUBSCRIBE: on_unsubscribe,
        ClientType.PING: on_ping,
    }
