from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from realtime import broker, presence
from realtime.conf import realtime_settings

# Autouse: every socket message and API response checked against the
# AsyncAPI and OpenAPI documents.
from .contracts import _check_against_the_api_descriptions  # noqa: F401
from .live import (
    SERVER_COMMANDS,
    TEST_SECRET_KEY,
    LiveServer,
    PostgresDatabases,
    RedisServer,
    base_env,
    migrated_database,
)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _fresh_in_memory_layer(settings) -> Iterator[None]:
    """Each test starts with an empty channel layer and default REALTIME settings,
    and sign-in throttle rates no test reaches unless it sets its own."""
    settings.REALTIME = {**settings.REALTIME, "BROADCAST_API_KEYS": []}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login": "10000/min", "register": "10000/min"},
    }
    realtime_settings.reload()
    yield
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(layer.flush)()
    broker.forget_brokers()
    presence._local.clear()
    realtime_settings.reload()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis of the live tests: PAYCHAIN_TEST_REDIS_URL (set by bin/test
    from REDIS_URL), or 127.0.0.1:6379. With CI=true a missing Redis fails the
    run instead of skipping."""
    url = (
        os.environ.get("PAYCHAIN_TEST_REDIS_URL")
        or os.environ.get("REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )
    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"CI=true and Redis at {url} does not answer: {exc}")
        pytest.skip(f"Redis at {url} does not answer: {exc}")
    return url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    """The PostgreSQL databases of this test run (PAYCHAIN_TEST_POSTGRES_URL,
    default the machine's at 127.0.0.1:5432), all dropped at the end. With
    CI=true a PostgreSQL that does not answer fails the run instead of skipping."""
    databases = PostgresDatabases()
    try:
        databases.names()
    except psycopg.Error as exc:
        if IN_CI:
            pytest.fail(f"CI=true and PostgreSQL at {databases.server_url} does not answer: {exc}")
        pytest.skip(f"PostgreSQL at {databases.server_url} does not answer: {exc}")
    yield databases
    databases.drop_all()


@pytest.fixture
def database() -> str:
    """The database of a test's live servers: "sqlite" unless the test runs on
    both (`@on_both_databases` from tests/live.py) or on "postgres"
    (`@pytest.mark.parametrize("database", ["postgres"])`)."""
    return "sqlite"


@pytest.fixture
def database_url(database: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database of this test's own, shared by its live servers:
    a SQLite file, or a PostgreSQL database dropped after the test."""
    if database == "sqlite":
        yield f"sqlite:///{migrated_database(tmp_path)}"
        return
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    url = postgres.create()
    yield url
    postgres.drop(url.rsplit("/", 1)[1])


@pytest.fixture
def redis_layer(settings, redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    """This process publishes through the real Redis, under a prefix of this
    test's own: yields (prefix, a client of that Redis), for injecting faults.
    The prefix' keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    settings.REDIS_URLS = [redis_url]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": prefix},
        }
    }
    settings.REALTIME = {**settings.REALTIME, "REDIS_PREFIX": prefix}
    client = redis.Redis.from_url(redis_url)
    yield prefix, client
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop and restart."""
    server = RedisServer().start()
    yield server
    if server.process and server.process.poll() is None:
        server.resume()
    server.stop()


@pytest.fixture
def daphne_factory(database_url: str, redis_url: str) -> Iterator[Callable[..., LiveServer]]:
    """Start server processes on free ports: daphne through the launcher, or
    `command`. Servers of one test share one database (`database_url`: SQLite
    unless the test asks for PostgreSQL) and one channel-layer prefix (their
    own Redis namespace)."""
    servers: list[LiveServer] = []
    prefix = f"test-{uuid.uuid4().hex[:10]}"

    def start(*, command: list[str] | None = None, **env: str) -> LiveServer:
        environment = base_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            CHANNEL_LAYER_PREFIX=prefix,
            DJANGO_DEBUG="true",
            DJANGO_SECRET_KEY=TEST_SECRET_KEY,
        )
        environment.update(env)
        server = LiveServer(env=environment, command=command)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def daphne_server(daphne_factory: Callable[..., LiveServer]) -> LiveServer:
    return daphne_factory()


@pytest.fixture(params=["uvicorn", "daphne"])
def server_kind(request: pytest.FixtureRequest) -> str:
    """Which server `server_factory` starts: a test that uses it runs under
    both (narrow it with `@pytest.mark.parametrize("server_kind", [...])`)."""
    return request.param


@pytest.fixture
def server_factory(
    daphne_factory: Callable[..., LiveServer], server_kind: str
) -> Callable[..., LiveServer]:
    """`daphne_factory`, starting `kind` (default: this test's `server_kind`):
    "uvicorn" (the production command), "daphne" or "runserver"."""

    def start(*, kind: str | None = None, **env: str) -> LiveServer:
        return daphne_factory(command=SERVER_COMMANDS[kind or server_kind], **env)

    return start


def _raise_open_file_limit() -> None:
    """Thousands of sockets need thousands of descriptors, here and in the
    servers the tests start (they inherit the limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


_raise_open_file_limit()
