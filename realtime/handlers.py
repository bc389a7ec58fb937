"""
Client frames that apps handle: the socket's extension point.

The protocol's own frames (subscribe, ping, auth, ...) are the consumer's.
Frames of the types an app registers here (`register_client_message`, called
from the app's `AppConfig.ready()`, as `register_channel_rule` is) are handed
to that app's handler; a type no app registered is `unknown_type`. The types
themselves are named in `realtime.protocol.ClientType`, so the protocol stays
described in one place; this module only says who handles them.

A handler is `async def handler(context: ClientMessage) -> None`. It answers
the socket with `context.reply(message)` and refuses a frame by raising
`realtime.protocol.ProtocolError` with a stable code: the consumer sends the
`error` and keeps the connection open (unless the error has a close code).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .protocol import ClientFrame, ClientType, ErrorCode, ProtocolError


@dataclass(frozen=True)
class ClientMessage:
    """One client frame for an app's handler, and the socket it came from."""

    frame: ClientFrame
    user: Any  # the socket's user; None on an anonymous socket
    channels: frozenset[str]  # the channels the socket is subscribed to now
    reply: Callable[[dict[str, Any]], Awaitable[None]]  # send a message to this socket
    connection_id: str

    @property
    def body(self) -> dict[str, Any]:
        return self.frame.body


ClientMessageHandler = Callable[[ClientMessage], Awaitable[None]]
_handlers: dict[str, ClientMessageHandler] = {}


def register_client_message(type: str, handler: ClientMessageHandler) -> None:
    """Hand the client frames of `type` (one of ClientType.ALL that the
    consumer does not handle itself) to `handler`. Registering a type again
    replaces its handler."""
    if type not in ClientType.ALL:
        raise ValueError(f"{type!r} is not a client message type of realtime.protocol.")
    _handlers[type] = handler


def unregister_client_message(type: str) -> None:
    _handlers.pop(type, None)


async def handle_client_message(message: ClientMessage) -> None:
    """Run the registered handler of the frame's type; `unknown_type` when
    no app registered one."""
    handler = _handlers.get(message.frame.type)
    if handler is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"Unknown message type {message.frame.type!r}.", field="type"
        )
    await handler(message)
