"""Job events through the outbox, as users run the server: daphne processes,
real Redis (and Redis servers of the tests' own, stopped and started again),
real sockets."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .live import LiveServer, on_both_databases, query, wait_for
from .wsclient import connect, recv_json, subscribe

pytestmark = pytest.mark.live


def employer_access(server: LiveServer, username: str = "emma") -> str:
    credentials = {"username": username, "password": "a-long-passphrase-9"}
    registered = server.post("/api/auth/register/", json={**credentials, "user_type": "employer"})
    assert registered.status_code == 201, registered.text
    return server.post("/api/auth/token/", json=credentials).json()["access"]


def post_job(server: LiveServer, access: str, title: str) -> int:
    created = server.post(
        "/api/jobs/",
        json={"title": title, "job_type": "development", "pay_amount_usd": "5000"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def outbox_rows(server: LiveServer) -> list[tuple[str, str]]:
    """(status, lease owner) of each outbox row of the servers' shared
    database, in id order."""
    rows = query(
        server.env["DATABASE_URL"],
        "SELECT status, lease_owner FROM realtime_outboxmessage ORDER BY id",
    )
    return [(status, owner) for status, owner in rows]


def outbox_statuses(server: LiveServer) -> list[str]:
    return [status for status, _ in outbox_rows(server)]


@contextmanager
def frozen(server: LiveServer) -> Iterator[None]:
    """Stop the server's process (SIGSTOP) for a while, then let it go on."""
    server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.process.send_signal(signal.SIGCONT)


@on_both_databases
async def test_a_job_posted_through_the_api_reaches_a_socket_within_a_second(daphne_server):
    ws, _ = await connect(daphne_server.ws_url)
    await subscribe(ws, "jobs")
    access = employer_access(daphne_server)
    job_id = post_job(daphne_server, access, "Full Stack Developer")
    event = await recv_json(ws, timeout=1)
    assert event["type"] == "job_created"
    assert event["data"]["job_id"] == job_id
    wait_for(lambda: outbox_statuses(daphne_server) == ["published"], 2, what="row marked")
    await ws.close()


async def test_jobs_saved_while_redis_is_down_reach_sockets_once_it_is_back(
    daphne_factory, own_redis
):
    server = daphne_factory(REDIS_URL=own_redis.url, REALTIME_OUTBOX_RETRY_MAX="0.5")
    access = employer_access(server)
    own_redis.stop()
    job_ids = [post_job(server, access, f"Saved while Redis is away {n}") for n in range(3)]
    assert outbox_statuses(server) == ["pending"] * 3
    # Hold the saving server (and its relay) until a socket is subscribed on
    # a server started after Redis is back.
    with frozen(server):
        own_redis.start()
        watcher = daphne_factory(REDIS_URL=own_redis.url, REALTIME_RELAY_IN_PROCESS="false")
        ws, _ = await connect(watcher.ws_url)
        await subscribe(ws, "jobs")
    events = [await recv_json(ws, timeout=10) for _ in job_ids]
    assert [e["type"] for e in events] == ["job_created"] * 3
    assert sorted(e["data"]["job_id"] for e in events) == job_ids
    wait_for(lambda: outbox_statuses(server) == ["published"] * 3, 5, what="rows marked")
    await ws.close()


@on_both_databases
async def test_events_a_killed_server_saved_are_relayed_by_the_next_server(
    daphne_factory, own_redis
):
    # The shortest lease: if the kill comes while its relay holds the row
    # (it retries while Redis is away), the row waits that long, not 30 s.
    crashed = daphne_factory(REDIS_URL=own_redis.url, REALTIME_OUTBOX_LEASE="9")
    access = employer_access(crashed)
    own_redis.stop()
    job_id = post_job(crashed, access, "Saved just before the crash")
    wait_for(lambda: outbox_rows(crashed) == [("pending", "")], 10, what="row released")
    crashed.kill()
    own_redis.start()
    # A server that relays nothing holds the socket, so that it is subscribed
    # before the next relaying server starts.
    watcher = daphne_factory(REDIS_URL=own_redis.url, REALTIME_RELAY_IN_PROCESS="false")
    ws, _ = await connect(watcher.ws_url)
    await subscribe(ws, "jobs")
    assert outbox_statuses(watcher) == ["pending"]
    daphne_factory(REDIS_URL=own_redis.url)
    event = await recv_json(ws, timeout=25)
    assert event["type"] == "job_created"
    assert event["data"]["job_id"] == job_id
    await ws.close()
