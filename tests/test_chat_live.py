"""The chat over real sockets, HTTP, server processes and Redis: nothing lost
or doubled across a disconnect, a retry or two processes; who may take part;
typing indicators; read receipts; the limits; notifications of the absent
party and of payments."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass

import pytest

from .live import LiveServer
from .wsclient import connect, recv_json, recv_nothing, send_json, subscribe

pytestmark = pytest.mark.live


@dataclass
class Account:
    id: int
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def sign_up(server: LiveServer, user_type: str) -> Account:
    username = f"u{uuid.uuid4().hex[:10]}"
    credentials = {"username": username, "password": "a-long-passphrase-9"}
    created = server.post("/api/auth/register/", json={**credentials, "user_type": user_type})
    assert created.status_code == 201, created.text
    token = server.post("/api/auth/token/", json=credentials).json()["access"]
    return Account(created.json()["id"], username, token)


def make_staff(server: LiveServer, account: Account) -> None:
    path = server.env["DATABASE_URL"].removeprefix("sqlite:///")
    with closing(sqlite3.connect(path, timeout=10)) as db, db:
        db.execute("UPDATE jobs_user SET is_staff = 1 WHERE id = ?", [account.id])


def accepted_job(server: LiveServer, employer: Account, worker: Account) -> int:
    posted = server.post(
        "/api/jobs/",
        json={"title": "Logo", "job_type": "design", "pay_amount_usd": "120.50"},
        headers=employer.headers,
    )
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["id"]
    accepted = server.post(f"/api/jobs/{job_id}/accept/", headers=worker.headers)
    assert accepted.status_code == 200, accepted.text
    return job_id


async def socket_of(server: LiveServer, account: Account | None):
    url = server.ws_url + (f"?token={account.token}" if account else "")
    ws, _ = await connect(url)
    return ws


def chat_send(channel: str, body: str, client_id: str | None = None) -> dict:
    return {
        "type": "chat_send",
        "channel": channel,
        "data": {"body": body, "client_id": client_id or str(uuid.uuid4())},
    }


async def next_of(ws, *types: str, timeout: float = 10) -> dict:
    """The next message of one of `types`, skipping the others (presence
    events, the sender's own copies of its publications)."""
    deadline = time.monotonic() + timeout
    skipped = []
    while True:
        try:
            message = await recv_json(ws, timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"No {types} within {timeout}s; skipped {skipped}") from None
        if message["type"] in types:
            return message
        skipped.append(message)


async def arrivals(ws, *types: str, quiet: float = 1.5) -> list[dict]:
    """Every message of `types` until none has come for `quiet` seconds."""
    found = []
    while True:
        try:
            message = await recv_json(ws, timeout=quiet)
        except TimeoutError:
            return found
        if message["type"] in types:
            found.append(message)


async def send_and_ack(ws, frame: dict) -> int:
    await send_json(ws, frame)
    ack = await next_of(ws, "chat_ack")
    assert ack["data"]["client_id"] == frame["data"]["client_id"]
    return ack["data"]["message_id"]


async def test_a_conversation_across_two_processes_loses_and_doubles_nothing(server_factory):
    first, second = server_factory(), server_factory()
    employer, worker = sign_up(first, "employer"), sign_up(first, "worker")
    job_id = accepted_job(first, employer, worker)
    channel = f"job.{job_id}"
    boss = await socket_of(first, employer)
    hand = await socket_of(second, worker)
    await subscribe(boss, channel)
    await subscribe(hand, channel)

    sent = [await send_and_ack(boss, chat_send(channel, "Hello, can you start today?"))]
    seen = await next_of(hand, "chat_message")
    assert seen["data"] == {
        "message_id": sent[0],
        "job_id": job_id,
        "sender_id": employer.id,
        "body": "Hello, can you start today?",
        "client_id": seen["data"]["client_id"],
        "created_at": seen["data"]["created_at"],
    }
    assert {"id", "offset", "epoch"} <= set(seen)
    await hand.close()  # mid-conversation

    retried = chat_send(channel, "Second")
    sent.append(await send_and_ack(boss, retried))
    sent.append(await send_and_ack(boss, chat_send(channel, "Third")))
    assert await send_and_ack(boss, retried) == sent[1]  # a retry after a reconnect
    posted = {"body": "Fourth, over HTTP", "client_id": str(uuid.uuid4())}
    created = second.post(f"/api/jobs/{job_id}/messages/", json=posted, headers=employer.headers)
    assert created.status_code == 201, created.text
    again = second.post(f"/api/jobs/{job_id}/messages/", json=posted, headers=employer.headers)
    assert again.status_code == 200
    assert again.json()["message_id"] == created.json()["message_id"]
    sent.append(created.json()["message_id"])

    hand = await socket_of(first, worker)  # back, on the other process
    await send_json(
        hand,
        {
            "type": "subscribe",
            "channels": [channel],
            "since": {channel: {"offset": seen["offset"], "epoch": seen["epoch"]}},
        },
    )
    assert (await next_of(hand, "subscribed"))["data"]["positions"][channel]["recovered"]
    sent.append(await send_and_ack(boss, chat_send(channel, "Fifth, live")))
    received = await arrivals(hand, "chat_message")
    assert [m["data"]["message_id"] for m in received] == sent[1:]
    offsets = [m["offset"] for m in received]
    assert offsets == sorted(set(offsets))

    history = first.get(f"/api/jobs/{job_id}/messages/", headers=worker.headers).json()
    assert [m["message_id"] for m in history["results"]] == sent[::-1]
    assert history["next"] is None
    await boss.close()
    await hand.close()


async def test_who_may_read_and_write_a_jobs_chat(daphne_server):
    server = daphne_server
    employer, worker = sign_up(server, "employer"), sign_up(server, "worker")
    other_worker, staff = sign_up(server, "worker"), sign_up(server, "employer")
    make_staff(server, staff)
    job_id = accepted_job(server, employer, worker)
    channel, url = f"job.{job_id}", f"/api/jobs/{job_id}/messages/"
    # (account, may subscribe and send, GET status, POST status)
    matrix = [
        (employer, True, 200, 201),
        (worker, True, 200, 201),
        (other_worker, False, 403, 403),
        (None, False, 401, 401),
        (staff, False, 200, 403),
    ]
    for account, participant, read, write in matrix:
        headers = account.headers if account else {}
        ws = await socket_of(server, account)
        await send_json(ws, {"type": "subscribe", "channels": [channel]})
        reply = await next_of(ws, "subscribed", "error")
        assert (reply["type"] == "subscribed") == participant, (account, reply)
        await send_json(ws, chat_send(channel, "hi"))
        answer = await next_of(ws, "chat_ack", "error")
        if participant:
            assert answer["type"] == "chat_ack"
        else:
            assert answer["data"]["code"] == "forbidden", answer
            assert answer["data"]["channel"] == channel
        await send_json(ws, chat_send("job.999999", "hi"))
        assert (await next_of(ws, "error"))["data"]["code"] == "forbidden"
        await send_json(ws, {"type": "ping"})
        assert (await next_of(ws, "pong"))["type"] == "pong"  # still open
        await ws.close()
        assert server.get(url, headers=headers).status_code == read
        body = {"body": "over HTTP", "client_id": str(uuid.uuid4())}
        answered = server.post(url, json=body, headers=headers)
        assert answered.status_code == write, answered.text
        if write == 403:
            assert answered.json()["code"] == "permission_denied"
    assert server.get("/api/jobs/999999/messages/", headers=employer.headers).status_code == 404
    assert server.get("/api/chats/", headers=other_worker.headers).json()["results"] == []
    [chat] = server.get("/api/chats/", headers=worker.headers).json()["results"]
    assert chat["job_id"] == job_id
    assert chat["other_participant"]["id"] == employer.id
    assert chat["last_message"]["body"] == "over HTTP"


async def test_typing_is_throttled_ephemeral_and_stops_by_itself(daphne_server):
    server = daphne_server
    employer, worker = sign_up(server, "employer"), sign_up(server, "worker")
    job_id = accepted_job(server, employer, worker)
    channel = f"job.{job_id}"
    boss, hand = await socket_of(server, employer), await socket_of(server, worker)
    position = (await subscribe(boss, channel))["data"]["positions"][channel]
    await subscribe(hand, channel)
    await next_of(boss, "user_online")
    typing = {"type": "typing", "channel": channel, "data": {"state": "typing"}}

    for _ in range(5):  # within well under a second
        await send_json(boss, typing)
    first = await next_of(hand, "typing")
    assert first == {
        "type": "typing",
        "channel": channel,
        "data": {"user_id": employer.id, "state": "typing"},
        "timestamp": first["timestamp"],
    }
    await asyncio.sleep(2)
    await send_json(boss, typing)  # a second later: forwarded
    last_frame = time.monotonic()
    assert (await next_of(hand, "typing"))["data"]["state"] == "typing"
    await send_json(boss, typing)  # throttled, but it keeps the user typing
    last_frame = time.monotonic()
    # No `stopped` before 5 s after the last frame; then one.
    assert await recv_nothing(hand, timeout=4.3)
    stopped = await next_of(hand, "typing", timeout=3)
    assert stopped["data"] == {"user_id": employer.id, "state": "stopped"}
    assert time.monotonic() - last_frame >= 4.5
    assert await recv_nothing(boss, timeout=0.1)  # never to the typist's own sockets

    # The next message stops it at once.
    await send_json(hand, {**typing})
    assert (await next_of(boss, "typing"))["data"]["state"] == "typing"
    await send_and_ack(hand, chat_send(channel, "Done!"))
    got = await arrivals(boss, "typing", "chat_message", quiet=1.5)
    assert {(m["type"], m["data"].get("state")) for m in got} == {
        ("typing", "stopped"),
        ("chat_message", None),
    }
    # Typing is no publication: the history holds the one message only.
    late = await socket_of(server, employer)
    await send_json(
        late, {"type": "subscribe", "channels": [channel], "since": {channel: position}}
    )
    replayed = await arrivals(late, "typing", "chat_message")
    assert [m["type"] for m in replayed] == ["chat_message"]
    for ws in (boss, hand, late):
        await ws.close()


async def test_read_receipts_never_move_backwards(daphne_server):
    server = daphne_server
    employer, worker = sign_up(server, "employer"), sign_up(server, "worker")
    job_id = accepted_job(server, employer, worker)
    channel = f"job.{job_id}"
    boss, hand = await socket_of(server, employer), await socket_of(server, worker)
    await subscribe(boss, channel)
    await subscribe(hand, channel)
    ids = [await send_and_ack(boss, chat_send(channel, f"m{n}")) for n in range(3)]
    assert (
        server.get("/api/chats/", headers=worker.headers).json()["results"][0]["unread_count"] == 3
    )

    await send_json(hand, {"type": "chat_read", "channel": channel, "data": {"message_id": ids[1]}})
    receipt = await next_of(boss, "chat_read")
    assert receipt["data"] == {"user_id": worker.id, "message_id": ids[1]}
    assert {"id", "offset", "epoch"} <= set(receipt)
    await send_json(hand, {"type": "chat_read", "channel": channel, "data": {"message_id": ids[0]}})
    assert not [m for m in await arrivals(boss, "chat_read", quiet=1) if m]
    read_back = server.post(
        f"/api/jobs/{job_id}/messages/read/", json={"message_id": ids[0]}, headers=worker.headers
    )
    assert read_back.json() == {"moved": False, "last_read_id": ids[1]}
    [chat] = server.get("/api/chats/", headers=worker.headers).json()["results"]
    assert chat["unread_count"] == 1
    assert chat["last_message"]["message_id"] == ids[2]
    assert (
        server.get("/api/chats/", headers=employer.headers).json()["results"][0]["unread_count"]
        == 0
    )
    await send_json(hand, {"type": "chat_read", "channel": channel, "data": {"message_id": 0}})
    assert (await next_of(hand, "error"))["data"]["field"] == "message_id"
    await boss.close()
    await hand.close()


async def test_the_limits_of_a_message_and_of_the_rate_across_processes(daphne_factory):
    first, second = daphne_factory(), daphne_factory()
    employer, worker = sign_up(first, "employer"), sign_up(first, "worker")
    job_id = accepted_job(first, employer, worker)
    channel, url = f"job.{job_id}", f"/api/jobs/{job_id}/messages/"
    boss = await socket_of(first, employer)

    refusals = [
        (chat_send(channel, ""), "body"),
        (chat_send(channel, " \n "), "body"),
        (chat_send(channel, "x" * 4001), "body"),
        ({"type": "chat_send", "channel": channel, "data": {"body": "hi"}}, "client_id"),
        (chat_send("jobs", "hi"), "channel"),
        (chat_send("user.1", "hi"), "channel"),
    ]
    for frame, field in refusals:
        await send_json(boss, frame)
        error = (await next_of(boss, "error"))["data"]
        assert (error["code"], error["field"]) == ("invalid_message", field)
    assert await send_and_ack(boss, chat_send(channel, "x" * 4000))
    too_long = second.post(
        url, json={"body": "x" * 4001, "client_id": str(uuid.uuid4())}, headers=employer.headers
    )
    assert too_long.status_code == 400
    assert "body" in too_long.json()

    for _ in range(5):  # 1 + 5 over the socket, 4 over HTTP on the other process: 10
        await send_and_ack(boss, chat_send(channel, "quick"))
    for _ in range(4):
        body = {"body": "quick", "client_id": str(uuid.uuid4())}
        assert second.post(url, json=body, headers=employer.headers).status_code == 201
    refused = chat_send(channel, "one too many")
    await send_json(boss, refused)
    error = (await next_of(boss, "error", "chat_ack"))["data"]
    assert error["code"] == "chat_rate_limited"
    assert error["client_id"] == refused["data"]["client_id"]
    body = {"body": "one too many", "client_id": str(uuid.uuid4())}
    throttled = second.post(url, json=body, headers=employer.headers)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "chat_rate_limited"
    await send_json(boss, {"type": "ping"})
    assert (await next_of(boss, "pong"))["type"] == "pong"  # the socket stays open
    history = first.get(url + "?limit=100", headers=employer.headers).json()["results"]
    assert len(history) == 10
    await boss.close()


async def test_the_absent_party_is_notified_and_payments_reach_both(daphne_server):
    server = daphne_server
    employer, worker = sign_up(server, "employer"), sign_up(server, "worker")
    job_id = accepted_job(server, employer, worker)
    channel = f"job.{job_id}"
    boss, hand = await socket_of(server, employer), await socket_of(server, worker)
    await subscribe(boss, channel)

    away = await send_and_ack(boss, chat_send(channel, "Are you there? " + "z" * 200))
    note = await next_of(hand, "chat_notification")
    assert note["channel"] == f"user.{worker.id}"
    assert note["data"] == {
        "job_id": job_id,
        "message_id": away,
        "sender_id": employer.id,
        "preview": ("Are you there? " + "z" * 200)[:100],
    }
    await subscribe(hand, channel)
    here = await send_and_ack(boss, chat_send(channel, "Good, you are here."))
    got = await arrivals(hand, "chat_message", "chat_notification")
    assert [(m["type"], m["data"]["message_id"]) for m in got] == [("chat_message", here)]

    done = server.post(f"/api/jobs/{job_id}/complete/", headers=employer.headers)
    assert done.status_code == 200, done.text
    for ws, account in ((boss, employer), (hand, worker)):
        paid = await next_of(ws, "payment_released")
        assert paid["channel"] == f"user.{account.id}"
        assert paid["data"] == {
            "job_id": job_id,
            "amount_usd": 120.5,
            "worker_id": worker.id,
            "employer_id": employer.id,
        }
    await boss.close()
    await hand.close()
