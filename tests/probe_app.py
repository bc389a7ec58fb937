"""
A tiny ASGI application that shows, over HTTP, what our servers' transport
extension says about each WebSocket (tests/test_servers.py starts it with
`python -m paychain.serve --app tests.probe_app:app`).

- WebSocket `/flood?id=ID&bytes=N`: accepted, then sent N bytes in 4 KB text
  frames, never while the transport says it is not writable (it waits).
- `GET /probe?id=ID`: that socket's state, as JSON.
- `POST /abort?id=ID`: `abort()` on that socket's transport, at a moment it
  says it is not writable (so that the server holds data for the socket); the
  answer says how much the application had sent by then.
- `GET /stats`: 200, for the tests' readiness check.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from realtime.servers.extension import SocketTransport, transport_of

FRAME = "x" * 4096

states: dict[str, dict[str, Any]] = {}
transports: dict[str, SocketTransport] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await flood(scope, receive, send)
    elif scope["type"] == "http":
        await answer(scope, receive, send)


async def flood(scope: dict[str, Any], receive: Any, send: Any) -> None:
    query = parse_qs(scope["query_string"].decode())
    key, total = query["id"][0], int(query.get("bytes", ["0"])[0])
    transport = transport_of(scope)
    state = states[key] = {
        "extension": type(transport).__name__ if transport is not None else None,
        "frames_sent": 0,
        "waits": 0,
        "waiting": False,
        "finished": False,
        "disconnected": False,
    }
    if transport is not None:
        transports[key] = transport
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})

    async def watch() -> None:
        while (await receive())["type"] != "websocket.disconnect":
            pass
        state["disconnected"] = True

    watcher = asyncio.create_task(watch())
    try:
        while state["frames_sent"] * len(FRAME) < total and not state["disconnected"]:
            if transport is not None and not transport.is_writable():
                state["waits"] += 1
                state["waiting"] = True
                await transport.wait_writable()
                state["waiting"] = False
                await asyncio.sleep(0)  # let the watcher see a disconnect first
                continue
            await send({"type": "websocket.send", "text": FRAME})
            state["frames_sent"] += 1
        state["finished"] = state["frames_sent"] * len(FRAME) >= total
    except Exception:  # uvicorn raises on a send after the connection is lost
        pass
    await watcher


async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    key = parse_qs(scope["query_string"].decode()).get("id", [""])[0]
    status, body = 200, {}
    if scope["path"] == "/probe" and key in states:
        transport = transports.get(key)
        body = dict(states[key])
        if transport is not None:
            body.update(writable=transport.is_writable(), buffered=transport.buffered_bytes())
    elif scope["path"] == "/abort" and key in transports:
        transport = transports[key]
        while transport.is_writable():  # the flood refills the buffer at once
            await asyncio.sleep(0.01)
        body = {"frames_sent": states[key]["frames_sent"], "buffered": transport.buffered_bytes()}
        transport.abort()
    elif scope["path"] != "/stats":
        status = 404
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
