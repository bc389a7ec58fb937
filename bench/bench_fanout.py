#!/usr/bin/env python
"""
Fan-out benchmark for any server speaking the seed protocol.

    /ws              connected -> subscribe -> subscribed; publications arrive as
                     {"type": <type>, "data": {...}, "timestamp": ..., ...}
    POST /broadcast  {"type", "data", "channel"}  (202 ours, 200 the seed peer)
    GET  /health

Three commands (stdlib + websockets + httpx only):

    run      one measurement against one running server (the default command):
             bench_fanout.py --url http://127.0.0.1:8090 --pid 1234 --sockets 1000
    compare  two running servers, alternated for --rounds rounds:
             bench_fanout.py compare --server ours=http://127.0.0.1:8090@1234 \
                                     --server peer=http://127.0.0.1:8091@5678
    spawn    like compare, but starts both servers itself (fresh servers on free
             ports for every run), and stops them afterwards:
             bench_fanout.py spawn --sockets 1000 --messages 100 --rounds 3

What one run does:

 1. warm-up: a few sockets connect, subscribe, receive one broadcast, close
    (so lazily imported code and the hub exist before anything is measured);
 2. reads the server's resident memory (VmRSS of --pid and its descendants);
 3. opens --sockets WebSockets, split across --client-procs processes, in
    parallel batches, each offering permessage-deflate like a browser (the
    offer `websockets.connect(compression="deflate")` makes; the client runs
    websockets' sans-I/O protocol straight from asyncio callbacks, which is
    cheaper per message than its asyncio client) and subscribing to --channel,
    and waits for every `subscribed`;
 4. after --settle seconds idle, reads the memory again: KB per socket is
    (RSS with N sockets open - RSS before) / N;
 5. reads the server's CPU time (utime+stime), fires --messages broadcasts
    through one keep-alive HTTP connection, back to back (--rate 0) or at a
    fixed rate, each carrying {"seq": i, "sent": time.time()} in `data`;
 6. waits until every socket has every message, or --timeout seconds after
    the last send; reads the CPU time again;
 7. reports delivered / expected / lost / duplicated / out of order (per socket,
    seq must grow by one), latency percentiles (receive time - "sent"),
    deliveries per second (delivered / (last receipt - first send)), server CPU
    per delivered message, KB per socket, and the client's own CPU use (so a
    saturated client is visible rather than silently measured).

Output: a readable table, then one line `RESULT {json}` (compare/spawn: one
`RESULT` line per run and a final `COMPARE {json}` line, with the median of
each metric per server and the ratios first/second).

`compare` reuses the running servers, so from the second round on a server
may reuse memory freed by the previous round and report fewer KB per socket;
`spawn` starts a fresh server for every run and has no such bias.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import math
import multiprocessing as mp
import os
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------
# System helpers
# --------------------------------------------------------------------------------------


def raise_nofile(want: int | None = None) -> int:
    """Raise the soft open-files limit to the hard limit (or `want`); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if want is not None:
        target = min(target, want)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """pid and every live descendant (e.g. runserver's autoreloader child)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _read_stat(int(entry))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def proc_cpu_seconds(pid: int) -> float:
    fields = _read_stat(pid)
    if fields is None:
        return 0.0
    # After "pid (comm) ": state=0 ppid=1 ... utime=11 stime=12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class ServerSample:
    cpu_s: float
    rss_kb: int
    pids: list[int]
    at: float


def sample_server(pids: list[int]) -> ServerSample | None:
    if not pids:
        return None
    every: list[int] = []
    for pid in pids:
        for p in descendants(pid):
            if p not in every:
                every.append(p)
    return ServerSample(
        cpu_s=sum(proc_cpu_seconds(p) for p in every),
        rss_kb=sum(proc_rss_kb(p) for p in every),
        pids=every,
        at=time.time(),
    )


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(v) for v in parts[:8]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


async def wait_quiet(max_wait: float, threshold: float, log: Any = sys.stderr) -> float:
    """Wait (up to max_wait s) until the machine's busy CPU, over 1 s, is below
    `threshold` cores: someone else's test run would skew every figure.
    Returns the last reading, in cores."""
    deadline = time.time() + max_wait
    warned = False
    while True:
        b0, t0 = machine_cpu()
        await asyncio.sleep(1.0)
        b1, t1 = machine_cpu()
        cores = (b1 - b0) / CLK_TCK / 1.0
        if cores < threshold or time.time() >= deadline:
            if cores >= threshold:
                print(
                    f"  ! machine still busy ({cores:.2f} cores) after {max_wait:.0f}s; "
                    "measuring anyway",
                    file=log,
                    flush=True,
                )
            return cores
        if not warned:
            print(
                f"  .. machine busy ({cores:.2f} cores), waiting for it to calm down",
                file=log,
                flush=True,
            )
            warned = True


def percentile(sorted_vals: list[float] | array.array, q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence."""
    n = len(sorted_vals)
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * n))
    return sorted_vals[rank - 1]


def ws_url(http_url: str, path: str = "/ws") -> str:
    base = http_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + path
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + path
    return base + path


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass
class RunConfig:
    url: str = "http://127.0.0.1:8090"
    ws_path: str = "/ws"
    sockets: int = 1000
    channel: str = "bench"
    type: str = "bench"
    messages: int = 100
    rate: float = 0.0
    timeout: float = 30.0
    client_procs: int = 2
    connect_concurrency: int = 100
    connect_timeout: float = 120.0
    settle: float = 1.0
    warmup: int = 5
    pids: list[int] = field(default_factory=list)
    api_key: str | None = None
    origin: str | None = None
    compression: bool = True
    payload_bytes: int = 0
    label: str = ""


# --------------------------------------------------------------------------------------
# Client worker process
# --------------------------------------------------------------------------------------


