"""The delivery core over real sockets, real server processes and real Redis:
slow sockets cut off, Redis restarts without losses, concurrent publishers,
two Redis hosts, encryption at rest, presence after a crash, hostile frames."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
import websockets

from realtime.protocol import ErrorCode

from .live import DAPHNE_COMMAND, PRODUCTION_COMMAND, wait_for
from .wsclient import connect, recv_json, recv_nothing, send_json, subscribe

pytestmark = pytest.mark.live

# The production (uvicorn) and development (daphne) servers, through the launcher.
UVICORN = PRODUCTION_COMMAND
DAPHNE = DAPHNE_COMMAND

SLOW_CONSUMER = "slow_consumer"
CLOSE_SLOW_CONSUMER = 4009
CANARY = "CANARY-7d1f"
# A ping whose data is a lone surrogate, as a client writes it: a JSON escape.
LONE_SURROGATE_PING = r'{"type":"ping","data":{"s":"\ud800"}}'


def sign_up(server, user_type: str) -> str:
    """A new user on the live server; returns their access token."""
    credentials = {"username": f"u{uuid.uuid4().hex[:10]}", "password": "a-long-passphrase-9"}
    created = server.post("/api/auth/register/", json={**credentials, "user_type": user_type})
    assert created.status_code == 201, created.text
    return server.post("/api/auth/token/", json=credentials).json()["access"]


def broadcast(client: httpx.Client, channel: str, **data) -> httpx.Response:
    return client.post("/broadcast", json={"type": "tick", "data": data, "channel": channel})


async def collect(ws, count: int, timeout: float = 15) -> list[dict]:
    return [await recv_json(ws, timeout=timeout) for _ in range(count)]


async def collect_arrivals(
    ws, count: int, timeout: float = 15, *, only: str | None = None
) -> list[dict]:
    """Up to `count` messages (of type `only`, when given), stopping early once
    none comes for `timeout` seconds: what did arrive, for an assertion that
    shows what is missing."""
    arrived: list[dict] = []
    while len(arrived) < count:
        try:
            message = await recv_json(ws, timeout=timeout)
        except TimeoutError:
            break
        if only is None or message["type"] == only:
            arrived.append(message)
    return arrived


def connections(server) -> dict:
    return server.get("/health").json()["connections"]


def slow_disconnects(server) -> int:
    return server.get("/stats").json()["messages"].get("slow_disconnects", 0)


# --- a socket that never reads, by hand -----------------------------------------------


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One final frame as a client sends it (masked)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_stuck_socket(port: int, channel: str) -> socket.socket:
    """A WebSocket on a TCP socket with a small receive buffer that subscribes
    to `channel` and then reads nothing more until the test drains it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # byte by byte: leave the frames unread
        byte = sock.recv(1)
        assert byte, f"handshake cut short: {head!r}"
        head += byte
    assert head.startswith(b"HTTP/1.1 101"), head
    subscribe_frame = json.dumps({"type": "subscribe", "channels": [channel]}).encode()
    sock.sendall(masked_frame(0x1, subscribe_frame))
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sent, up to the end of the TCP connection (FIN or
    reset), answering its close frame as a client would; fails if the
    connection is still open after `timeout` seconds."""
    received = bytearray()
    answered = False
    deadline = time.monotonic() + timeout
    sock.settimeout(1)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            return bytes(received)
        except TimeoutError:
            closes = [p for opcode, p in server_frames(bytes(received)) if opcode == 0x8]
            if closes and not answered:
                answered = True
                with contextlib.suppress(OSError):
                    sock.sendall(masked_frame(0x8, closes[0][:2]))
            continue
        if not chunk:
            return bytes(received)
        received += chunk
    raise AssertionError(
        f"the socket that never read is still connected ({len(received)} bytes read)"
    )


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the complete messages in what a server wrote; a
    frame cut off by a dropped connection is left out."""
    messages: list[tuple[int, bytes]] = []
    fragments: list[bytes] = []
    opcode = 0
    at = 0
    while at + 2 <= len(data):
        first, second = data[at], data[at + 1]
        assert not second & 0x80, "server frames are never masked"
        length = second & 0x7F
        start = at + 2 + {126: 2, 127: 8}.get(length, 0)
        if start > len(data):
            break
        if length == 126:
            (length,) = struct.unpack_from("!H", data, at + 2)
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, at + 2)
        if start + length > len(data):
            break
        opcode = first & 0x0F or opcode
        fragments.append(data[start : start + length])
        if first & 0x80:
            messages.append((opcode, b"".join(fragments)))
            fragments = []
        at = start + length
    return messages


