"""
Publishing rate: `wrk` (2 threads, 16 connections, 10 s) against POST /broadcast
of a fresh server with no subscribers, so the figure is the cost of accepting a
publication, not of fanning it out. ours gets its production configuration
(Redis, the service key in `Authorization: Api-Key`); the peers need no key.

The body is one publication {"type", "data", "channel"}. When a server accepts a
JSON list of publications (ours: up to 100), a second wrk run sends lists of
BATCH and reports publications per second as well. Each run also reads the
server's CPU (descendants included) over wrk's window: CPU per request.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import procfs
from bench.servers import CHANNEL, SERVERS, Spawned, Workspace

BATCH = 100
PUBLISH_SERVERS = ("ours", "ours-2proc", "peer", "node")

# wrk's Lua: the request, and one machine-readable line at the end.
LUA = """\
wrk.method = "POST"
wrk.path = "/broadcast"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def publication(seq: int) -> dict[str, Any]:
    return {"type": "bench", "data": {"seq": seq, "sent": 0}, "channel": CHANNEL}


def lua_script(body: str, api_key: str | None) -> str:
    auth = f'wrk.headers["Authorization"] = "Api-Key {api_key}"' if api_key else ""
    # A Lua long string: the JSON needs no escaping.
    return LUA.format(body=f"[==[{body}]==]", auth=auth)


def accepts_batch(server: Spawned) -> tuple[bool, str]:
    """POST a list of two publications: does the server take it?"""
    headers = {"Content-Type": "application/json"}
    if server.d.api_key:
        headers["Authorization"] = f"Api-Key {server.d.api_key}"
    body = json.dumps([publication(0), publication(1)])
    with httpx.Client(trust_env=False, timeout=10) as c:
        r = c.post(server.url + "/broadcast", content=body, headers=headers)
    return 200 <= r.status_code < 300, f"{r.status_code} {r.text[:120]}"


def run_wrk(
    server: Spawned, body: str, workdir: Path, duration: float, threads: int, connections: int
) -> dict[str, Any]:
    script = workdir / f"wrk-{server.d.key}-{server.port}.lua"
    script.write_text(lua_script(body, server.d.api_key))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.url + "/broadcast",
    ]
    cpu0 = procfs.sample([server.pid])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    cpu1 = procfs.sample([server.pid])
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    w = json.loads(line[4:])
    seconds = w["duration_us"] / 1e6
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    res = {
        "requests": w["requests"],
        "requests_per_s": round(w["requests"] / seconds, 1),
        "latency_ms": {
            "p50": round(w["p50_us"] / 1000, 2),
            "p99": round(w["p99_us"] / 1000, 2),
            "max": round(w["max_us"] / 1000, 2),
        },
        "errors": {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]},
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "wrk": " ".join(cmd),
    }
    if cpu0 and cpu1 and w["requests"]:
        cpu = cpu1.cpu_s - cpu0.cpu_s
        res["server_cpu_us_per_request"] = round(cpu / w["requests"] * 1e6, 1)
        res["server_cpu_busy"] = round(cpu / max(1e-9, cpu1.at - cpu0.at), 3)
    return res


def measure_publish(
    server_key: str,
    rnd: int,
    ws: Workspace,
    duration: float = 10.0,
    threads: int = 2,
    connections: int = 16,
) -> list[dict[str, Any]]:
    """The single-publication run and, if accepted, the batch run, on one
    fresh server."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    d = SERVERS[server_key]
    server = Spawned(d, ws)
    out = []
    try:
        server.wait_ready()
        bodies = [("single", json.dumps(publication(0)), 1)]
        ok, answer = accepts_batch(server)
        if ok:
            batch = json.dumps([publication(i) for i in range(BATCH)])
            bodies.append(("batch", batch, BATCH))
        for body_kind, body, per_request in bodies:
            time.sleep(0.5)
            res = run_wrk(server, body, ws.tmp, duration, threads, connections)
            res["publications_per_s"] = round(res["requests_per_s"] * per_request, 1)
            res.update(body=body_kind, per_request=per_request)
            if not ok:
                res["batch_answer"] = answer
            out.append(res)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        out.append({"body": "single", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        server.stop()
    for res in out:
        res.update(kind="publish", server=d.key, round=rnd + 1, command=server.argv)
    return out


def run_publish(
    ws: Workspace,
    rounds: int,
    servers: tuple[str, ...],
    duration: float,
    emit: Any,
) -> list[dict[str, Any]]:
    keys = [k for k in PUBLISH_SERVERS if k in servers]
    if not keys:
        return []
    print(f"== (publish) wrk, {duration:g} s per run: {', '.join(keys)}", file=sys.stderr)
    results = []
    for rnd in range(rounds):
        for key in keys if rnd % 2 == 0 else keys[::-1]:
            for res in measure_publish(key, rnd, ws, duration=duration):
                emit(res)
                results.append(res)
                if "error" in res:
                    text = f"error {res['error']}"
                else:
                    text = (
                        f"{res['requests_per_s']:,.0f} requests/s, "
                        f"{res['publications_per_s']:,.0f} publications/s, "
                        f"p99 {res['latency_ms']['p99']} ms, non-2xx {res['non_2xx']}, "
                        f"CPU {res.get('server_cpu_us_per_request')} us/request"
                    )
                print(
                    f"  (publish) round {rnd + 1} {key:15} {res['body']:6}  {text}",
                    file=sys.stderr,
                    flush=True,
                )
    return results
