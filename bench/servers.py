"""
The servers the benchmark measures, and how to start each one fresh on a free
port of 127.0.0.1 for every run, and stop it afterwards.

    ours             the production configuration: `python -m paychain.serve`
                     (uvicorn, see paychain/serve.py) with Redis as the channel
                     layer, a fresh CHANNEL_LAYER_PREFIX per run, a migrated
                     SQLite copy per run, DEBUG off and a service key
    ours-memory      the same with the in-memory layer (REDIS_URL unset)
    ours-2proc       the same as `ours` with `--workers 2`: two processes on one
                     port and one Redis; the kernel splits the sockets
    ours-encrypted   `ours` with REALTIME_ENCRYPTION_KEYS=k1 (the layer's
                     messages and the history encrypted in Redis)
    peer             the seed peer (/work/shared/peers/seed_fastapi.py) under
                     uvicorn's defaults: permessage-deflate accepted
    peer-nodeflate   the seed peer with --ws-per-message-deflate false: like for
                     like with ours, which never compresses
    node             the same fan-out on Node.js `ws` (bench/node_ws), no deflate

Every server gets a minimal environment (PATH, HOME, LANG and its own
variables), so the developer's shell does not leak into a measurement.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import procfs

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PYTHON = REPO / ".venv" / "bin" / "python"
# shared/ lies beside the checkout: /work/shared/peers for /work/main.
PEER_DIR = Path(os.environ.get("BENCH_PEER_DIR") or REPO.parent / "shared" / "peers")
PEER_VENV = Path(os.environ.get("BENCH_PEER_VENV", "~/.venvs/peer")).expanduser()
PEER_REQUIREMENTS = BENCH / "peer-requirements.txt"
NODE_DIR = BENCH / "node_ws"
REDIS_URL = "redis://127.0.0.1:6379/0"
API_KEY = "bench-key"
CHANNEL = "bench"


@dataclass(frozen=True)
class ServerDef:
    key: str
    title: str
    family: str  # ours | peer | node
    redis: bool = False
    workers: int = 1
    encryption: bool = False
    deflate: bool = False  # the server accepts permessage-deflate

    @property
    def api_key(self) -> str | None:
        return API_KEY if self.family == "ours" else None

    @property
    def warmup(self) -> int:
        # Enough sockets that every worker process probably gets one.
        return 10 * self.workers


SERVERS = {
    d.key: d
    for d in [
        ServerDef("ours", "ours (Redis)", "ours", redis=True),
        ServerDef("ours-memory", "ours, in-memory layer", "ours"),
        ServerDef("ours-2proc", "ours, 2 processes, Redis", "ours", redis=True, workers=2),
        ServerDef("ours-encrypted", "ours, Redis, encrypted", "ours", redis=True, encryption=True),
        ServerDef("peer", "peer (defaults, deflate)", "peer", deflate=True),
        ServerDef("peer-nodeflate", "peer, no deflate", "peer"),
        ServerDef("node", "node ws", "node"),
    ]
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
    }


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Workspace:
    """What the servers need, prepared once per invocation: the peer's venv,
    node_modules, a migrated SQLite database that each run of ours copies."""

    def __init__(self, ours_dir: Path, logdir: Path) -> None:
        self.ours_dir = ours_dir
        self.logdir = logdir
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.db_template = self.tmp / "template.sqlite3"

    def prepare(self, families: set[str]) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        if "ours" in families:
            self.migrate()
            self.check_redis()
        if "peer" in families:
            ensure_peer_venv()
        if "node" in families:
            ensure_node_modules()

    def migrate(self) -> None:
        env = {**base_env(), "DATABASE_URL": f"sqlite:///{self.db_template}", "REDIS_URL": ""}
        cmd = [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"]
        subprocess.run(cmd, cwd=self.ours_dir, env=env, check=True)

    @staticmethod
    def check_redis() -> None:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def ensure_peer_venv() -> None:
    """The peer's venv as /work/shared/peers/README.md makes it, with the
    versions of bench/peer-requirements.txt, unless it is already there."""
    if (PEER_VENV / "bin" / "uvicorn").exists():
        return
    log(f"creating the peer's venv in {PEER_VENV} (bench/peer-requirements.txt)")
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(PEER_VENV / "bin" / "pip"), "install", "--quiet"]
    subprocess.run([*pip, "-r", str(PEER_REQUIREMENTS)], check=True)


def ensure_node_modules() -> None:
    """`npm ci` in bench/node_ws (ws as pinned by its package-lock.json)."""
    if (NODE_DIR / "node_modules" / "ws" / "package.json").exists():
        return
    log("npm ci in bench/node_ws")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True)


def versions() -> dict[str, str]:
    """Versions of the runtimes that run the servers, for the results file."""
    out: dict[str, str] = {}
    probes = {
        "ours": [str(PYTHON), "-c", _VERSIONS.format(pkgs="django channels uvicorn websockets")],
        "peer": [
            str(PEER_VENV / "bin" / "python"),
            "-c",
            _VERSIONS.format(pkgs="fastapi uvicorn websockets"),
        ],
        "node": [
            "node",
            "-e",
            "console.log('node ' + process.version + ' ws ' + "
            "require('./node_modules/ws/package.json').version)",
        ],
    }
    for name, cmd in probes.items():
        try:
            cwd = NODE_DIR if name == "node" else None
            out[name] = subprocess.run(
                cmd, cwd=cwd, capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out[name] = "?"
    return out


_VERSIONS = (
    "import sys;from importlib.metadata import version as v;"
    "print('python', sys.version.split()[0], *[p + ' ' + v(p) for p in '{pkgs}'.split()])"
)


class Spawned:
    """One server started for one run, in its own session so it stops cleanly."""

    def __init__(self, d: ServerDef, ws: Workspace) -> None:
        self.d = d
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix: str | None = None
        self.db: Path | None = None
        argv, env, cwd = self._command(ws)
        self.argv, self.cwd = argv, cwd
        self.log_path = ws.logdir / f"{d.key}-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=procfs.raise_nofile,
        )

    def _command(self, ws: Workspace) -> tuple[list[str], dict[str, str], Path]:
        d, port = self.d, str(self.port)
        env = base_env()
        if d.family == "ours":
            self.db = ws.tmp / f"{d.key}-{self.port}.sqlite3"
            shutil.copyfile(ws.db_template, self.db)
            self.prefix = f"bench-{secrets.token_hex(4)}"
            env.update(
                DATABASE_URL=f"sqlite:///{self.db}",
                DJANGO_DEBUG="false",
                DJANGO_SECRET_KEY="bench",
                BROADCAST_API_KEYS=API_KEY,
                REALTIME_PUBLIC_CHANNELS=CHANNEL,
                LOG_LEVEL="WARNING",
                CHANNEL_LAYER_PREFIX=self.prefix,
            )
            if d.redis:
                env["REDIS_URL"] = REDIS_URL
            if d.encryption:
                env["REALTIME_ENCRYPTION_KEYS"] = "k1"
            # No access log, as the peer runs (--log-level warning): like for like.
            argv = [str(PYTHON), "-m", "paychain.serve", "--host", "127.0.0.1", "--port", port]
            argv += ["--log-level", "warning"]
            if d.workers > 1:
                argv += ["--workers", str(d.workers)]
            return argv, env, ws.ours_dir
        if d.family == "peer":
            argv = [
                str(PEER_VENV / "bin" / "uvicorn"),
                "seed_fastapi:app",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--log-level",
                "warning",
            ]
            if not d.deflate:
                argv += ["--ws-per-message-deflate", "false"]
            return argv, env, PEER_DIR
        argv = ["node", "server.js", "--host", "127.0.0.1", "--port", port]
        if d.deflate:
            argv.append("--deflate")
        return argv, env, NODE_DIR

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        with httpx.Client(trust_env=False, timeout=2) as c:
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.d.key} exited ({self.proc.returncode}); see {self.log_path}"
                    )
                try:
                    if c.get(self.url + "/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            else:
                raise RuntimeError(f"{self.d.key} not healthy after {timeout}s; {self.log_path}")
        if self.d.workers > 1:
            # /health answered from one worker; wait for the others to exist
            # and give them their start-up.
            while len(worker_pids(self.pid)) < self.d.workers:
                if time.time() > deadline:
                    raise RuntimeError(f"{self.d.key}: not every worker started")
                time.sleep(0.2)
            time.sleep(2.0)

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
        self._log.close()
        if self.db is not None:
            for path in self.db.parent.glob(self.db.name + "*"):
                path.unlink(missing_ok=True)
        if self.prefix is not None and self.d.redis:
            drop_redis_prefix(self.prefix)


def worker_pids(pid: int) -> list[int]:
    """uvicorn's worker processes under `pid` (not multiprocessing's resource tracker)."""
    out = []
    for p in procfs.descendants(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes():
                out.append(p)
        except OSError:
            pass
    return out


def drop_redis_prefix(prefix: str) -> None:
    """Delete the keys this run left in Redis (history, registry): only ours,
    by the run's own random prefix."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError as exc:
        log(f"  ! could not clean Redis prefix {prefix}: {exc}")