def tcp_send_buffer_max() -> int:
    """The most the kernel may buffer for a TCP socket's sends."""
    return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def tree_memory_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory (VmRSS; VmHWM: its peak so far) of a process and its
    descendants (a launcher may fork)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1]) * 1024
    return total


async def publish_many(url: str, channel: str, count: int, *, pad: int, workers: int = 4) -> None:
    """Publish `count` ticks (data `n`, and `pad` bytes) from a few concurrent clients."""
    numbers = iter(range(count))
    padding = "x" * pad

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for n in numbers:
                response = await client.post(
                    "/broadcast",
                    json={"type": "tick", "data": {"n": n, "pad": padding}, "channel": channel},
                )
                assert response.status_code == 202, response.text

    await asyncio.gather(*(worker() for _ in range(workers)))


# --- 1. slow sockets ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "with_redis", "buffer_bytes"),
    [
        pytest.param(UVICORN, True, "262144", id="uvicorn-redis"),
        pytest.param(DAPHNE, True, "262144", id="daphne-redis"),
        pytest.param(DAPHNE, False, "262144", id="daphne-memory"),
        pytest.param(UVICORN, False, "262144", id="uvicorn-memory"),
        pytest.param(UVICORN, True, None, id="uvicorn-redis-default-buffer"),
    ],
)
async def test_sockets_that_never_read_are_cut_off_and_the_others_get_everything(
    daphne_factory, redis_url, command, with_redis, buffer_bytes
):
    env = {"REDIS_URL": redis_url if with_redis else ""}
    if buffer_bytes is not None:
        env["REALTIME_MAX_SOCKET_BUFFER_BYTES"] = buffer_bytes
    count, pad = 3000, 4000
    # The stream must be far more than the kernel and the server can hold for a socket.
    assert tcp_send_buffer_max() + int(buffer_bytes or 2**20) < count * pad // 2, (
        "raise count for this host"
    )
    server = daphne_factory(command=command, **env)
    stuck = [open_stuck_socket(server.port, "announcements") for _ in range(8)]
    # It reads all it is sent, buffering without limit: never slow itself.
    healthy, _ = await connect(server.ws_url, max_queue=None)
    start = (await subscribe(healthy, "announcements"))["data"]["positions"]["announcements"]
    wait_for(
        lambda: connections(server)["by_channel"].get("announcements") == 9,
        10,
        what="9 sockets on announcements",
    )
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for n in range(20):  # warm up the broadcast path before measuring memory
            assert broadcast(client, "jobs", n=n).status_code == 202
    rss_before = tree_memory_bytes(server.pid)

    receiving = asyncio.create_task(collect_arrivals(healthy, count, timeout=30))
    await publish_many(server.url, "announcements", count, pad=pad)
    received = await receiving
    assert len(received) == count, f"the socket that reads got {len(received)} of {count}"
    assert [m["offset"] for m in received] == list(
        range(start["offset"] + 1, start["offset"] + count + 1)
    )
    assert sorted(m["data"]["n"] for m in received) == list(range(count))
    assert {m["epoch"] for m in received} == {start["epoch"]}

    wait_for(lambda: slow_disconnects(server) >= 8, 20, what="8 slow disconnects in /stats")
    rss_growth = tree_memory_bytes(server.pid, "VmHWM") - rss_before
    for sock in stuck:  # dropped: what was sent ends in a FIN or a reset
        with sock:
            frames = server_frames(read_until_closed(sock, timeout=10))
        texts = [json.loads(payload) for opcode, payload in frames if opcode == 0x1]
        assert [m["type"] for m in texts[:2]] == ["connected", "subscribed"]
        publications = [m for m in texts[2:] if m["type"] == "tick"]
        offsets = [m["offset"] for m in publications]
        assert offsets == list(range(start["offset"] + 1, start["offset"] + len(offsets) + 1))
        assert len(offsets) < count
        others = [m for m in texts[2:] if m["type"] != "tick"]
        assert all(m["type"] == "error" for m in others), others
        assert {m["data"]["code"] for m in others} <= {SLOW_CONSUMER}, others
        closes = [payload for opcode, payload in frames if opcode == 0x8]
        assert all(struct.unpack("!H", p[:2])[0] == CLOSE_SLOW_CONSUMER for p in closes), closes
    assert rss_growth < 60 * 2**20, f"server memory grew by {rss_growth / 2**20:.0f} MB"

    await send_json(healthy, {"type": "ping"})
    assert (await recv_json(healthy))["type"] == "pong"
    await healthy.close()