class LeanSocket(asyncio.Protocol):
    """A WebSocket client on websockets' sans-I/O protocol, driven straight
    from asyncio's data_received callback.

    It offers exactly what `websockets.connect()` offers (permessage-deflate,
    via the same `enable_client_permessage_deflate`), but skips the per-message
    task wake-ups of the asyncio client, so that one client process can follow
    thousands of sockets at tens of thousands of messages per second without
    becoming what the benchmark measures. Pings are answered, closes echoed,
    by the sans-I/O protocol itself.
    """

    def __init__(self, cfg: RunConfig) -> None:
        extensions = enable_client_permessage_deflate(None) if cfg.compression else None
        self.proto = ClientProtocol(
            parse_uri(ws_url(cfg.url, cfg.ws_path)),
            origin=cfg.origin,  # type: ignore[arg-type]
            extensions=extensions,
            max_size=2**22,
        )
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[Response] = loop.create_future()
        self.setup: asyncio.Queue[Any] = asyncio.Queue()
        self.on_text: Callable[[bytes, float], None] | None = None
        self.closed = False
        self._parts: list[bytes] = []

    # asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proto.send_request(self.proto.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        t = time.time()
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT or event.opcode is Opcode.CONT:
                    if not event.fin:
                        self._parts.append(event.data)
                        continue
                    payload = event.data
                    if self._parts:
                        payload = b"".join(self._parts) + payload
                        self._parts = []
                    if self.on_text is not None:
                        self.on_text(payload, t)
                    else:
                        self.setup.put_nowait(payload)
            elif isinstance(event, Response):
                if not self.opened.done():
                    if self.proto.handshake_exc is not None:
                        self.opened.set_exception(self.proto.handshake_exc)
                    else:
                        self.opened.set_result(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("connection closed"))
        self.setup.put_nowait(None)

    # helpers ------------------------------------------------------------------------
    def _flush(self) -> None:
        if self.transport is None:
            return
        for chunk in self.proto.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def send_json(self, obj: Any) -> None:
        self.proto.send_text(json.dumps(obj).encode())
        self._flush()

    async def next_json(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.setup.get(), timeout)
        if raw is None:
            raise ConnectionError("connection closed during setup")
        return json.loads(raw)

    def extension(self) -> str:
        names = [e.name for e in getattr(self.proto, "extensions", [])]
        return ",".join(names) or "(none)"

    def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.proto.send_close(1000)
            self._flush()
        except Exception:  # noqa: BLE001 - already closing
            pass
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_subscribed(cfg: RunConfig, attempts: int = 3) -> LeanSocket:
    """Connect, wait for `connected`, subscribe, wait for `subscribed`."""
    host, port = httpx.URL(cfg.url).host, httpx.URL(cfg.url).port or 80
    loop = asyncio.get_running_loop()
    last: BaseException | None = None
    for attempt in range(attempts):
        sock: LeanSocket | None = None
        try:
            _, sock = await asyncio.wait_for(
                loop.create_connection(lambda: LeanSocket(cfg), host, port), 30
            )
            await asyncio.wait_for(sock.opened, 30)
            first = await sock.next_json(30)
            if first.get("type") != "connected":
                raise RuntimeError(f"first frame is {first.get('type')!r}, not 'connected'")
            sock.send_json({"type": "subscribe", "channels": [cfg.channel]})
            while True:
                msg = await sock.next_json(30)
                if msg.get("type") == "subscribed":
                    break
                if msg.get("type") == "error":
                    raise RuntimeError(f"subscribe refused: {msg}")
            return sock
        except Exception as exc:  # noqa: BLE001 - reported as a connect failure
            last = exc
            if sock is not None:
                sock.abort()
            await asyncio.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"{type(last).__name__}: {last}")


class SocketState:
    __slots__ = ("seen", "distinct", "last", "maxseq", "received", "dups", "ooo", "gaps")

    def __init__(self, m: int) -> None:
        self.seen = bytearray(m)
        self.distinct = 0
        self.last = -1
        self.maxseq = -1
        self.received = 0
        self.dups = 0
        self.ooo = 0  # arrived after a higher seq (went backwards)
        self.gaps = 0  # jumped forward by more than one


