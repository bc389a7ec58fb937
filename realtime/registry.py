"""
Open sockets per user, counted across every process that shares Redis.

Each process records its authenticated sockets in a Redis sorted set per
user (member: socket id, score: when the entry lapses) and refreshes them
while they stay open, so a process that dies without cleaning up drops out
within REGISTRY_TTL seconds. Without Redis the count is this process' own.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from . import redis_clients
from .conf import realtime_settings

logger = logging.getLogger(__name__)

REGISTRY_TTL = 30.0
# How often a process refreshes its entries here and in presence (whose
# entries lapse sooner, see realtime.presence.PRESENCE_TTL).
REFRESH_EVERY = 5.0

_ACQUIRE = """
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 60)
return 1
"""


class LocalRegistry:
    """This process' sockets only (the in-memory channel layer: one process)."""

    def __init__(self) -> None:
        self.sockets: dict[int, set[str]] = defaultdict(set)

    async def acquire(self, user_id: int, socket_id: str, limit: int) -> bool:
        owned = self.sockets[user_id]
        if len(owned) >= limit:
            return False
        owned.add(socket_id)
        return True

    async def release(self, user_id: int, socket_id: str) -> None:
        owned = self.sockets.get(user_id)
        if owned is not None:
            owned.discard(socket_id)
            if not owned:
                del self.sockets[user_id]

    async def refresh(self, entries: Iterable[tuple[int, str]]) -> None:
        return None

    async def report(self, process_id: str, stats: dict[str, Any]) -> None:
        return None  # one process: /health reads the hub directly

    async def close(self) -> None:
        return None


class RedisRegistry:
    def __init__(self, prefix: str) -> None:
        self.redis = redis_clients.clients().primary
        self.prefix = prefix
        self._acquire = self.redis.register_script(_ACQUIRE)

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}:user-sockets:{user_id}"

    async def acquire(self, user_id: int, socket_id: str, limit: int) -> bool:
        try:
            allowed = await self._acquire(
                keys=[self._key(user_id)], args=[time.time(), REGISTRY_TTL, limit, socket_id]
            )
        except aioredis.RedisError as exc:
            # Abuse protection must not lock every user out while Redis is away.
            logger.warning("Socket limit not checked for user %s: %s", user_id, exc)
            return True
        return bool(allowed)

    async def release(self, user_id: int, socket_id: str) -> None:
        try:
            await self.redis.zrem(self._key(user_id), socket_id)
        except aioredis.RedisError as exc:
            logger.warning("Could not release socket %s of user %s: %s", socket_id, user_id, exc)

    async def refresh(self, entries: Iterable[tuple[int, str]]) -> None:
        lapse = time.time() + REGISTRY_TTL
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for user_id, socket_id in entries:
            pipe.zadd(self._key(user_id), {socket_id: lapse}, xx=True)
            pipe.expire(self._key(user_id), math.ceil(REGISTRY_TTL) + 60)
            count += 1
        if count:
            await pipe.execute()

    async def report(self, process_id: str, stats: dict[str, Any]) -> None:
        """This process' connection counts and message counters, for the
        totals every process reports (see processes_key)."""
        key = processes_key(self.prefix)
        stats = {**stats, "at": time.time()}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, process_id, json.dumps(stats))
        pipe.expire(key, 3600)
        await pipe.execute()

    async def close(self) -> None:
        return None  # the clients are closed with the loop's others


def processes_key(prefix: str) -> str:
    return f"{prefix}:processes"


def sum_process_reports(reports: Iterable[bytes | str], *, now: float) -> dict[str, Any]:
    """Totals of the reports of live processes (reported within REGISTRY_TTL)."""
    total = 0
    by_channel: dict[str, int] = defaultdict(int)
    messages: dict[str, int] = defaultdict(int)
    processes = 0
    for raw in reports:
        report = json.loads(raw)
        if now - report.get("at", 0) > REGISTRY_TTL:
            continue
        processes += 1
        total += report["total"]
        for name, count in report["by_channel"].items():
            by_channel[name] += count
        for name, count in report.get("messages", {}).items():
            messages[name] += count
    return {
        "connections": {"total": total, "by_channel": dict(sorted(by_channel.items()))},
        "messages": dict(messages),
        "processes": processes,
    }


def make_registry() -> LocalRegistry | RedisRegistry:
    if settings.REDIS_URLS:
        return RedisRegistry(realtime_settings.REDIS_PREFIX)
    return LocalRegistry()
