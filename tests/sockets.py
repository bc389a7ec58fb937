"""In-process sockets for the consumer tests (Channels' WebsocketCommunicator)."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator

from paychain.asgi import application


async def open_socket(
    path: str = "/ws", headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[WebsocketCommunicator, dict]:
    """A connected socket and its `connected` message."""
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    return communicator, await communicator.receive_json_from()


async def subscribed_socket(*channels: str) -> WebsocketCommunicator:
    """A socket subscribed to `channels`, its `subscribed` reply consumed."""
    communicator, _ = await open_socket()
    await communicator.send_json_to({"type": "subscribe", "channels": list(channels)})
    reply = await communicator.receive_json_from()
    assert reply["type"] == "subscribed", reply
    return communicator