class Worker:
    def __init__(self, conn: Any, cfg: RunConfig, n: int, index: int) -> None:
        self.conn = conn
        self.cfg = cfg
        self.n = n
        self.index = index
        self.m = cfg.messages
        self.socks: list[tuple[LeanSocket, SocketState]] = []
        self.latencies = array.array("d")
        self.other = 0
        self.foreign = 0
        self.first_recv = math.inf
        self.last_recv = 0.0
        self.complete = 0
        self.done_sent = False
        self.failures: dict[str, int] = {}
        self.extensions: dict[str, int] = {}

    async def connect_all(self) -> None:
        sem = asyncio.Semaphore(self.cfg.connect_concurrency)

        async def one() -> None:
            async with sem:
                try:
                    sock = await open_subscribed(self.cfg)
                except Exception as exc:  # noqa: BLE001
                    key = str(exc)[:120]
                    self.failures[key] = self.failures.get(key, 0) + 1
                    return
            ext = sock.extension()
            self.extensions[ext] = self.extensions.get(ext, 0) + 1
            st = SocketState(self.m)
            sock.on_text = self._receiver(st)
            # Anything that arrived between `subscribed` and now.
            while not sock.setup.empty():
                raw = sock.setup.get_nowait()
                if raw is not None:
                    sock.on_text(raw, time.time())
            self.socks.append((sock, st))

        await asyncio.gather(*(one() for _ in range(self.n)))

    def _check_done(self) -> None:
        if not self.done_sent and self.complete >= len(self.socks) and self.m > 0:
            self.done_sent = True
            self.conn.send(("done", {"at": time.time()}))

    def _receiver(self, st: SocketState) -> Callable[[bytes, float], None]:
        m = self.m
        want_type = self.cfg.type
        loads = json.loads
        lat = self.latencies

        def on_text(raw: bytes, t: float) -> None:
            try:
                msg = loads(raw)
                if msg.get("type") != want_type:
                    self.other += 1
                    return
                data = msg["data"]
                seq = data["seq"]
                sent = data["sent"]
            except (ValueError, KeyError, TypeError, AttributeError):
                self.foreign += 1
                return
            if not (isinstance(seq, int) and 0 <= seq < m):
                self.foreign += 1
                return
            st.received += 1
            if t < self.first_recv:
                self.first_recv = t
            if t > self.last_recv:
                self.last_recv = t
            lat.append((t - sent) * 1000.0)
            if st.seen[seq]:
                st.dups += 1
                return
            st.seen[seq] = 1
            st.distinct += 1
            if seq < st.maxseq:
                st.ooo += 1
            elif seq > st.maxseq + 1:
                st.gaps += 1
            st.last = seq
            if seq > st.maxseq:
                st.maxseq = seq
            if st.distinct == m:
                self.complete += 1
                self._check_done()

        return on_text

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def on_readable() -> None:
            try:
                inbox.put_nowait(self.conn.recv())
            except EOFError:
                loop.remove_reader(self.conn.fileno())
                inbox.put_nowait(("finish", {}))

        loop.add_reader(self.conn.fileno(), on_readable)
        t0 = time.time()
        await self.connect_all()
        t1 = time.time()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self.conn.send(
            (
                "ready",
                {
                    "connected": len(self.socks),
                    "failures": self.failures,
                    "connect_s": t1 - t0,
                    "extensions": self.extensions,
                },
            )
        )
        if self.m > 0:
            self._check_done()  # every socket may already be complete (or none opened)
        while True:
            cmd, _ = await inbox.get()
            if cmd == "finish":
                break
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        t_finish = time.time()
        closed_early = sum(1 for sock, _ in self.socks if sock.closed)
        for sock, _ in self.socks:
            sock.on_text = None
            sock.close()
        await asyncio.sleep(0.2)
        for sock, _ in self.socks:
            sock.abort()
        states = [st for _, st in self.socks]
        self.conn.send(
            (
                "result",
                {
                    "sockets": len(states),
                    "received": sum(st.received for st in states),
                    "distinct": sum(st.distinct for st in states),
                    "dups": sum(st.dups for st in states),
                    "ooo": sum(st.ooo for st in states),
                    "gaps": sum(st.gaps for st in states),
                    "lost": sum(self.m - st.distinct for st in states),
                    "sockets_incomplete": sum(1 for st in states if st.distinct < self.m),
                    "closed_early": closed_early,
                    "other": self.other,
                    "foreign": self.foreign,
                    "first_recv": self.first_recv if self.first_recv != math.inf else None,
                    "last_recv": self.last_recv or None,
                    "latencies": self.latencies.tobytes(),
                    "cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
                    "cpu_sys_s": ru1.ru_stime - ru0.ru_stime,
                    "wall_s": t_finish - t1,
                },
            )
        )


def worker_main(conn: Any, cfg_dict: dict[str, Any], n: int, index: int) -> None:
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    cfg = RunConfig(**cfg_dict)
    try:
        asyncio.run(Worker(conn, cfg, n, index).run())
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# One run (parent process)
# --------------------------------------------------------------------------------------


def http_client(cfg: RunConfig) -> httpx.AsyncClient:
    headers = {"Content-Type": "application/json"}
    if cfg.api_key:
        headers["Authorization"] = f"Api-Key {cfg.api_key}"
    return httpx.AsyncClient(
        base_url=cfg.url,
        headers=headers,
        timeout=30,
        trust_env=False,  # no proxies: local traffic only
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def warm_up(cfg: RunConfig, client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    r.raise_for_status()
    if cfg.warmup <= 0:
        return
    socks = await asyncio.gather(*(open_subscribed(cfg) for _ in range(cfg.warmup)))
    body = {"type": cfg.type, "data": {"warmup": True}, "channel": cfg.channel}
    r = await client.post("/broadcast", content=json.dumps(body))
    if r.status_code not in (200, 202):
        raise RuntimeError(f"warm-up broadcast answered {r.status_code}: {r.text[:300]}")
    for sock in socks:
        while True:
            msg = await sock.next_json(10)
            if msg.get("type") == cfg.type:
                break
    for sock in socks:
        sock.close()


async def send_broadcasts(cfg: RunConfig, client: httpx.AsyncClient, stats: dict[str, Any]) -> None:
    pad = "x" * cfg.payload_bytes if cfg.payload_bytes else None
    statuses: dict[str, int] = {}
    post_ms: list[float] = []
    late = 0
    start = time.time()
    stats["first_send"] = start
    for i in range(cfg.messages):
        if cfg.rate > 0:
            due = start + i / cfg.rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5 / cfg.rate:
                late += 1
        sent = time.time()
        data: dict[str, Any] = {"seq": i, "sent": sent}
        if pad:
            data["pad"] = pad
        body = json.dumps({"type": cfg.type, "data": data, "channel": cfg.channel})
        try:
            r = await client.post("/broadcast", content=body)
            key = str(r.status_code)
        except httpx.HTTPError as exc:
            key = type(exc).__name__
        post_ms.append((time.time() - sent) * 1000.0)
        statuses[key] = statuses.get(key, 0) + 1
    stats["last_send"] = time.time()
    stats["statuses"] = statuses
    post_ms.sort()
    stats["post_ms_p50"] = percentile(post_ms, 50)
    stats["post_ms_p99"] = percentile(post_ms, 99)
    stats["post_ms_max"] = post_ms[-1] if post_ms else None
    stats["late_sends"] = late


def split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total)) if total else 1
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


