"""A small WebSocket client for the live tests (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from .contracts import check_server_message


async def connect(url: str, **kwargs: Any) -> tuple[websockets.ClientConnection, dict[str, Any]]:
    """Open a socket; return it with its `connected` message."""
    ws = await websockets.connect(url, open_timeout=20, **kwargs)
    hello = await recv_json(ws)
    assert hello["type"] == "connected", hello
    return ws, hello


async def recv_json(ws: websockets.ClientConnection, timeout: float = 5) -> dict[str, Any]:
    """The next message, checked against the AsyncAPI document (tests/contracts.py)."""
    message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    check_server_message(message)
    return message


async def send_json(ws: websockets.ClientConnection, message: Any) -> None:
    await ws.send(json.dumps(message))


async def subscribe(ws: websockets.ClientConnection, *channels: str) -> dict[str, Any]:
    await send_json(ws, {"type": "subscribe", "channels": list(channels)})
    reply = await recv_json(ws)
    assert reply["type"] == "subscribed", reply
    return reply


async def recv_nothing(ws: websockets.ClientConnection, timeout: float = 0.3) -> bool:
    try:
        message = await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        return True
    raise AssertionError(f"Expected nothing, received {message!r}")
