"""Many processes on one Redis, Redis faults and long-lived sockets, over
real sockets."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from .live import wait_for
from .wsclient import connect, recv_json, send_json, subscribe

pytestmark = pytest.mark.live


async def recv_type(ws, kind: str, timeout: float = 10) -> dict:
    """The next message of type `kind`, skipping job events on the way."""
    while True:
        message = await recv_json(ws, timeout=timeout)
        if message["type"] == kind or not message["type"].startswith("job_"):
            return message


async def collect(ws, count: int, timeout: float = 10) -> list[dict]:
    return [await recv_json(ws, timeout=timeout) for _ in range(count)]


def post_ticks(server, channel: str, start: int, count: int) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for n in range(start, start + count):
            response = client.post(
                "/broadcast", json={"type": "tick", "data": {"n": n}, "channel": channel}
            )
            assert response.status_code == 202, response.text


async def test_health_and_stats_on_any_process_report_the_totals_of_all(daphne_factory):
    first, second = daphne_factory(), daphne_factory()
    sockets = []
    for server, count in ((first, 2), (second, 3)):
        for _ in range(count):
            ws, _ = await connect(server.ws_url)
            await subscribe(ws, "jobs")
            sockets.append(ws)
    expected = {"total": 5, "by_channel": {"jobs": 5}}
    for server in (first, second):
        wait_for(lambda s=server: s.get("/health").json()["connections"] == expected, 1.5)
    stats = first.get("/stats").json()
    assert stats["processes"] == 2
    assert stats["connections"] == expected
    await sockets[0].close()
    wait_for(lambda: second.get("/health").json()["connections"]["total"] == 4, 1.5)
    for ws in sockets[1:]:
        await ws.close()


@pytest.mark.slow
async def test_a_process_that_dies_drops_out_of_totals_and_presence_within_30_seconds(
    daphne_factory,
):
    survivor = daphne_factory(BROADCAST_API_KEYS="svc")
    doomed = daphne_factory(BROADCAST_API_KEYS="svc")
    credentials = {"username": "erin", "password": "a-long-passphrase-9"}
    survivor.post("/api/auth/register/", json={**credentials, "user_type": "employer"})
    access = survivor.post("/api/auth/token/", json=credentials).json()["access"]
    job = survivor.post(
        "/api/jobs/",
        json={"title": "t", "job_type": "design", "pay_amount_usd": "10"},
        headers={"Authorization": f"Bearer {access}"},
    ).json()
    channel = f"job.{job['id']}"
    on_survivor, _ = await connect(survivor.ws_url)
    on_doomed, _ = await connect(doomed.ws_url + f"?token={access}")
    await subscribe(on_doomed, channel)
    key = {"Authorization": "Api-Key svc"}

    def presence() -> list:
        return survivor.get(f"/api/presence/{channel}/", headers=key).json()["users"]

    wait_for(lambda: survivor.get("/health").json()["connections"]["total"] == 2, 2)
    assert [u["connections"] for u in presence()] == [1]
    doomed.kill()
    started = time.monotonic()
    wait_for(lambda: survivor.get("/health").json()["connections"]["total"] == 1, 32)
    wait_for(lambda: presence() == [], 32 - (time.monotonic() - started))
    assert time.monotonic() - started <= 31
    await on_survivor.close()


async def test_a_client_that_leaves_while_publications_continue_recovers_all_of_them(
    daphne_factory,
):
    first, second = daphne_factory(), daphne_factory()
    ws, _ = await connect(second.ws_url)
    position = (await subscribe(ws, "jobs"))["data"]["positions"]["jobs"]
    publisher = asyncio.get_running_loop().run_in_executor(None, post_ticks, first, "jobs", 0, 60)
    seen = await collect(ws, 10)
    await ws.close()
    await asyncio.sleep(0.2)
    ws, _ = await connect(first.ws_url)
    last = seen[-1]
    await send_json(
        ws,
        {
            "type": "subscribe",
            "channels": ["jobs"],
            "since": {"jobs": {"offset": last["offset"], "epoch": last["epoch"]}},
        },
    )
    reply = await recv_json(ws)
    assert reply["data"]["positions"]["jobs"]["recovered"] is True
    await publisher
    rest = await collect(ws, 60 - 10)
    offsets = [m["offset"] for m in seen + rest]
    assert offsets == list(range(position["offset"] + 1, position["offset"] + 61))
    assert [m["data"]["n"] for m in seen + rest] == list(range(60))
    await ws.close()


@pytest.mark.slow
async def test_redis_stopped_and_restarted_the_server_keeps_its_sockets_and_rejoins(
    daphne_factory, own_redis
):
    server = daphne_factory(REDIS_URL=own_redis.url)
    ws, _ = await connect(server.ws_url)
    position = (await subscribe(ws, "jobs"))["data"]["positions"]["jobs"]
    post_ticks(server, "jobs", 0, 3)
    await collect(ws, 3)

    own_redis.stop()
    started = time.monotonic()
    health = server.get("/health", timeout=10)
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy"
    assert time.monotonic() - started < 5
    started = time.monotonic()
    assert server.post("/broadcast", json={"type": "x", "channel": "jobs"}).status_code == 503
    assert time.monotonic() - started < 5
    await send_json(ws, {"type": "ping"})
    assert (await recv_json(ws))["type"] == "pong"
    await send_json(ws, {"type": "subscribe", "channels": ["announcements"]})
    refused = await recv_json(ws, timeout=10)
    assert refused["data"]["code"] == "service_unavailable"
    assert refused["data"]["channel"] == "announcements"

    own_redis.start()
    wait_for(lambda: server.get("/health").status_code == 200, 15, what="healthy again")

    # The layer resubscribes when its connection comes back: publications
    # reach the socket again within seconds, without it doing anything.
    deadline = time.monotonic() + 15
    while True:
        assert (
            server.post("/broadcast", json={"type": "back", "channel": "jobs"}).status_code == 202
        )
        try:
            assert (await recv_json(ws, timeout=0.5))["type"] == "back"
            break
        except TimeoutError:
            assert time.monotonic() < deadline, "publications never reached the socket again"
    again, _ = await connect(server.ws_url)
    await send_json(
        again,
        {"type": "subscribe", "channels": ["jobs"], "since": {"jobs": {**position, "offset": 3}}},
    )
    reply = await recv_json(again)
    assert reply["data"]["positions"]["jobs"]["recovered"] is False
    assert reply["data"]["positions"]["jobs"]["epoch"] != position["epoch"]
    for socket in (ws, again):
        await socket.close()


@pytest.mark.slow
async def test_a_socket_outlives_the_channel_layer_group_expiry(daphne_factory):
    server = daphne_factory(CHANNEL_LAYER_GROUP_EXPIRY="2")
    ws, _ = await connect(server.ws_url)
    await subscribe(ws, "jobs")
    await asyncio.sleep(5)
    assert server.post("/broadcast", json={"type": "late", "channel": "jobs"}).status_code == 202
    assert (await recv_json(ws))["type"] == "late"
    await ws.close()


def register(server, username: str, user_type: str) -> str:
    credentials = {"username": username, "password": "a-long-passphrase-9"}
    created = server.post("/api/auth/register/", json={**credentials, "user_type": user_type})
    assert created.status_code == 201, created.text
    return server.post("/api/auth/token/", json=credentials).json()["access"]


async def test_presence_and_its_events_span_processes(daphne_factory):
    first, second = daphne_factory(), daphne_factory()
    boss = register(first, "boss", "employer")
    hand = register(first, "hand", "worker")
    job = first.post(
        "/api/jobs/",
        json={"title": "t", "job_type": "design", "pay_amount_usd": "10"},
        headers={"Authorization": f"Bearer {boss}"},
    ).json()
    accepted = first.post(
        f"/api/jobs/{job['id']}/accept/", headers={"Authorization": f"Bearer {hand}"}
    )
    assert accepted.status_code == 200
    channel = f"job.{job['id']}"
    employer, hello = await connect(first.ws_url + f"?token={boss}")
    await subscribe(employer, channel)
    worker, worker_hello = await connect(second.ws_url + f"?token={hand}")
    await subscribe(worker, channel)
    # The job's events may still be on their way to the employer's personal channel.
    online = await recv_type(employer, "user_online")
    assert (online["type"], online["data"]["user_id"]) == (
        "user_online",
        worker_hello["data"]["user_id"],
    )
    await send_json(worker, {"type": "presence", "channel": channel})
    users = (await recv_json(worker))["data"]["users"]
    assert sorted(u["user_id"] for u in users) == sorted(
        [hello["data"]["user_id"], worker_hello["data"]["user_id"]]
    )
    await worker.close()
    offline = await recv_type(employer, "user_offline")
    assert (offline["type"], offline["data"]["user_id"]) == (
        "user_offline",
        worker_hello["data"]["user_id"],
    )
    await employer.close()
