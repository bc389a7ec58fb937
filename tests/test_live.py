"""The server as users run it: daphne processes, real Redis, real sockets."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from realtime.protocol import CloseCode, ErrorCode

from .live import PRODUCTION_COMMAND, RUNSERVER_COMMAND, wait_for
from .wsclient import connect, recv_json, recv_nothing, send_json, subscribe

pytestmark = pytest.mark.live

SEED_BROADCAST = {
    "type": "test_message",
    "data": {"message": "Hello WebSocket!"},
    "channel": "jobs",
}


async def test_seed_curl_broadcast_reaches_a_subscribed_socket(daphne_server):
    ws, hello = await connect(daphne_server.ws_url)
    await subscribe(ws, "jobs")
    response = daphne_server.post("/broadcast", json=SEED_BROADCAST)
    assert response.status_code == 202
    message = await recv_json(ws)
    assert message["type"] == "test_message"
    assert message["data"] == {"message": "Hello WebSocket!"}
    assert message["channel"] == "jobs"
    assert message["id"] == response.json()["id"]
    await ws.close()


async def test_job_posted_through_the_api_reaches_sockets_after_commit(daphne_server):
    ws, _ = await connect(daphne_server.ws_url)
    await subscribe(ws, "jobs")
    credentials = {"username": "emma", "password": "a-long-passphrase-9"}
    assert (
        daphne_server.post(
            "/api/auth/register/", json={**credentials, "user_type": "employer"}
        ).status_code
        == 201
    )
    access = daphne_server.post("/api/auth/token/", json=credentials).json()["access"]
    created = daphne_server.post(
        "/api/jobs/",
        json={"title": "Full Stack Developer", "job_type": "development", "pay_amount_usd": "5000"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert created.status_code == 201
    event = await recv_json(ws)
    assert event["type"] == "job_created"
    assert event["data"]["job_id"] == created.json()["id"]
    assert event["data"]["pay_amount_usd"] == 5000
    await ws.close()


async def test_bad_input_over_a_real_socket_gets_typed_errors_and_keeps_it_open(daphne_server):
    ws, _ = await connect(daphne_server.ws_url)
    for frame, code in [
        ("not json", ErrorCode.INVALID_JSON),
        ("[" * 60_000, ErrorCode.INVALID_JSON),
        (b"\x00\xff", ErrorCode.UNSUPPORTED_FRAME),
        ('{"type": "dance"}', ErrorCode.UNKNOWN_TYPE),
        ("[]", ErrorCode.INVALID_MESSAGE),
    ]:
        await ws.send(frame)
        reply = await recv_json(ws)
        assert reply["type"] == "error"
        assert reply["data"]["code"] == code
    await send_json(ws, {"type": "ping", "data": {"n": 1}})
    assert (await recv_json(ws))["data"] == {"n": 1}
    await ws.close()


async def test_oversized_frame_over_a_real_socket_closes_with_4013(daphne_server):
    ws, _ = await connect(daphne_server.ws_url)
    other, _ = await connect(daphne_server.ws_url)
    await ws.send(json.dumps({"type": "ping", "data": {"x": "y" * 70_000}}))
    reply = await recv_json(ws)
    assert reply["data"]["code"] == ErrorCode.MESSAGE_TOO_BIG
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await recv_json(ws)
    assert closed.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG
    await send_json(other, {"type": "ping"})
    assert (await recv_json(other))["type"] == "pong"
    await other.close()


async def test_health_counts_follow_connects_and_disconnects_within_a_second(daphne_server):
    def counts():
        return daphne_server.get("/health").json()["connections"]

    sockets = [(await connect(daphne_server.ws_url))[0] for _ in range(3)]
    await subscribe(sockets[0], "jobs")
    await subscribe(sockets[1], "jobs", "announcements")
    await asyncio.sleep(1)
    assert counts() == {"total": 3, "by_channel": {"jobs": 2, "announcements": 1}}
    await sockets[1].close()
    await asyncio.sleep(1)
    assert counts() == {"total": 2, "by_channel": {"jobs": 1}}
    for ws in sockets:
        await ws.close()


async def test_a_thousand_concurrent_connects_all_succeed_and_all_receive(daphne_server):
    results = await asyncio.gather(
        *(connect(daphne_server.ws_url) for _ in range(1000)), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    sockets = [ws for ws, _ in results]
    await asyncio.gather(*(subscribe(ws, "jobs") for ws in sockets))
    wait_for(
        lambda: daphne_server.get("/health").json()["connections"]["by_channel"] == {"jobs": 1000},
        5,
        what="/health to count 1,000 subscribers",
    )
    assert daphne_server.post("/broadcast", json=SEED_BROADCAST).status_code == 202
    messages = await asyncio.gather(*(recv_json(ws, timeout=20) for ws in sockets))
    assert {m["type"] for m in messages} == {"test_message"}
    await asyncio.gather(*(ws.close() for ws in sockets))


@pytest.mark.slow
async def test_an_idle_socket_still_receives_after_a_minute(daphne_server):
    ws, _ = await connect(daphne_server.ws_url, ping_interval=None)
    await subscribe(ws, "jobs")
    await asyncio.sleep(65)
    assert daphne_server.post("/broadcast", json=SEED_BROADCAST).status_code == 202
    assert (await recv_json(ws))["type"] == "test_message"
    await ws.close()


async def test_broadcast_and_health_answer_503_within_5s_when_redis_does_not_answer(
    daphne_factory, own_redis
):
    server = daphne_factory(REDIS_URL=own_redis.url)
    ws, _ = await connect(server.ws_url)
    await subscribe(ws, "jobs")
    own_redis.pause()
    try:
        started = time.monotonic()
        broadcast = server.post("/broadcast", json=SEED_BROADCAST, timeout=15)
        broadcast_seconds = time.monotonic() - started
        started = time.monotonic()
        health = server.get("/health", timeout=15)
        health_seconds = time.monotonic() - started
    finally:
        own_redis.resume()
    assert broadcast.status_code == 503
    assert broadcast.json()["detail"]
    assert broadcast_seconds < 5
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy"
    assert health.json()["reason"]
    assert health_seconds < 5
    wait_for(lambda: server.get("/health").status_code == 200, 10, what="healthy again")
    await ws.close()


async def test_runserver_serves_the_socket_through_daphne(daphne_factory):
    server = daphne_factory(command=RUNSERVER_COMMAND)
    ws, hello = await connect(server.ws_url + "/")
    await subscribe(ws, "jobs")
    assert server.post("/broadcast/", json=SEED_BROADCAST).status_code == 202
    assert (await recv_json(ws))["type"] == "test_message"
    await ws.close()


async def test_two_processes_on_one_redis_deliver_each_broadcast_exactly_once(
    daphne_factory,
):
    first, second = daphne_factory(), daphne_factory()
    sockets = []
    for server in (first, second):
        for _ in range(3):
            ws, _ = await connect(server.ws_url)
            await subscribe(ws, "jobs")
            sockets.append(ws)
    for seq in range(20):
        server = first if seq % 2 else second
        assert (
            server.post(
                "/broadcast", json={"type": "tick", "data": {"seq": seq}, "channel": "jobs"}
            ).status_code
            == 202
        )
    for ws in sockets:
        seqs = [(await recv_json(ws))["data"]["seq"] for _ in range(20)]
        assert seqs == list(range(20))
        assert await recv_nothing(ws)
        await ws.close()


async def test_the_production_server_command_serves_the_same_protocol(daphne_factory):
    first = daphne_factory(command=PRODUCTION_COMMAND)
    second = daphne_factory()  # daphne, on the same Redis
    on_uvicorn, _ = await connect(first.ws_url)
    on_daphne, _ = await connect(second.ws_url)
    for ws in (on_uvicorn, on_daphne):
        await subscribe(ws, "jobs")
    assert first.post("/broadcast", json=SEED_BROADCAST).status_code == 202
    for ws in (on_uvicorn, on_daphne):
        assert (await recv_json(ws))["type"] == "test_message"
    await on_uvicorn.send("not json")
    assert (await recv_json(on_uvicorn))["data"]["code"] == ErrorCode.INVALID_JSON
    await on_uvicorn.send(json.dumps({"type": "ping", "data": {"x": "y" * 70_000}}))
    assert (await recv_json(on_uvicorn))["data"]["code"] == ErrorCode.MESSAGE_TOO_BIG
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await recv_json(on_uvicorn)
    assert closed.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG
    await on_daphne.close()