# --- 2 and 9. Redis restarted ---------------------------------------------------------


def outage_lines(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if "redis" in line.lower() or any(level in line for level in ("WARNING", "ERROR"))
    ]


async def test_a_socket_open_through_a_redis_outage_gets_every_accepted_publication_once(
    daphne_factory, own_redis
):
    server = daphne_factory(command=UVICORN, REDIS_URL=own_redis.url)
    ws, _ = await connect(server.ws_url)
    before = (await subscribe(ws, "jobs"))["data"]["positions"]["jobs"]
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for n in range(3):
            assert broadcast(client, "jobs", n=n).status_code == 202
    assert [m["data"]["n"] for m in await collect(ws, 3)] == [0, 1, 2]

    own_redis.stop()
    log_at_stop = len(server.log())
    for beat in range(4):  # ~8 s without Redis; the socket stays open
        await asyncio.sleep(2)
        await send_json(ws, {"type": "ping", "data": {"beat": beat}})
        pong = await recv_json(ws)
        assert (pong["type"], pong["data"]) == ("pong", {"beat": beat})
    during_outage = server.log()[log_at_stop:]
    own_redis.start()

    accepted: list[str] = []
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=server.url, timeout=10) as client:
        n = 0
        while not accepted:  # until the first 202
            assert time.monotonic() < deadline, "no broadcast accepted within 30 s of the restart"
            response = broadcast(client, "jobs", n=n)
            if response.status_code == 202:
                accepted.append(response.json()["id"])
            n += 1
        for later in range(n, n + 20):
            response = broadcast(client, "jobs", n=later)
            assert response.status_code == 202, response.text
            accepted.append(response.json()["id"])

    # Publications only: the server may tell the socket more after Redis returned.
    received = await collect_arrivals(ws, len(accepted), only="tick")
    assert [m["id"] for m in received] == accepted
    assert [m["offset"] for m in received] == list(range(1, len(accepted) + 1))
    epochs = {m["epoch"] for m in received}
    assert len(epochs) == 1
    assert epochs != {before["epoch"]}
    assert await collect_arrivals(ws, 1, timeout=1, only="tick") == []
    await ws.close()

    assert len(outage_lines(during_outage)) <= 5, during_outage
    assert "Traceback" not in server.log()


async def test_once_health_is_back_after_a_redis_restart_the_next_broadcast_is_accepted(
    daphne_factory, own_redis
):
    server = daphne_factory(command=UVICORN, REDIS_URL=own_redis.url)
    ws, _ = await connect(server.ws_url)
    await subscribe(ws, "jobs")
    tick = {"type": "tick", "channel": "jobs"}
    assert server.post("/broadcast", json=tick).status_code == 202
    own_redis.stop()
    assert server.get("/health").status_code == 503
    own_redis.start()
    wait_for(lambda: server.get("/health").status_code == 200, 15, what="healthy again")
    response = server.post("/broadcast", json=tick)
    assert response.status_code == 202, response.text
    await ws.close()


