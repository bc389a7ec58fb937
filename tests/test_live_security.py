"""The refusal paths over real sockets: daphne processes and real Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import websockets
from rest_framework_simplejwt.tokens import AccessToken

from realtime.protocol import CloseCode, ErrorCode

from .wsclient import connect, recv_json, send_json

pytestmark = pytest.mark.live


def register(server, user_type: str = "worker") -> tuple[int, str]:
    """A new user on the live server; returns (id, access token)."""
    credentials = {"username": f"u{uuid.uuid4().hex[:10]}", "password": "a-long-passphrase-9"}
    created = server.post("/api/auth/register/", json={**credentials, "user_type": user_type})
    assert created.status_code == 201, created.text
    access = server.post("/api/auth/token/", json=credentials).json()["access"]
    return created.json()["id"], access


def short_token(user_id: int, seconds: float) -> str:
    token = AccessToken()
    token["user_id"] = user_id
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


async def expect_refusal(ws, code: str, close_code: int) -> dict:
    message = await recv_json(ws)
    assert message["type"] == "error"
    assert message["data"]["code"] == code
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await recv_json(ws)
    assert closed.value.rcvd.code == close_code
    return message


async def drain(ws) -> tuple[list[dict], int]:
    """Every message until the server closes; and its close code."""
    replies = []
    try:
        while True:
            replies.append(await recv_json(ws))
    except websockets.ConnectionClosed as closed:
        return replies, closed.rcvd.code


async def test_a_bad_token_gets_an_error_then_4001(daphne_server):
    ws = await websockets.connect(daphne_server.ws_url + "?token=forged.token.value")
    await expect_refusal(ws, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_anonymous_sockets_get_4001_when_not_allowed(daphne_factory):
    server = daphne_factory(REALTIME_ALLOW_ANONYMOUS="false")
    ws = await websockets.connect(server.ws_url)
    await expect_refusal(ws, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)
    user_id, access = register(server)
    ws, hello = await connect(server.ws_url + f"?token={access}")
    assert hello["data"]["user_id"] == user_id
    await ws.close()


async def test_an_expiring_token_closes_the_socket_unless_renewed(daphne_server):
    user_id, access = register(daphne_server)
    expiring, _ = await connect(daphne_server.ws_url + f"?token={short_token(user_id, 2)}")
    renewed, _ = await connect(daphne_server.ws_url + f"?token={short_token(user_id, 2)}")
    await send_json(renewed, {"type": "auth", "token": access})
    assert (await recv_json(renewed))["type"] == "authenticated"
    message = await expect_refusal(expiring, ErrorCode.TOKEN_EXPIRED, CloseCode.UNAUTHORIZED)
    assert message["data"]["message"] == "Token expired"
    await send_json(renewed, {"type": "ping"})
    assert (await recv_json(renewed))["type"] == "pong"
    await renewed.close()


async def test_forbidden_channels_keep_the_socket_open_and_personal_events_arrive(daphne_server):
    user_id, access = register(daphne_server, "worker")
    ws, hello = await connect(daphne_server.ws_url + f"?token={access}")
    assert hello["data"] == {**hello["data"], "user_id": user_id, "user_type": "worker"}
    await send_json(ws, {"type": "subscribe", "channels": ["payments", "user.999999", "jobs"]})
    replies = [await recv_json(ws) for _ in range(3)]
    assert [r["data"].get("code") for r in replies[:2]] == [ErrorCode.FORBIDDEN] * 2
    assert replies[2]["data"]["channels"] == ["jobs"]
    response = daphne_server.post("/broadcast", json={"type": "hello", "user_id": user_id})
    assert response.status_code == 202
    message = await recv_json(ws)
    assert (message["type"], message["channel"]) == ("hello", f"user.{user_id}")
    await ws.close()


async def test_flooding_gets_4008(daphne_server):
    ws, _ = await connect(daphne_server.ws_url)
    for _ in range(101):
        await send_json(ws, {"type": "ping"})
    replies, close_code = await drain(ws)
    assert close_code == CloseCode.RATE_LIMITED
    assert replies[-1]["data"] == {
        **replies[-1]["data"],
        "code": ErrorCode.RATE_LIMITED,
        "message": "Rate limit exceeded",
    }
    assert [r["type"] for r in replies[:-1]] == ["pong"] * 100


async def test_the_per_user_socket_limit_counts_across_processes(daphne_factory):
    first = daphne_factory(REALTIME_MAX_SOCKETS_PER_USER="3")
    second = daphne_factory(REALTIME_MAX_SOCKETS_PER_USER="3")
    _, access = register(first)
    sockets = [
        (await connect(server.ws_url + f"?token={access}"))[0] for server in (first, second, first)
    ]
    newest = await websockets.connect(second.ws_url + f"?token={access}")
    message = await expect_refusal(
        newest, ErrorCode.TOO_MANY_CONNECTIONS, CloseCode.TOO_MANY_CONNECTIONS
    )
    assert message["data"]["message"] == "Too many connections"
    await sockets[0].close()
    await asyncio.sleep(0.3)
    again, hello = await connect(second.ws_url + f"?token={access}")
    assert hello["type"] == "connected"
    for ws in (*sockets[1:], again):
        await ws.close()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [(None, True), ("http://localhost:5173", True), ("https://evil.example", False)],
)
async def test_handshake_origins(daphne_server, origin, allowed):
    if allowed:
        ws, _ = await connect(daphne_server.ws_url, origin=origin)
        await ws.close()
    else:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(daphne_server.ws_url, origin=origin)
        assert refused.value.response.status_code == 403


async def test_broadcast_keys_and_staff_tokens_over_http(daphne_factory):
    server = daphne_factory(BROADCAST_API_KEYS="k-one,k-two", DJANGO_DEBUG="false")
    body = {"type": "x", "channel": "jobs"}
    assert server.post("/broadcast", json=body).status_code == 401
    assert (
        server.post("/broadcast", json=body, headers={"Authorization": "Api-Key nope"}).status_code
        == 403
    )
    assert (
        server.post("/broadcast", json=body, headers={"Authorization": "Api-Key k-two"}).status_code
        == 202
    )
    _, access = register(server, "employer")
    assert (
        server.post(
            "/broadcast", json=body, headers={"Authorization": f"Bearer {access}"}
        ).status_code
        == 403
    )
    assert (
        server.post("/broadcast", json=body, headers={"Authorization": "Bearer bad"}).status_code
        == 401
    )
    assert "k-two" not in server.log()
    assert "k-one" not in server.log()
