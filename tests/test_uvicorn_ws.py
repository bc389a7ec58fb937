"""realtime.servers.uvicorn_ws's protocol speaks ASGI as uvicorn's own sans-I/O
protocol does: served by a real uvicorn in this process, on a real socket, to
websockets' client. What the application and the peer see: messages in order,
fragmented ones whole, pings answered and sent, refusals and denial responses,
the close handshake, 1012 at shutdown; and its flow control."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime.servers.extension import transport_of
from realtime.servers.uvicorn_ws import PROTOCOL, RealtimeWebSocketProtocol


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo, with a few commands: the path chooses how the handshake goes."""
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    if scope["path"] == "/refuse":
        await send({"type": "websocket.close"})
        return
    if scope["path"] == "/deny":
        await send({"type": "websocket.http.response.start", "status": 418, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"tea"})
        return
    await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "extension":
            await send({"type": "websocket.send", "text": type(transport_of(scope)).__name__})
        elif text == "close":
            await send({"type": "websocket.close", "code": 4321, "reason": "asked"})
        elif text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


@contextlib.asynccontextmanager
async def served(**options: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=PROTOCOL,
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        **options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task


async def test_messages_echo_in_order_and_fragments_arrive_whole() -> None:
    async with served() as (url, _), connect(url + "/ws") as ws:
        for i in range(200):
            await ws.send(f"m{i}")
        await ws.send(b"\x00\x01")
        await ws.send(["frag", "mented"])  # three frames: text, continuation, last
        got = [await ws.recv() for _ in range(202)]
    assert got == [f"m{i}" for i in range(200)] + [b"\x00\x01", "fragmented"]


async def test_the_scope_carries_our_transport_and_the_subprotocol_is_agreed() -> None:
    async with served() as (url, _), connect(url + "/ws", subprotocols=["v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "v1"
        await ws.send("extension")
        assert await ws.recv() == "AsyncioSocketTransport"


async def test_a_refusal_is_a_403_and_a_denial_response_is_sent_whole() -> None:
    async with served() as (url, _):
        with pytest.raises(InvalidStatus) as refused:
            await connect(url + "/refuse")
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as denied:
            await connect(url + "/deny")
        assert denied.value.response.status_code == 418
        assert denied.value.response.body == b"no tea"


async def test_the_application_closes_with_its_code_and_reason() -> None:
    async with served() as (url, _), connect(url + "/ws") as ws:
        await ws.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4321, "asked")


async def test_the_server_pings_and_a_ping_is_answered() -> None:
    async with (
        served(ws_ping_interval=0.05, ws_ping_timeout=5) as (url, _),
        connect(url + "/ws", ping_interval=None) as ws,
    ):
        pong = await ws.ping(b"hi")
        await asyncio.wait_for(pong, 10)
        # websockets' client answers the server's pings itself; the socket
        # stays open across several of them.
        await asyncio.sleep(0.3)
        await ws.send("still here")
        assert await ws.recv() == "still here"


async def test_a_peer_that_ignores_pings_is_closed_with_1011() -> None:
    async with served(ws_ping_interval=0.05, ws_ping_timeout=0.05) as (url, _):
        # A raw socket: handshake, then silence.
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        rest = await asyncio.wait_for(reader.read(), 10)  # until the server closes
        writer.close()
    assert b"\x88" in rest
    assert (1011).to_bytes(2, "big") in rest


async def test_shutdown_closes_open_sockets_with_1012() -> None:
    async with served() as (url, server), connect(url + "/ws") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        server.should_exit = True
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012


async def test_flow_control_waits_while_paused_and_never_after_the_connection_is_lost() -> None:
    config = uvicorn.Config(app, ws=PROTOCOL, lifespan="off")
    protocol = RealtimeWebSocketProtocol(config, ServerState(), {})
    assert protocol.is_writable()
    protocol.pause_writing()
    assert not protocol.is_writable()
    waiter = asyncio.ensure_future(protocol.wait_writable())
    await asyncio.sleep(0)
    assert not waiter.done()
    protocol.resume_writing()
    await waiter
    assert protocol.is_writable()

    protocol.pause_writing()
    waiter = asyncio.ensure_future(protocol.wait_writable())
    await asyncio.sleep(0)

    class Transport:
        def close(self) -> None: ...

    protocol.transport = Transport()  # type: ignore[assignment]
    protocol.connections.add(protocol)  # type: ignore[arg-type]
    protocol.connection_lost(None)
    await waiter
    assert await protocol.receive() == {"type": "websocket.disconnect", "code": 1006}