async def test_publications_accepted_right_after_redis_restarts_reach_a_socket_that_stayed(
    daphne_factory, own_redis
):
    subscriber = daphne_factory(command=DAPHNE, REDIS_URL=own_redis.url)
    publisher = daphne_factory(command=UVICORN, REDIS_URL=own_redis.url)
    ws, _ = await connect(subscriber.ws_url)
    before = (await subscribe(ws, "jobs"))["data"]["positions"]["jobs"]
    with httpx.Client(base_url=publisher.url, timeout=10) as client:
        assert broadcast(client, "jobs", n=-1).status_code == 202
        assert (await recv_json(ws))["data"]["n"] == -1

        own_redis.stop()
        own_redis.start()
        n = 0
        deadline = time.monotonic() + 20
        while n < 5:  # as fast as /broadcast accepts them
            assert time.monotonic() < deadline, f"only {n} broadcasts accepted after the restart"
            if broadcast(client, "jobs", n=n).status_code == 202:
                n += 1

    received = await collect_arrivals(ws, 5, only="tick")
    assert [m["data"]["n"] for m in received] == [0, 1, 2, 3, 4]
    assert [m["offset"] for m in received] == [1, 2, 3, 4, 5]
    assert len({m["epoch"] for m in received} | {before["epoch"]}) == 2
    assert await collect_arrivals(ws, 1, timeout=1, only="tick") == []
    await ws.close()


# --- 3. concurrent publishers -----------------------------------------------------------


def publish_race(server, publisher: int, count: int, start: threading.Barrier) -> list[str]:
    ids = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        start.wait(timeout=10)
        for n in range(count):
            response = broadcast(client, "race", publisher=publisher, n=n)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
    return ids


async def test_concurrent_publishers_on_two_servers_give_every_socket_one_order(daphne_factory):
    servers = [
        daphne_factory(command=UVICORN, REALTIME_PUBLIC_CHANNELS="race"),
        daphne_factory(command=DAPHNE, REALTIME_PUBLIC_CHANNELS="race"),
    ]
    sockets = []
    for server in servers:
        for _ in range(2):
            ws, _ = await connect(server.ws_url)
            position = (await subscribe(ws, "race"))["data"]["positions"]["race"]
            assert position["offset"] == 0
            sockets.append(ws)
    receiving = [asyncio.create_task(collect(ws, 200)) for ws in sockets]
    start = threading.Barrier(4)
    published = await asyncio.gather(
        *(
            asyncio.to_thread(publish_race, servers[p % 2], p, 50, start)
            for p in range(4)  # two publishers on each server
        )
    )
    received = [await task for task in receiving]

    for messages in received:
        assert [m["offset"] for m in messages] == list(range(1, 201))
        assert [m["id"] for m in messages] == [m["id"] for m in received[0]]
        assert len({m["epoch"] for m in messages}) == 1
    assert {m["id"] for m in received[0]} == {i for ids in published for i in ids}
    for p, ids in enumerate(published):  # each publisher's own order is kept
        assert [m["id"] for m in received[0] if m["data"]["publisher"] == p] == ids
    for ws in sockets:
        assert await recv_nothing(ws)
        await ws.close()


# --- 4. two Redis hosts -------------------------------------------------------------------


