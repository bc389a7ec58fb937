"""
The benchmark's client: sockets, publisher and accounting for one run against
one running server that speaks the seed protocol.

    /ws              connected -> subscribe -> subscribed; publications arrive as
                     {"type": <type>, "data": {...}, "timestamp": ..., ...}
    POST /broadcast  {"type", "data", "channel"}  (202 ours, 200 the peers)
    GET  /health

`run_once(cfg)`:

 1. warm-up: GET /health; `warmup` sockets connect, subscribe, receive one
    broadcast and close (so lazily imported code exists before measuring);
 2. reads the server's resident memory (VmRSS of `pids` and descendants);
 3. opens `sockets` WebSockets split across `client_procs` processes, each
    offering permessage-deflate as a browser does (the offer of
    `websockets.connect(compression="deflate")`), each subscribing to `channel`;
    the sockets run websockets' sans-I/O protocol straight from asyncio's
    data_received, which costs far less per message than its asyncio client;
 4. after `settle` idle seconds reads the memory again: KB per socket is
    (RSS with N sockets open - RSS before) / N;
 5. reads the server's CPU time, sends `messages` POST /broadcast on one
    keep-alive connection, back to back (rate 0) or on a fixed schedule, each
    carrying {"seq": i, "sent": T}: the send time, or at a fixed rate the time
    the broadcast was due;
 6. waits until every socket has every seq, or `timeout` s after the last send,
    and reads the CPU time again;
 7. returns delivered / expected / lost / duplicated / out of order (per socket),
    latency percentiles (receive time - "sent"), deliveries per second
    (delivered / (last receipt - first send)), server CPU per delivery (and
    Redis' beside it), KB per socket, the client processes' own CPU, the
    machine's load and the CPU of every other process meanwhile (so a saturated
    client or a noisy neighbour shows instead of being measured).
"""

from __future__ import annotations

import array
import asyncio
import json
import math
import multiprocessing as mp
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from bench import procfs


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
    connect_timeout: float = 180.0
    settle: float = 1.0
    warmup: int = 5
    pids: list[int] = field(default_factory=list)
    api_key: str | None = None
    origin: str | None = None
    compression: bool = True
    redis: bool = False  # the server uses the local Redis: read its CPU too
    label: str = ""


def percentile(sorted_vals: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence."""
    n = len(sorted_vals)
    if n == 0:
        return None
    return sorted_vals[max(1, math.ceil(q / 100.0 * n)) - 1]


def ws_url(http_url: str, path: str = "/ws") -> str:
    return "ws://" + http_url.rstrip("/").removeprefix("http://") + path


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)


# --------------------------------------------------------------------------------------
# Sockets and the client processes that hold them
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
    procfs.raise_nofile()
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
    statuses: dict[str, int] = {}
    post_ms: list[float] = []
    late = 0
    start = time.time()
    stats["first_send"] = start
    for i in range(cfg.messages):
        due = None
        if cfg.rate > 0:
            due = start + i / cfg.rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5 / cfg.rate:
                late += 1
        sent = time.time()
        # At a fixed rate, latency counts from when the broadcast was due, not
        # from when a server that answers only after its fan-out (the peers)
        # let us send it: no coordinated omission.
        data = {"seq": i, "sent": sent if due is None else due}
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


async def stats_snapshot(client: httpx.AsyncClient) -> Any:
    try:
        r = await client.get("/stats")
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total)) if total else 1
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


async def run_once(cfg: RunConfig, log: Any = sys.stderr) -> dict[str, Any]:
    procfs.raise_nofile()
    loop = asyncio.get_running_loop()
    result: dict[str, Any] = {"label": cfg.label, "config": asdict(cfg)}
    # Redis' CPU is reported beside the server's (not in it): the channel layer
    # of ours, shared with anything else that uses this Redis.
    redis_pids = procfs.pids_named("redis-server") if cfg.redis else []
    redis0 = redis1 = None
    async with http_client(cfg) as client:
        await warm_up(cfg, client)
        await asyncio.sleep(0.3)
        before = procfs.sample(cfg.pids)

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
            # The server's own count (ours with Redis: of every process).
            server_stats = await stats_snapshot(client)
            settle0 = procfs.sample(cfg.pids)
            await asyncio.sleep(cfg.settle)
            idle = procfs.sample(cfg.pids)

            send_stats: dict[str, Any] = {}
            done: dict[int, dict[str, Any]] = {}
            cpu0 = procfs.sample(cfg.pids)
            redis0 = procfs.sample(redis_pids)
            mach0 = procfs.machine_cpu()
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
                end_sample = procfs.sample(cfg.pids)
                redis1 = procfs.sample(redis_pids)
            mach1 = procfs.machine_cpu()
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
            "server_stats": server_stats,
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
        busy_s = (mach1[0] - mach0[0]) / procfs.CLK_TCK
        irq_s = (mach1[2] - mach0[2]) / procfs.CLK_TCK
        result["irq_cpu_cores"] = _r(irq_s / max(1e-9, mach1_at - mach0_at), 3)
        parent_s = (par1.ru_utime + par1.ru_stime) - (par0.ru_utime + par0.ru_stime)
        server_s = (end_sample.cpu_s - cpu0.cpu_s) if (cpu0 and end_sample) else 0.0
        redis_s = (redis1.cpu_s - redis0.cpu_s) if (redis0 and redis1) else 0.0
        other = busy_s - irq_s - server_s - redis_s - sum(client_cpu) - parent_s
        result["other_cpu_cores"] = _r(max(0.0, other) / max(1e-9, mach1_at - mach0_at), 3)
    if cpu0 and end_sample and m > 0:
        cpu = end_sample.cpu_s - cpu0.cpu_s
        result["server_cpu_s"] = _r(cpu, 3)
        result["server_cpu_us_per_delivery"] = _r(cpu / distinct * 1e6, 2) if distinct else None
        result["server_cpu_busy"] = _r(cpu / (end_sample.at - cpu0.at), 3)
        result["server_rss_end_kb"] = end_sample.rss_kb
    if redis0 and redis1 and distinct:
        redis_cpu = redis1.cpu_s - redis0.cpu_s
        result["redis_cpu_us_per_delivery"] = _r(redis_cpu / distinct * 1e6, 2)
    return result


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)
