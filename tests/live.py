"""Real processes for the tests about sockets and delivery: servers (the
production launcher under uvicorn or daphne, or runserver) on free ports,
Redis servers of the tests' own, and the databases they share (a SQLite file,
or a PostgreSQL database of the test run's own)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
# The live servers' secret key: long enough for `check --deploy`, and set so
# that a server started with DJANGO_DEBUG=false does not refuse to start.
TEST_SECRET_KEY = "paychain-live-tests-" + "k3y-" * 12
# The machine's PostgreSQL (trust auth): PAYCHAIN_TEST_POSTGRES_URL, any
# database of it that the user may connect to; the tests create their own.
POSTGRES_URL = (
    os.environ.get("PAYCHAIN_TEST_POSTGRES_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ["sqlite", "postgres"]
# Runs a live test's servers on SQLite and on PostgreSQL (the `database` fixture).
on_both_databases = pytest.mark.parametrize("database", DATABASES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# Sign-in and registration rates for the tests that are not about throttling
# (tests/test_auth.py sets tight ones).
GENEROUS_THROTTLE_RATES = {
    "THROTTLE_LOGIN_RATE": "10000/min",
    "THROTTLE_REGISTER_RATE": "10000/min",
}


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_URL", "DATABASE_URL", "BROADCAST_API_KEYS"))
    }
    env.update({"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO", **GENEROUS_THROTTLE_RATES})
    env.update(overrides)
    return env


def migrated_database(directory: Path) -> Path:
    """A migrated SQLite file, copied from one made once per test session."""
    template = Path(tempfile.gettempdir()) / f"paychain-test-template-{os.getpid()}.sqlite3"
    if not template.exists():
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=base_env(DATABASE_URL=f"sqlite:///{template}"),
            check=True,
        )
    target = directory / f"db-{uuid.uuid4().hex[:8]}.sqlite3"
    shutil.copy(template, target)
    return target


@dataclass
class PostgresDatabases:
    """The databases one test run makes on a PostgreSQL server, all named
    `<prefix>_...`: a migrated template, made once, and a copy of it per test
    (CREATE DATABASE ... TEMPLATE). `drop_all` drops every one of them;
    bin/test sets the prefix (PAYCHAIN_TEST_DB_PREFIX) and drops what a killed
    run left behind."""

    server_url: str = POSTGRES_URL
    prefix: str = field(
        default_factory=lambda: (
            # One template per pytest-xdist worker; all share the run's prefix.
            (os.environ.get("PAYCHAIN_TEST_DB_PREFIX") or f"paychain_test_{os.getpid()}")
            + f"_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
        )
    )
    _template: str | None = None

    def database_url(self, name: str) -> str:
        """A DATABASE_URL (dj-database-url form) for database `name`."""
        info = psycopg.conninfo.conninfo_to_dict(self.server_url)
        user = info.get("user") or "postgres"
        password = f":{info['password']}" if info.get("password") else ""
        host = info.get("host") or "127.0.0.1"
        port = info.get("port") or 5432
        return f"postgres://{user}{password}@{host}:{port}/{name}"

    def execute(self, statement: sql.Composable) -> None:
        with psycopg.connect(self.server_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(statement)

    def names(self) -> list[str]:
        with psycopg.connect(self.server_url, autocommit=True, connect_timeout=3) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [self.prefix]
            ).fetchall()
        return [name for (name,) in rows]

    def template(self) -> str:
        if self._template is None:
            name = f"{self.prefix}_template"
            self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                cwd=ROOT,
                env=base_env(DATABASE_URL=self.database_url(name)),
                check=True,
            )
            self._template = name
        return self._template

    def create(self) -> str:
        """A new migrated database; returns its DATABASE_URL."""
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        self.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self.template())
            )
        )
        return self.database_url(name)

    def drop(self, name: str) -> None:
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def drop_all(self) -> None:
        for name in self.names():
            self.drop(name)


def query(database_url: str, statement: str) -> list[tuple]:
    """Rows of `statement` on a live server's database, SQLite or PostgreSQL."""
    if database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=10)) as db:
            return list(db.execute(statement))
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        return conn.execute(statement).fetchall()


def serve_command(server: str = "uvicorn", app: str | None = None) -> list[str]:
    """The production launcher's command line, "{port}" standing for the port."""
    command = [sys.executable, "-m", "paychain.serve"]
    if server != "uvicorn":
        command += ["--server", server]
    command += ["--host", "127.0.0.1", "--port", "{port}"]
    if app is not None:
        command += ["--app", app]
    return command


# Production: `python -m paychain.serve` (uvicorn), as the Dockerfile runs it.
PRODUCTION_COMMAND = serve_command()
# The same launcher with daphne: the default of LiveServer.
DAPHNE_COMMAND = serve_command("daphne")
RUNSERVER_COMMAND = [sys.executable, "manage.py", "runserver", "--noreload", "127.0.0.1:{port}"]
SERVER_COMMANDS = {
    "uvicorn": PRODUCTION_COMMAND,
    "daphne": DAPHNE_COMMAND,
    "runserver": RUNSERVER_COMMAND,
}


@dataclass
class LiveServer:
    """One server process (daphne through the launcher unless told otherwise)
    serving paychain.asgi."""

    env: dict[str, str]
    command: list[str] | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30) -> LiveServer:
        command = [
            part.replace("{port}", str(self.port)) for part in self.command or DAPHNE_COMMAND
        ]
        handle, name = tempfile.mkstemp(prefix="paychain-live-", suffix=".log")
        self.log_path = Path(name)
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT
        )
        os.close(handle)

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"Server exited early:\n{self.log()}")
            try:
                return httpx.get(self.url + "/stats", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout, interval=0.1, what=f"server on port {self.port}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Die without cleaning up, as a crashed process does."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)


@dataclass
class RedisServer:
    """A redis-server of the test's own, on a free port, that the test may
    stop, restart, pause and resume."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, 10, what=f"redis-server on {self.port}")
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