async def test_two_redis_hosts_share_the_channels_and_each_publication_arrives_once(
    daphne_factory, redis_url, own_redis
):
    channels = [f"c{i}" for i in range(20)]
    hosts = [redis_url, own_redis.url]
    env = {"REDIS_URL": ",".join(hosts), "REALTIME_PUBLIC_CHANNELS": ",".join(channels)}
    servers = [daphne_factory(command=UVICORN, **env), daphne_factory(command=DAPHNE, **env)]
    sockets = []
    for server in servers:
        ws, _ = await connect(server.ws_url)
        positions = (await subscribe(ws, *channels))["data"]["positions"]
        assert {name: p["offset"] for name, p in positions.items()} == dict.fromkeys(channels, 0)
        sockets.append(ws)

    expected: dict[str, list[str]] = {name: [] for name in channels}
    clients = [httpx.Client(base_url=server.url, timeout=10) for server in servers]
    for round_ in range(2):
        for i, name in enumerate(channels):
            response = broadcast(clients[(i + round_) % 2], name, n=round_)
            assert response.status_code == 202, response.text
            expected[name].append(response.json()["id"])
    for client in clients:
        client.close()

    for ws in sockets:
        got: dict[str, list[dict]] = {name: [] for name in channels}
        for message in await collect(ws, 2 * len(channels)):
            got[message["channel"]].append(message)
        assert {name: [m["id"] for m in ms] for name, ms in got.items()} == expected
        assert all([m["offset"] for m in ms] == [1, 2] for ms in got.values()), got
        assert await recv_nothing(ws)

    prefix = servers[0].env["CHANNEL_LAYER_PREFIX"]
    for url in hosts:
        host = redis.Redis.from_url(url)
        used = host.pubsub_channels(f"*{prefix}*") + list(host.scan_iter(match=f"*{prefix}*"))
        host.close()
        assert used, f"no channel or key of this deployment on {url}"
    for ws in sockets:
        await ws.close()


# --- 5. encryption at rest ------------------------------------------------------------------