async def run_once(cfg: RunConfig, log: Any = sys.stderr) -> dict[str, Any]:
    raise_nofile()
    loop = asyncio.get_running_loop()
    result: dict[str, Any] = {"label": cfg.label, "config": asdict(cfg)}
    async with http_client(cfg) as client:
        await warm_up(cfg, client)
        await asyncio.sleep(0.3)
        before = sample_server(cfg.pids)

        ctx = mp.get_context("spawn")
        inbox: asyncio.Queue[tuple[int, str, dict[str, Any]]] = asyncio.Queue()
        workers = []
        shares = split(cfg.sockets, cfg.client_procs)
        for index, n in enumerate(shares):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main, args=(child_end, asdict(cfg), n, index), daemon=True
            )
            proc.start()
            child_end.close()
            workers.append((proc, parent_end))

            def on_readable(index: int = index, conn: Any = parent_end) -> None:
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    loop.remove_reader(conn.fileno())
                    inbox.put_nowait((index, "eof", {}))
                    return
                inbox.put_nowait((index, kind, payload))

            loop.add_reader(parent_end.fileno(), on_readable)

        async def expect(kind: str, count: int, deadline: float) -> dict[int, dict[str, Any]]:
            got: dict[int, dict[str, Any]] = {}
            while len(got) < count:
                left = deadline - time.time()
                if left <= 0:
                    break
                try:
                    index, k, payload = await asyncio.wait_for(inbox.get(), left)
                except TimeoutError:
                    break
                if k == "eof":
                    if index in got:  # exited after answering: normal
                        continue
                    raise RuntimeError(f"client process {index} died")
                if k == kind:
                    got[index] = payload
            return got

        try:
            t_connect = time.time()
            ready = await expect("ready", len(workers), time.time() + cfg.connect_timeout)
            if len(ready) < len(workers):
                raise RuntimeError("client processes did not finish connecting in time")
            connect_wall = time.time() - t_connect
            connected = sum(r["connected"] for r in ready.values())
            failures: dict[str, int] = {}
            extensions: dict[str, int] = {}
            for r in ready.values():
                for k, v in r["failures"].items():
                    failures[k] = failures.get(k, 0) + v
                for k, v in r["extensions"].items():
                    extensions[k] = extensions.get(k, 0) + v
            print(
                f"[{cfg.label or cfg.url}] {connected}/{cfg.sockets} sockets subscribed "
                f"in {connect_wall:.1f}s; extensions {extensions}"
                + (f"; failures {failures}" if failures else ""),
                file=log,
                flush=True,
            )
            settle0 = sample_server(cfg.pids)
            await asyncio.sleep(cfg.settle)
            idle = sample_server(cfg.pids)

            send_stats: dict[str, Any] = {}
            done: dict[int, dict[str, Any]] = {}
            cpu0 = sample_server(cfg.pids)
            mach0 = machine_cpu()
            mach0_at = time.time()
            par0 = resource.getrusage(resource.RUSAGE_SELF)
            end_sample = None
            if cfg.messages > 0:
                sender = loop.create_task(send_broadcasts(cfg, client, send_stats))
                # `done` may arrive before the last POST answers (the seed peer
                # answers only after its fan-out): listen while sending.
                waiter = loop.create_task(expect("done", len(workers), math.inf))
                await sender
                deadline = send_stats["last_send"] + cfg.timeout
                try:
                    done = await asyncio.wait_for(
                        asyncio.shield(waiter), max(0.0, deadline - time.time())
                    )
                except TimeoutError:
                    waiter.cancel()
                    print(f"[{cfg.label}] timeout: not every delivery arrived", file=log)
                end_sample = sample_server(cfg.pids)
            mach1 = machine_cpu()
            mach1_at = time.time()
            par1 = resource.getrusage(resource.RUSAGE_SELF)
            for _, conn in workers:
                conn.send(("finish", {}))
            results = await expect("result", len(workers), time.time() + 120)
        finally:
            for _proc, conn in workers:
                try:
                    loop.remove_reader(conn.fileno())
                except Exception:  # noqa: BLE001
                    pass
            for proc, conn in workers:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                conn.close()

    # ---- metrics --------------------------------------------------------------------
    m = cfg.messages
    lat = array.array("d")
    for r in results.values():
        chunk = array.array("d")
        chunk.frombytes(r["latencies"])
        lat.extend(chunk)
    lat_sorted = sorted(lat)
    received = sum(r["received"] for r in results.values())
    distinct = sum(r["distinct"] for r in results.values())
    expected = connected * m
    last_recv = max((r["last_recv"] or 0) for r in results.values()) if results else 0
    first_send = send_stats.get("first_send")
    window = (last_recv - first_send) if (first_send and last_recv) else None
    mach_busy = None
    if mach1[1] > mach0[1]:
        mach_busy = (mach1[0] - mach0[0]) / (mach1[1] - mach0[1])

    result.update(
        {
            "url": cfg.url,
            "sockets_requested": cfg.sockets,
            "sockets": connected,
            "connect_failures": failures,
            "connect_s": round(connect_wall, 2),
            "extensions": extensions,
            "messages": m,
            "expected": expected,
            "delivered": distinct,
            "received_total": received,
            "lost": expected - distinct,
            "duplicated": sum(r["dups"] for r in results.values()),
            "out_of_order": sum(r["ooo"] for r in results.values()),
            "gaps": sum(r["gaps"] for r in results.values()),
            "sockets_incomplete": sum(r["sockets_incomplete"] for r in results.values()),
            "sockets_closed_early": sum(r["closed_early"] for r in results.values()),
            "other_frames": sum(r["other"] for r in results.values()),
            "all_done": len(done) == len(workers) if m > 0 else None,
        }
    )
    if m > 0:
        result.update(
            {
                "latency_ms": {
                    "p50": _r(percentile(lat_sorted, 50)),
                    "p90": _r(percentile(lat_sorted, 90)),
                    "p99": _r(percentile(lat_sorted, 99)),
                    "max": _r(lat_sorted[-1] if lat_sorted else None),
                },
                "send_s": _r(send_stats["last_send"] - send_stats["first_send"], 3),
                "achieved_rate": _r(
                    m / max(1e-9, send_stats["last_send"] - send_stats["first_send"]), 1
                ),
                "late_sends": send_stats["late_sends"],
                "http_statuses": send_stats["statuses"],
                "post_ms": {
                    "p50": _r(send_stats["post_ms_p50"]),
                    "p99": _r(send_stats["post_ms_p99"]),
                    "max": _r(send_stats["post_ms_max"]),
                },
                "window_s": _r(window, 3),
                "deliveries_per_s": _r(distinct / window, 0) if window else None,
                "machine_cpu_busy": _r(mach_busy, 3),
            }
        )
        wall = max((r["wall_s"] for r in results.values()), default=0)
        client_cpu = [r["cpu_s"] for r in results.values()]
        result["client_cpu_s"] = _r(sum(client_cpu), 3)
        result["client_cpu_sys_s"] = _r(sum(r["cpu_sys_s"] for r in results.values()), 3)
        if distinct:
            result["client_cpu_us_per_delivery"] = _r(sum(client_cpu) / distinct * 1e6, 2)
        # Busy fraction of one core, per client process, over the broadcast window.
        if window:
            result["client_busy_max"] = _r(max(client_cpu) / window, 3)
        else:
            result["client_busy_max"] = _r(max(client_cpu) / wall, 3) if wall else None
    if before and idle:
        result["server_pids"] = idle.pids
        result["server_rss_before_kb"] = before.rss_kb
        result["server_rss_idle_kb"] = idle.rss_kb
        if settle0 and idle.at > settle0.at:
            # CPU the server burns with N sockets open and nothing to send
            # (housekeeping timers and the like), in cores.
            result["server_idle_cpu_cores"] = _r(
                (idle.cpu_s - settle0.cpu_s) / (idle.at - settle0.at), 3
            )
        result["kb_per_socket"] = (
            _r((idle.rss_kb - before.rss_kb) / connected, 2) if connected else None
        )
    if m > 0:
        # CPU used on this machine by anything other than the server, the
        # client processes and this process (e.g. someone else's test run):
        # in cores, over the broadcast window. Large values mean noisy figures.
        busy_s = (mach1[0] - mach0[0]) / CLK_TCK
        parent_s = (par1.ru_utime + par1.ru_stime) - (par0.ru_utime + par0.ru_stime)
        server_s = (end_sample.cpu_s - cpu0.cpu_s) if (cpu0 and end_sample) else 0.0
        other = busy_s - server_s - sum(client_cpu) - parent_s
        result["other_cpu_cores"] = _r(max(0.0, other) / max(1e-9, mach1_at - mach0_at), 3)
    if cpu0 and end_sample and m > 0:
        cpu = end_sample.cpu_s - cpu0.cpu_s
        result["server_cpu_s"] = _r(cpu, 3)
        result["server_cpu_us_per_delivery"] = _r(cpu / distinct * 1e6, 2) if distinct else None
        result["server_cpu_busy"] = _r(cpu / (end_sample.at - cpu0.at), 3)
        result["server_rss_end_kb"] = end_sample.rss_kb
    return result


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)


