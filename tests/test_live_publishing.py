"""Publishing on the production command with Redis: concurrent broadcasts share
round trips to Redis, and an error Redis answers for one of them (a key of the
wrong type) fails that broadcast alone."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis

from .wsclient import connect, recv_json, subscribe

pytestmark = pytest.mark.live

CHANNELS = [f"pub{n}" for n in range(12)]
BROKEN = "pub5"


@pytest.mark.parametrize("server_kind", ["uvicorn"])
async def test_one_broken_channel_fails_its_broadcast_alone_among_concurrent_ones(
    server_factory, redis_url
):
    server = server_factory(REALTIME_PUBLIC_CHANNELS=",".join(CHANNELS))
    prefix = server.env["CHANNEL_LAYER_PREFIX"]
    # Publishing to BROKEN now meets WRONGTYPE in Redis.
    redis.Redis.from_url(redis_url).set(f"{prefix}:stream:{{{BROKEN}}}:meta", "not a hash")
    ws, _ = await connect(server.ws_url)
    await subscribe(ws, *(c for c in CHANNELS if c != BROKEN))

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for round_ in range(1, 4):
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/broadcast",
                        json={"type": "tick", "channel": c, "data": {"r": round_}},
                    )
                    for c in CHANNELS
                )
            )
            by_channel = dict(zip(CHANNELS, responses, strict=True))
            assert by_channel[BROKEN].status_code == 500
            assert by_channel[BROKEN].json()["code"] != "channel_layer_unavailable"
            assert all(r.status_code == 202 for c, r in by_channel.items() if c != BROKEN)

    received = [await recv_json(ws) for _ in range(3 * (len(CHANNELS) - 1))]
    assert {(m["channel"], m["offset"]) for m in received} == {
        (c, r) for c in CHANNELS if c != BROKEN for r in range(1, 4)
    }
    await ws.close()


@pytest.mark.parametrize("server_kind", ["uvicorn"])
async def test_what_was_recorded_is_delivered_even_when_another_part_of_the_request_failed(
    server_factory, redis_url
):
    server = server_factory(REALTIME_PUBLIC_CHANNELS="good,broken")
    prefix = server.env["CHANNEL_LAYER_PREFIX"]
    redis.Redis.from_url(redis_url).set(f"{prefix}:stream:{{broken}}:meta", "not a hash")
    ws, _ = await connect(server.ws_url)
    await subscribe(ws, "good")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.post(
            "/broadcast",
            json=[
                {"type": "tick", "channel": "good", "data": {"n": 1}},
                {"type": "tick", "channel": "broken", "data": {"n": 2}},
            ],
        )
    assert response.status_code == 500
    delivered = await recv_json(ws)
    assert (delivered["channel"], delivered["offset"], delivered["data"]) == ("good", 1, {"n": 1})
    await ws.close()