class Monitor:
    """Every command a Redis server executes, from its MONITOR stream."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(b"MONITOR\r\n")
        self.sock.settimeout(None)
        self.data = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk

    def stop(self) -> bytes:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)
        return bytes(self.data)


def stored_values(client: redis.Redis) -> dict[bytes, bytes]:
    """Every key of a Redis and a dump of its value, whatever its type."""
    readers = {
        b"string": lambda key: [client.get(key)],
        b"list": lambda key: client.lrange(key, 0, -1),
        b"hash": lambda key: [b for pair in client.hgetall(key).items() for b in pair],
        b"set": lambda key: list(client.smembers(key)),
        b"zset": lambda key: [m for m, _ in client.zrange(key, 0, -1, withscores=True)],
        b"stream": lambda key: [repr(client.xrange(key)).encode()],
    }
    dump = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        values = readers[kind](key) if kind in readers else [kind]
        dump[key] = b"\n".join(value or b"" for value in values)
    return dump


async def test_with_encryption_keys_redis_never_sees_the_plaintext_of_a_publication(
    daphne_factory, own_redis
):
    monitor = Monitor(own_redis.port)
    server = daphne_factory(
        command=UVICORN,
        REDIS_URL=own_redis.url,
        REALTIME_ENCRYPTION_KEYS="key-one,key-two",
    )
    ws, _ = await connect(server.ws_url)
    start = (await subscribe(ws, "jobs"))["data"]["positions"]["jobs"]
    response = server.post(
        "/broadcast", json={"type": "note", "data": {"text": CANARY}, "channel": "jobs"}
    )
    assert response.status_code == 202
    access = sign_up(server, "employer")
    created = server.post(
        "/api/jobs/",
        json={"title": f"{CANARY} job", "job_type": "design", "pay_amount_usd": "10"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert created.status_code == 201, created.text
    note, job = await collect(ws, 2)
    assert (note["type"], note["data"]["text"]) == ("note", CANARY)
    assert (job["type"], job["data"]["title"]) == ("job_created", f"{CANARY} job")

    # The history is stored encrypted and still replays in plaintext.
    again, _ = await connect(server.ws_url)
    await send_json(again, {"type": "subscribe", "channels": ["jobs"], "since": {"jobs": start}})
    reply = await recv_json(again)
    assert reply["data"]["positions"]["jobs"]["recovered"] is True
    assert [m["id"] for m in await collect(again, 2)] == [note["id"], job["id"]]
    for socket_ in (ws, again):
        await socket_.close()

    commands = monitor.stop()
    assert commands.count(b"\r\n") > 10, "MONITOR saw nothing: was the server on this Redis?"
    leaked = [line for line in commands.split(b"\r\n") if CANARY.encode() in line]
    assert leaked == [], leaked[:3]
    with redis.Redis(port=own_redis.port) as client:
        stored = stored_values(client)
    assert stored, "nothing stored in Redis"
    assert [key for key, value in stored.items() if CANARY.encode() in key + value] == []


# --- 6. presence after a crash ----------------------------------------------------------


@pytest.mark.slow
async def test_a_user_on_a_process_that_crashed_goes_offline_for_the_others_within_30s(
    daphne_factory,
):
    survivor = daphne_factory(command=DAPHNE)
    doomed = daphne_factory(command=DAPHNE)
    boss = sign_up(survivor, "employer")
    hand = sign_up(survivor, "worker")
    job = survivor.post(
        "/api/jobs/",
        json={"title": "t", "job_type": "design", "pay_amount_usd": "10"},
        headers={"Authorization": f"Bearer {boss}"},
    ).json()
    accepted = survivor.post(
        f"/api/jobs/{job['id']}/accept/", headers={"Authorization": f"Bearer {hand}"}
    )
    assert accepted.status_code == 200, accepted.text
    channel = f"job.{job['id']}"
    worker, _ = await connect(survivor.ws_url + f"?token={hand}")
    await subscribe(worker, channel)
    employer, hello = await connect(doomed.ws_url + f"?token={boss}")
    await subscribe(employer, channel)
    employer_id = hello["data"]["user_id"]
    online = await recv_json(worker, timeout=10)
    assert (online["type"], online["channel"], online["data"]["user_id"]) == (
        "user_online",
        channel,
        employer_id,
    )

    doomed.kill()
    offline = await recv_json(worker, timeout=32)
    assert (offline["type"], offline["channel"]) == ("user_offline", channel)
    assert (offline["data"]["user_id"], offline["data"]["user_type"]) == (employer_id, "employer")
    await worker.close()


# --- 7. lone surrogates -------------------------------------------------------------------


@pytest.mark.parametrize("command", [UVICORN, DAPHNE], ids=["uvicorn", "daphne"])
async def test_a_lone_surrogate_gets_invalid_json_and_leaves_no_socket_behind(
    daphne_factory, command
):
    server = daphne_factory(command=command, REALTIME_MAX_SOCKETS_PER_USER="5")
    url = server.ws_url + f"?token={sign_up(server, 'worker')}"
    for round_ in range(10):  # 50 sockets, 5 open at a time
        sockets = [(await connect(url))[0] for _ in range(5)]
        for ws in sockets:
            await ws.send(LONE_SURROGATE_PING)
            reply = await recv_json(ws)
            assert (reply["type"], reply["data"]["code"]) == ("error", ErrorCode.INVALID_JSON)
            await send_json(ws, {"type": "ping", "data": {"round": round_}})
            pong = await recv_json(ws)
            assert (pong["type"], pong["data"]) == ("pong", {"round": round_})
        for ws in sockets:
            await ws.close()
        wait_for(lambda: connections(server)["total"] == 0, 5, what="no sockets open")

    sockets = [(await connect(url))[0] for _ in range(5)]
    for ws in sockets:
        await send_json(ws, {"type": "ping"})
        assert (await recv_json(ws))["type"] == "pong"
    async with websockets.connect(url) as sixth:  # the limit still holds
        refusal = await recv_json(sixth)
        assert refusal["data"]["code"] == ErrorCode.TOO_MANY_CONNECTIONS
    for ws in sockets:
        await ws.close()
    log = server.log()
    assert "Traceback" not in log
    assert "UnicodeEncodeError" not in log


# --- 8. too many subscriptions at once --------------------------------------------------


async def test_subscribing_past_the_limit_at_once_gets_one_error_and_nothing_else(daphne_factory):
    server = daphne_factory(command=UVICORN, REALTIME_MAX_SUBSCRIPTIONS="100")
    ws, _ = await connect(server.ws_url)
    channels = [f"job.{n}" for n in range(1, 201)]
    await send_json(ws, {"type": "subscribe", "channels": channels})
    reply = await recv_json(ws)
    assert (reply["type"], reply["data"]["code"]) == ("error", ErrorCode.TOO_MANY_SUBSCRIPTIONS)
    assert await recv_nothing(ws, timeout=1)
    await send_json(ws, {"type": "ping"})
    assert (await recv_json(ws))["type"] == "pong"
    await ws.close()
