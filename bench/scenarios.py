"""
The scenarios of docs/benchmarks.md, and the runner that measures them: for
each scenario, `rounds` rounds; in each round every server of the scenario, a
fresh one per run, in alternating order (A B C / C B A / A B C ...), so that
drift on the machine falls on every server alike.

    a      1,000 subscribers, 100 broadcasts back to back: server CPU per
           delivery, deliveries per second, latency
    b      1,000 subscribers, 10 broadcasts/s for 10 s: latency p50/p90/p99 at a
           steady rate; its idle point (2 s after the last subscribe, before any
           broadcast) is (c), resident memory per idle socket at 1,000; and it
           is the first point of the curve
    d      10,000 subscribers, 20 broadcasts back to back: nothing lost,
           duplicated or reordered; CPU per delivery and throughput at 10,000
    n5k    the curve: 5,000 subscribers at 10 broadcasts/s for 10 s
    n10k   the curve: 10,000 subscribers at 10 broadcasts/s for 10 s
    publish  POST /broadcast under wrk (bench.publish_rate)

`--quick` runs the same scenarios at a fifth of the sizes or less, one round.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bench import procfs
from bench.client import RunConfig, run_once
from bench.servers import SERVERS, Spawned, Workspace

ALL = tuple(SERVERS)
# The curve and the 10,000-socket runs: ours in both layers and the three peers.
CURVE = ("ours", "ours-memory", "peer", "peer-nodeflate", "node")
TEN_K = ("ours", "ours-memory", "ours-2proc", "peer", "peer-nodeflate", "node")


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    sockets: int
    messages: int
    rate: float = 0.0  # broadcasts per second; 0 = back to back
    settle: float = 1.0
    timeout: float = 30.0
    servers: tuple[str, ...] = ALL
    curve: bool = False  # a point of the plot (CPU per delivery, p99 at 10/s)
    rounds: int | None = None  # None: the invocation's --rounds

    def config(self) -> RunConfig:
        return RunConfig(
            sockets=self.sockets,
            messages=self.messages,
            rate=self.rate,
            settle=self.settle,
            timeout=self.timeout,
        )


FULL = [
    Scenario("a", "1,000 subscribers, 100 broadcasts back to back", 1000, 100),
    Scenario("b", "1,000 subscribers, 10 broadcasts/s", 1000, 100, 10, settle=2, curve=True),
    Scenario(
        "d", "10,000 subscribers, 20 broadcasts back to back", 10000, 20, timeout=60, servers=TEN_K
    ),
    Scenario(
        "n5k",
        "5,000 subscribers, 10 broadcasts/s",
        5000,
        100,
        10,
        settle=2,
        servers=CURVE,
        curve=True,
    ),
    Scenario(
        "n10k",
        "10,000 subscribers, 10 broadcasts/s",
        10000,
        100,
        10,
        settle=2,
        timeout=60,
        servers=CURVE,
        curve=True,
    ),
]

QUICK = [
    Scenario("a", "200 subscribers, 20 broadcasts back to back", 200, 20),
    Scenario("b", "200 subscribers, 10 broadcasts/s", 200, 20, 10, settle=1, curve=True),
    Scenario("d", "1,000 subscribers, 10 broadcasts back to back", 1000, 10, servers=TEN_K),
    Scenario("n5k", "500 subscribers, 10 broadcasts/s", 500, 20, 10, servers=CURVE, curve=True),
    Scenario("n10k", "1,000 subscribers, 10 broadcasts/s", 1000, 20, 10, servers=CURVE, curve=True),
]


@dataclass
class Options:
    rounds: int = 3
    servers: tuple[str, ...] = ALL
    client_procs: int = 2
    wait_quiet: float = 30.0  # seconds to wait for an idle machine before a run
    quiet_threshold: float = 0.25  # cores of other processes' CPU that make a run noisy
    retry_noisy: int = 1  # runs again (fresh server) when noisy; keeps the quietest
    pause: float = 1.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def one_line(res: dict[str, Any]) -> str:
    """A run in one line of progress."""
    parts = [f"{res.get('sockets')}/{res.get('sockets_requested')} sockets"]
    if res.get("messages"):
        lat = res.get("latency_ms") or {}
        parts += [
            f"CPU {res.get('server_cpu_us_per_delivery')} us/delivery",
            f"{res.get('deliveries_per_s')}/s",
            f"p50/p99 {lat.get('p50')}/{lat.get('p99')} ms",
            f"lost/dup/ooo {res.get('lost')}/{res.get('duplicated')}/{res.get('out_of_order')}",
        ]
    parts.append(f"{res.get('kb_per_socket')} KB/socket")
    parts.append(f"client max {res.get('client_busy_max')} cores")
    parts.append(f"others {res.get('other_cpu_cores')} cores")
    return ", ".join(parts)


async def measure(
    scenario: Scenario, server_key: str, rnd: int, ws: Workspace, opts: Options
) -> dict[str, Any]:
    """One run: a fresh server, the scenario against it, the server stopped.
    A run during which other processes used more than `quiet_threshold` cores
    is repeated (up to `retry_noisy` times, each on a fresh server); the
    quietest attempt is kept."""
    d = SERVERS[server_key]
    best: dict[str, Any] | None = None
    for attempt in range(1 + opts.retry_noisy):
        if opts.wait_quiet > 0:
            await procfs.wait_quiet(opts.wait_quiet, opts.quiet_threshold)
        server = Spawned(d, ws)
        try:
            await asyncio.to_thread(server.wait_ready)
            cfg = replace(
                scenario.config(),
                url=server.url,
                pids=[server.pid],
                api_key=d.api_key,
                warmup=d.warmup,
                redis=d.redis,
                client_procs=opts.client_procs,
                label=f"{scenario.key}#{rnd + 1} {d.key}",
            )
            res = await run_once(cfg)
        except Exception as exc:  # noqa: BLE001 - a failed run is reported, not fatal
            res = {"error": f"{type(exc).__name__}: {exc}", "log": str(server.log_path)}
        finally:
            await asyncio.to_thread(server.stop)
        res.update(
            kind="run",
            scenario=scenario.key,
            scenario_title=scenario.title,
            server=d.key,
            round=rnd + 1,
            attempt=attempt + 1,
            command=server.argv,
            at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        res.pop("config", None)
        if best is None or (res.get("other_cpu_cores") or 0) < (best.get("other_cpu_cores") or 0):
            best = res
        if "error" in res or (res.get("other_cpu_cores") or 0) <= opts.quiet_threshold:
            break
        if attempt < opts.retry_noisy:
            log(f"  .. noisy: other processes used {res.get('other_cpu_cores')} cores; again")
    assert best is not None
    return best


async def run_scenarios(
    scenarios: list[Scenario],
    ws: Workspace,
    opts: Options,
    emit: Callable[[dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """Every scenario, round by round, servers alternating; `emit` gets each
    run's result as soon as it exists (the results file)."""
    results = []
    for scenario in scenarios:
        servers = [s for s in scenario.servers if s in opts.servers]
        if not servers:
            continue
        rounds = scenario.rounds or opts.rounds
        log(f"== ({scenario.key}) {scenario.title}: {', '.join(servers)}; {rounds} round(s)")
        for rnd in range(rounds):
            order = servers if rnd % 2 == 0 else servers[::-1]
            for key in order:
                t0 = time.time()
                res = await measure(scenario, key, rnd, ws, opts)
                took = time.time() - t0
                res["took_s"] = round(took, 1)
                emit(res)
                results.append(res)
                line = f"error {res['error']}" if "error" in res else one_line(res)
                log(f"  ({scenario.key}) round {rnd + 1} {key:15} {took:5.1f}s  {line}")
                await asyncio.sleep(opts.pause)
    return results
