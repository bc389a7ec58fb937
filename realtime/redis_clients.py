"""
The Redis clients of this process, in one place.

`settings.REDIS_URLS` lists the Redis hosts (REDIS_URL, comma-separated). The
channel layer spreads its groups over them (channels-redis sharding); this
project's own keys follow the same idea: a channel's stream (offsets and
history) lives on `shard_for(channel)`, and everything that is not per channel
(socket limits, presence, process reports) on the first host.

* `clients()` gives the asyncio clients of the running event loop, one
  connection pool per host and loop, created on first use and closed by
  `close_clients()` at shutdown.
* `sync_client()` gives the blocking client of the first host, for /health.
* A command that fails on a stale pooled connection (Redis restarted since it
  was opened) is retried once on a fresh one: redis-py's own retry, on
  ConnectionError only, so a command is never run twice after a timeout.
* `Outage` turns a run of failures into one warning with a count.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from .conf import realtime_settings

# Connections a process opens to one host at most; a burst (1,000 sockets
# subscribing at once) waits for one instead of failing (redis-py caps an
# ordinary pool at 100 and fails beyond).
MAX_CONNECTIONS = 50


def retry_once() -> dict[str, Any]:
    """Connection options: retry a command once, on a fresh connection, when
    its connection turns out to be dead. Also given to the channel layer."""
    return {
        "retry": redis.asyncio.retry.Retry(
            NoBackoff(), 1, supported_errors=(RedisConnectionError,)
        ),
        "retry_on_error": [RedisConnectionError],
    }


def shard_index(name: str, count: int) -> int:
    """Which of `count` hosts keeps `name`'s keys: stable across processes."""
    return zlib.crc32(name.encode("utf-8")) % count if count > 1 else 0


@dataclass
class Clients:
    hosts: list[aioredis.Redis]

    @property
    def primary(self) -> aioredis.Redis:
        return self.hosts[0]

    def shard_for(self, name: str) -> aioredis.Redis:
        return self.hosts[shard_index(name, len(self.hosts))]

    async def close(self) -> None:
        for client in self.hosts:
            await client.aclose()


def _client(url: str) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=realtime_settings.LAYER_TIMEOUT,
        socket_timeout=realtime_settings.LAYER_TIMEOUT,
        socket_connect_timeout=3,
        health_check_interval=15,
        **retry_once(),
    )
    return aioredis.Redis(connection_pool=pool)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Clients] = (
    weakref.WeakKeyDictionary()
)


def clients() -> Clients:
    """The running loop's clients (REDIS_URLS must be set)."""
    if not settings.REDIS_URLS:
        raise RuntimeError("REDIS_URL is not set: this process runs without Redis.")
    loop = asyncio.get_running_loop()
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = Clients([_client(url) for url in settings.REDIS_URLS])
    return found


async def close_clients() -> None:
    """Close the running loop's clients (at shutdown)."""
    found = _by_loop.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.close()


@lru_cache(maxsize=4)
def _sync_client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=redis.retry.Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        retry_on_error=[RedisConnectionError],
    )


def sync_client() -> redis.Redis:
    """The blocking client of the first host."""
    return _sync_client(settings.REDIS_URLS[0], realtime_settings.HEALTH_TIMEOUT)


class Outage:
    """Log a run of failures of one kind as one warning, then one line when it
    ends, instead of a line (or a traceback) per failure."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.failures = 0
        self.since = 0.0

    def failed(self, exc: BaseException) -> None:
        if not self.failures:
            self.since = time.monotonic()
            self.logger.warning("%s failed (%s); retrying quietly", self.what, describe(exc))
        self.failures += 1

    def succeeded(self) -> None:
        if self.failures:
            self.logger.warning(
                "%s works again after %s failure(s) in %.1f s",
                self.what,
                self.failures,
                time.monotonic() - self.since,
            )
            self.failures = 0

    @property
    def ongoing(self) -> bool:
        return self.failures > 0


def describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