# --------------------------------------------------------------------------------------
# Presentation
# --------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


ROWS = [
    ("sockets", "sockets subscribed"),
    ("connect_s", "connect time (s)"),
    ("extensions", "negotiated extensions"),
    ("expected", "expected deliveries"),
    ("delivered", "delivered"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("out_of_order", "out of order"),
    ("latency_ms.p50", "latency p50 (ms)"),
    ("latency_ms.p90", "latency p90 (ms)"),
    ("latency_ms.p99", "latency p99 (ms)"),
    ("latency_ms.max", "latency max (ms)"),
    ("deliveries_per_s", "deliveries / s"),
    ("achieved_rate", "broadcasts / s sent"),
    ("post_ms.p50", "POST p50 (ms)"),
    ("post_ms.p99", "POST p99 (ms)"),
    ("http_statuses", "POST statuses"),
    ("server_cpu_us_per_delivery", "server CPU us / delivery"),
    ("server_cpu_busy", "server CPU busy (cores)"),
    ("kb_per_socket", "server KB / socket"),
    ("server_idle_cpu_cores", "server CPU idle, N open (cores)"),
    ("server_rss_before_kb", "server RSS before (KB)"),
    ("server_rss_idle_kb", "server RSS N idle (KB)"),
    ("client_busy_max", "client busiest proc (cores)"),
    ("client_cpu_us_per_delivery", "client CPU us / delivery"),
    ("machine_cpu_busy", "machine CPU busy (0-1)"),
    ("other_cpu_cores", "other processes' CPU (cores)"),
]


def dig(d: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)  # type: ignore[assignment]
    return d


def table(columns: list[tuple[str, dict[str, Any]]], rows: list[tuple[str, str]] = ROWS) -> str:
    names = [name for name, _ in columns]
    cells = [[title] + [_fmt(dig(res, key)) for _, res in columns] for key, title in rows]
    cells = [row for row in cells if any(c != "-" for c in row[1:])]
    header = ["metric"] + names
    widths = [max(len(str(r[i])) for r in cells + [header]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def print_run(result: dict[str, Any]) -> None:
    print(table([(result.get("label") or "result", result)]))
    warn_run(result)
    slim = {k: v for k, v in result.items() if k != "config"}
    print("RESULT " + json.dumps(slim, sort_keys=True), flush=True)


def warn_run(result: dict[str, Any]) -> None:
    notes = []
    if result.get("lost"):
        notes.append(f"{result['lost']} deliveries lost")
    if result.get("duplicated"):
        notes.append(f"{result['duplicated']} duplicated")
    if result.get("out_of_order"):
        notes.append(f"{result['out_of_order']} out of order")
    if result.get("connect_failures"):
        notes.append(f"connect failures: {result['connect_failures']}")
    busy = result.get("client_busy_max")
    if busy is not None and busy > 0.85:
        notes.append(
            f"a client process was {busy:.0%} busy: the client may be the bottleneck "
            "(raise --client-procs)"
        )
    other = result.get("other_cpu_cores")
    if other is not None and other > 0.2:
        notes.append(f"other processes used {other:.2f} cores meanwhile: figures are noisy")
    mach = result.get("machine_cpu_busy")
    if mach is not None and mach > 0.9:
        notes.append(f"the machine was {mach:.0%} busy: client and server compete for CPU")
    for n in notes:
        print(f"  ! {n}")


# --------------------------------------------------------------------------------------
# Compare / spawn
# --------------------------------------------------------------------------------------

COMPARE_METRICS = [
    # key, title, ratio?, how to aggregate across rounds
    ("server_cpu_us_per_delivery", "server CPU us / delivery", True),
    ("latency_ms.p50", "latency p50 (ms)", True),
    ("latency_ms.p99", "latency p99 (ms)", True),
    ("deliveries_per_s", "deliveries / s", True),
    ("kb_per_socket", "server KB / socket", True),
    ("server_idle_cpu_cores", "server CPU idle, N open (cores)", False),
    ("server_rss_before_kb", "server RSS before (KB)", False),
    ("server_rss_idle_kb", "server RSS N idle (KB)", False),
    ("connect_s", "connect time (s)", False),
    ("post_ms.p50", "POST p50 (ms)", False),
    ("server_cpu_busy", "server CPU busy (cores)", False),
    ("client_busy_max", "client busiest proc (cores)", False),
    ("client_cpu_us_per_delivery", "client CPU us / delivery", False),
    ("machine_cpu_busy", "machine CPU busy (0-1)", False),
    ("other_cpu_cores", "other processes' CPU (cores)", False),
]
SUM_METRICS = ["expected", "delivered", "lost", "duplicated", "out_of_order", "sockets_incomplete"]


@dataclass
class ServerSpec:
    name: str
    url: str | None = None
    pids: list[int] = field(default_factory=list)
    cmd: str | None = None  # spawn: command template, {port} substituted
    cwd: str | None = None


def parse_server(text: str) -> ServerSpec:
    """name=URL[@PID[,PID...]]"""
    name, _, rest = text.partition("=")
    if not rest:
        raise argparse.ArgumentTypeError("--server wants name=URL[@PID[,PID]]")
    url, _, pids = rest.partition("@")
    return ServerSpec(name=name, url=url, pids=[int(p) for p in pids.split(",") if p])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def split_command(cmd: str) -> tuple[dict[str, str], list[str]]:
    """Leading VAR=value words become environment; the rest is argv."""
    words = shlex.split(cmd)
    env: dict[str, str] = {}
    while words and "=" in words[0] and not words[0].startswith(("-", "/", ".")):
        k, _, v = words.pop(0).partition("=")
        if not k.isidentifier():
            words.insert(0, f"{k}={v}")
            break
        env[k] = v
    return env, words


class Spawned:
    """One server started by us, in its own session so it stops cleanly."""

    def __init__(self, spec: ServerSpec, logdir: Path) -> None:
        self.spec = spec
        self.port = free_port()
        env_add, argv = split_command(spec.cmd.format(port=self.port))  # type: ignore[union-attr]
        env = dict(os.environ)
        env.update(env_add)
        logdir.mkdir(parents=True, exist_ok=True)
        self.log_path = logdir / f"{spec.name}-{self.port}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=raise_nofile,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        with httpx.Client(trust_env=False, timeout=2) as c:
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.spec.name} exited ({self.proc.returncode}); see {self.log_path}"
                    )
                try:
                    if c.get(self.url + "/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"{self.spec.name} not healthy after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        self.log.close()


# Environment of ours in every configuration: in-memory channel layer, a
# migrated SQLite database, `bench` public (since channel permissions, anonymous
# sockets may only subscribe to public channels; older versions ignore it).
OURS_ENV = (
    "REDIS_URL= DATABASE_URL=sqlite:////tmp/bench.sqlite3 "
    "REALTIME_PUBLIC_CHANNELS=bench DJANGO_DEBUG=true"
)
_UVICORN = (
    f"{REPO}/.venv/bin/uvicorn paychain.asgi:application --host 127.0.0.1 --port {{port}} "
    "--lifespan off --log-level warning"
)
# --ours-server / OURS_SERVER: the ASGI server that runs ours. Binaries are
# always this checkout's .venv (absolute paths, so that --ours-dir snapshots
# work); the application is imported from --ours-dir (both servers put their
# working directory first on sys.path).
OURS_SERVERS = {
    "daphne": f"{REPO}/.venv/bin/daphne -b 127.0.0.1 -p {{port}} paychain.asgi:application",
    # websockets' sans-I/O implementation, no permessage-deflate (the
    # configuration docs/benchmarks.md recommends)
    "uvicorn": f"{_UVICORN} --ws websockets-sansio --ws-per-message-deflate false",
    # uvicorn's defaults: --ws auto (= websockets-sansio), deflate accepted
    "uvicorn-auto": _UVICORN,
    # websockets' legacy asyncio implementation (deprecated by uvicorn 0.54)
    "uvicorn-legacy": f"{_UVICORN} --ws websockets --ws-per-message-deflate false",
    "uvicorn-legacy-deflate": f"{_UVICORN} --ws websockets",
    # wsproto (pure Python; `pip install wsproto`, not a project dependency)
    "uvicorn-wsproto": f"{_UVICORN} --ws wsproto --ws-per-message-deflate false",
}


def default_ours_cmd(server: str | None = None) -> str:
    """BENCH_OURS_CMD if set, else the command of `server` (default: env
    OURS_SERVER, else daphne)."""
    if os.environ.get("BENCH_OURS_CMD"):
        return os.environ["BENCH_OURS_CMD"]
    server = server or os.environ.get("OURS_SERVER") or "daphne"
    if server not in OURS_SERVERS:
        raise SystemExit(f"unknown ours server {server!r}: one of {', '.join(OURS_SERVERS)}")
    return f"{OURS_ENV} {OURS_SERVERS[server]}"


def default_peer_cmd() -> str:
    return os.environ.get(
        "BENCH_PEER_CMD",
        f"{Path.home()}/.venvs/peer/bin/uvicorn seed_fastapi:app "
        "--host 127.0.0.1 --port {port} --log-level warning",
    )


def migrate_ours(db_url: str, cwd: str) -> None:
    env = dict(os.environ, REDIS_URL="", DATABASE_URL=db_url)
    subprocess.run(
        [str(REPO / ".venv/bin/python"), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=cwd,
        env=env,
        check=True,
    )


def median(vals: list[float]) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(specs: list[ServerSpec], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"servers": {}, "ratios": {}}
    for spec in specs:
        rs = runs[spec.name]
        agg: dict[str, Any] = {"rounds": len(rs)}
        for key, _, _ in COMPARE_METRICS:
            agg[key] = _r(median([dig(r, key) for r in rs]), 3)
            agg[key + ".all"] = [dig(r, key) for r in rs]
        for key in SUM_METRICS:
            agg[key] = sum(r.get(key) or 0 for r in rs)
        agg["sockets"] = median([r.get("sockets") for r in rs])
        agg["extensions"] = rs[0].get("extensions") if rs else None
        out["servers"][spec.name] = agg
    if len(specs) == 2:
        a, b = (out["servers"][s.name] for s in specs)
        for key, _, ratio in COMPARE_METRICS:
            if ratio and a.get(key) is not None and b.get(key):
                out["ratios"][key] = _r(a[key] / b[key], 3)
    return out


def print_compare(specs: list[ServerSpec], summary: dict[str, Any]) -> None:
    names = [s.name for s in specs]
    rows = [
        (
            "metric (median of rounds)",
            *names,
            *(["ratio " + "/".join(names)] if len(names) == 2 else []),
        )
    ]
    for key, title, ratio in COMPARE_METRICS:
        vals = [summary["servers"][n].get(key) for n in names]
        if all(v is None for v in vals):
            continue
        row = [title] + [_fmt(v) for v in vals]
        if len(names) == 2:
            row.append(_fmt(summary["ratios"].get(key)) if ratio else "")
        rows.append(tuple(row))
    rows.append(("-- totals over rounds --", *[""] * (len(rows[0]) - 1)))
    for key in SUM_METRICS:
        vals = [summary["servers"][n].get(key) for n in names]
        rows.append((key, *[_fmt(v) for v in vals], *([""] if len(names) == 2 else [])))
    rows.append(
        (
            "negotiated extensions",
            *[_fmt(summary["servers"][n].get("extensions")) for n in names],
            *([""] if len(names) == 2 else []),
        )
    )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if j == 0:
            print("  ".join("-" * w for w in widths))


async def compare(args: argparse.Namespace, specs: list[ServerSpec], spawn: bool) -> None:
    base = run_config(args)
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in specs}
    logdir = Path(args.logdir)
    persistent: dict[str, Spawned] = {}
    try:
        for rnd in range(args.rounds):
            order = specs if rnd % 2 == 0 else list(reversed(specs))
            for spec in order:
                server: Spawned | None = None
                if spawn:
                    if args.fresh:
                        server = Spawned(spec, logdir)
                        server.wait_ready()
                    else:
                        if spec.name not in persistent:
                            persistent[spec.name] = Spawned(spec, logdir)
                            persistent[spec.name].wait_ready()
                        server = persistent[spec.name]
                    url, pids = server.url, [server.proc.pid]
                else:
                    url, pids = spec.url, spec.pids  # type: ignore[assignment]
                cfg = RunConfig(
                    **{**asdict(base), "url": url, "pids": pids, "label": f"{spec.name}#{rnd + 1}"}
                )
                try:
                    res = None
                    for attempt in range(1 + args.retry_noisy):
                        if args.wait_quiet > 0:
                            await wait_quiet(args.wait_quiet, args.quiet_threshold)
                        if attempt and server is not None and args.fresh:
                            # a fresh server again, so the memory baseline is clean
                            server.stop()
                            server = Spawned(spec, logdir)
                            server.wait_ready()
                            cfg.url, cfg.pids = server.url, [server.proc.pid]
                        got = await run_once(cfg)
                        got["attempt"] = attempt + 1
                        if res is None or (got.get("other_cpu_cores") or 0) < (
                            res.get("other_cpu_cores") or 0
                        ):
                            res = got
                        if (res.get("other_cpu_cores") or 0) <= args.quiet_threshold:
                            break
                        print(
                            f"  .. {cfg.label} was noisy (other processes "
                            f"{got.get('other_cpu_cores')} cores); again",
                            file=sys.stderr,
                        )
                finally:
                    if server is not None and args.fresh:
                        server.stop()
                assert res is not None
                runs[spec.name].append(res)
                print_run(res)
                print(flush=True)
                await asyncio.sleep(args.pause)
    finally:
        for server in persistent.values():
            server.stop()
    summary = summarize(specs, runs)
    summary["config"] = {k: v for k, v in asdict(base).items() if k not in ("url", "pids", "label")}
    summary["rounds"] = args.rounds
    summary["commands"] = {s.name: s.cmd for s in specs if s.cmd}
    print_compare(specs, summary)
    print("COMPARE " + json.dumps(summary, sort_keys=True), flush=True)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sockets", type=int, default=1000, help="sockets to open (1000)")
    p.add_argument("--channel", default="bench", help="channel every socket subscribes to")
    p.add_argument("--type", default="bench", help="message type of the broadcasts")
    p.add_argument("--messages", type=int, default=100, help="broadcasts to send; 0 = memory only")
    p.add_argument(
        "--rate", type=float, default=0.0, help="broadcasts per second; 0 = back to back"
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait after the last send"
    )
    p.add_argument("--client-procs", type=int, default=2, help="client processes (2)")
    p.add_argument(
        "--connect-concurrency",
        type=int,
        default=100,
        help="handshakes in flight per client process (100)",
    )
    p.add_argument("--connect-timeout", type=float, default=180.0)
    p.add_argument(
        "--settle", type=float, default=1.0, help="idle seconds before the memory reading"
    )
    p.add_argument("--warmup", type=int, default=5, help="warm-up sockets (0 = none)")
    p.add_argument(
        "--api-key",
        default=os.environ.get("BENCH_API_KEY"),
        help="sent as 'Authorization: Api-Key <key>' on POST /broadcast",
    )
    p.add_argument("--origin", default=None, help="Origin header on the handshakes (none)")
    p.add_argument(
        "--no-compression",
        action="store_true",
        help="do not offer permessage-deflate (browsers do)",
    )
    p.add_argument("--payload-bytes", type=int, default=0, help="extra padding in data")
    p.add_argument("--ws-path", default="/ws")


def run_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        url=getattr(args, "url", None) or "http://127.0.0.1:8090",
        ws_path=args.ws_path,
        sockets=args.sockets,
        channel=args.channel,
        type=args.type,
        messages=args.messages,
        rate=args.rate,
        timeout=args.timeout,
        client_procs=args.client_procs,
        connect_concurrency=args.connect_concurrency,
        connect_timeout=args.connect_timeout,
        settle=args.settle,
        warmup=args.warmup,
        pids=list(getattr(args, "pid", None) or []),
        api_key=args.api_key,
        origin=args.origin,
        compression=not args.no_compression,
        payload_bytes=args.payload_bytes,
        label=getattr(args, "label", "") or "",
    )


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "run"
    if argv and argv[0] in ("run", "compare", "spawn"):
        command = argv.pop(0)

    p = argparse.ArgumentParser(
        prog=f"bench_fanout.py {command}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_args(p)
    if command == "run":
        p.add_argument("--url", default="http://127.0.0.1:8090")
        p.add_argument(
            "--pid",
            type=int,
            action="append",
            default=[],
            help="server pid to measure (repeatable; descendants included)",
        )
        p.add_argument("--label", default="")
    else:
        p.add_argument("--rounds", type=int, default=3)
        p.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
        p.add_argument(
            "--wait-quiet",
            type=float,
            default=30.0,
            help="before each run wait up to this many seconds for the machine to "
            "be idle (0 = don't)",
        )
        p.add_argument(
            "--quiet-threshold",
            type=float,
            default=0.25,
            help="cores of foreign CPU use that count as 'busy' (0.25)",
        )
        p.add_argument(
            "--retry-noisy",
            type=int,
            default=1,
            help="repeat a run this many times when other processes used more "
            "than --quiet-threshold cores during it; keep the quietest (1)",
        )
    if command == "compare":
        p.add_argument(
            "--server",
            type=parse_server,
            action="append",
            required=True,
            help="name=URL@PID[,PID] (twice: ours first, then the peer)",
        )
    if command == "spawn":
        p.add_argument(
            "--ours-server",
            choices=sorted(OURS_SERVERS),
            default=os.environ.get("OURS_SERVER") or "daphne",
            help="ASGI server for ours (env OURS_SERVER; default daphne); see OURS_SERVERS",
        )
        p.add_argument(
            "--ours-cmd",
            default=None,
            help="command for ours, overrides --ours-server; {port} is substituted "
            "(env BENCH_OURS_CMD)",
        )
        p.add_argument(
            "--peer-cmd",
            default=default_peer_cmd(),
            help="command for the peer; {port} substituted (env BENCH_PEER_CMD)",
        )
        p.add_argument("--peer-dir", default="/work/shared/peers")
        p.add_argument("--ours-name", default="ours", help="label of ours in the tables")
        p.add_argument(
            "--ours-dir",
            default=str(REPO),
            help="working directory of ours, e.g. a `git archive` snapshot of a commit "
            "(default: this checkout)",
        )
        p.add_argument(
            "--only", choices=["ours", "peer"], default=None, help="spawn just one of the two"
        )
        p.add_argument(
            "--reuse",
            dest="fresh",
            action="store_false",
            help="one server per side for all rounds (default: a fresh one per run)",
        )
        p.add_argument("--no-migrate", action="store_true")
        p.add_argument("--logdir", default="/tmp/bench-logs")
    args = p.parse_args(argv)
    raise_nofile()

    if command == "run":
        cfg = run_config(args)
        print_run(asyncio.run(run_once(cfg)))
        return
    if command == "compare":
        args.fresh = False
        args.logdir = "/tmp/bench-logs"
        asyncio.run(compare(args, args.server, spawn=False))
        return
    if not args.ours_cmd:
        args.ours_cmd = default_ours_cmd(args.ours_server)
    roles = {
        "ours": ServerSpec(args.ours_name, cmd=args.ours_cmd, cwd=args.ours_dir),
        "peer": ServerSpec("peer", cmd=args.peer_cmd, cwd=args.peer_dir),
    }
    specs = [spec for role, spec in roles.items() if args.only in (None, role)]
    if not args.no_migrate and args.only in (None, "ours"):
        env_add, _ = split_command(args.ours_cmd)
        if "DATABASE_URL" in env_add:
            migrate_ours(env_add["DATABASE_URL"], args.ours_dir)
    asyncio.run(compare(args, specs, spawn=True))


if __name__ == "__main__":
    main()
