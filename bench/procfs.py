"""What the benchmark reads from /proc: CPU time and resident memory of a server
and its descendants, the whole machine's CPU, and the open-files limit."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after `pid (comm) `, which may hold spaces."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """pid and every live descendant (uvicorn's workers, wrappers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (fields 14 and 15 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pids_named(comm: str) -> list[int]:
    """Processes whose command name is `comm` (e.g. redis-server), to read only."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == comm:
                    out.append(int(entry))
            except OSError:
                pass
    return out


@dataclass
class Sample:
    cpu_s: float
    rss_kb: int
    pids: list[int]
    at: float


def sample(pids: list[int]) -> Sample | None:
    """CPU seconds and RSS summed over `pids` and all their descendants."""
    if not pids:
        return None
    every: list[int] = []
    for pid in pids:
        every.extend(p for p in descendants(pid) if p not in every)
    return Sample(
        cpu_s=sum(cpu_seconds(p) for p in every),
        rss_kb=sum(rss_kb(p) for p in every),
        pids=every,
        at=time.time(),
    )


def machine_cpu() -> tuple[int, int, int]:
    """(busy, total, irq) jiffies over all CPUs, from /proc/stat. irq (hard and
    soft interrupts) is in busy but in no process' utime/stime: on loopback it
    is mostly TCP's receive path, paid for the server and the client alike."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values), values[5] + values[6]


async def wait_quiet(max_wait: float, threshold: float, log: Any = sys.stderr) -> float:
    """Wait (up to max_wait s) until the machine's busy CPU over 1 s is below
    `threshold` cores: someone else's test run would skew every figure.
    Returns the last reading, in cores."""
    deadline = time.time() + max_wait
    warned = False
    while True:
        b0, _, _ = machine_cpu()
        await asyncio.sleep(1.0)
        b1, _, _ = machine_cpu()
        cores = (b1 - b0) / CLK_TCK
        if cores < threshold or time.time() >= deadline:
            if cores >= threshold:
                print(f"  ! machine still busy ({cores:.2f} cores); measuring anyway", file=log)
            return cores
        if not warned:
            print(f"  .. machine busy ({cores:.2f} cores), waiting", file=log, flush=True)
            warned = True
