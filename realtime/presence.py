"""
Presence: which authenticated users are connected to a channel now.

Only channels matching REALTIME["PRESENCE_CHANNELS"] (`job.*`, `user.*` by
default) keep presence. Each socket of a user on such a channel is one entry;
with Redis the entries of every process live in one sorted set per channel,
each lapsing PRESENCE_TTL seconds after its process last refreshed it (every
PRESENCE_REFRESH_EVERY seconds), so a process that dies without cleaning up
drops out within that time. The surviving processes sweep lapsed entries off
the channels they serve and announce `user_offline` for a user whose last
entry lapsed (see `sweep`): a crash is seen like a disconnect, within about
PRESENCE_TTL + the sweep interval.

`user_online` / `user_offline` are sent to a channel's subscribers when a
user's first socket joins it and when their last socket leaves it. They are
not publications: no offset, never in history.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from . import redis_clients
from .conf import realtime_settings

logger = logging.getLogger(__name__)

PRESENCE_TTL = 15.0


def presence_enabled(channel: str) -> bool:
    return any(fnmatch.fnmatchcase(channel, p) for p in realtime_settings.PRESENCE_CHANNELS)


def summarize(entries: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    """[(user_id, user_type) per socket] -> [{user_id, user_type, connections}]."""
    users: dict[int, dict[str, Any]] = {}
    for user_id, user_type in entries:
        user = users.setdefault(
            user_id, {"user_id": user_id, "user_type": user_type, "connections": 0}
        )
        user["connections"] += 1
    return [users[key] for key in sorted(users)]


class LocalPresence:
    def __init__(self) -> None:
        # channel -> user_id -> {socket_id: user_type}
        self.entries: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)

    async def join(self, channel: str, user_id: int, user_type: str, socket_id: str) -> bool:
        sockets = self.entries[channel].setdefault(user_id, {})
        first = not sockets
        sockets[socket_id] = user_type
        return first

    async def leave(self, channel: str, user_id: int, user_type: str, socket_id: str) -> bool:
        users = self.entries.get(channel, {})
        sockets = users.get(user_id)
        if not sockets or socket_id not in sockets:
            return False
        del sockets[socket_id]
        if sockets:
            return False
        del users[user_id]
        if not users:
            self.entries.pop(channel, None)
        return True

    async def users(self, channel: str) -> list[dict[str, Any]]:
        users = self.entries.get(channel, {})
        return summarize(
            (user_id, user_type)
            for user_id, sockets in users.items()
            for user_type in sockets.values()
        )

    async def refresh(self, entries: Iterable[tuple[str, int, str, str]]) -> None:
        return None

    async def sweep(self, channel: str) -> list[tuple[int, str]]:
        return []  # one process: nothing lapses


# Members are "<user_id>|<user_type>|<socket_id>", scored by when they lapse.
# Lapsed members of other users are left for `sweep`, which announces them.
_JOIN = """
local key, member, mine = KEYS[1], ARGV[1], ARGV[2]
local now, lapse = tonumber(ARGV[3]), tonumber(ARGV[4])
local first = 1
for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf')) do
  if string.sub(m, 1, #mine) == mine then first = 0 break end
end
redis.call('ZADD', key, lapse, member)
redis.call('EXPIRE', key, math.ceil(lapse - now) + 60)
return first
"""

_LEAVE = """
local key, member, mine = KEYS[1], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
if redis.call('ZREM', key, member) == 0 then return 0 end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf')) do
  if string.sub(m, 1, #mine) == mine then return 0 end
end
return 1
"""

# Remove the lapsed members; return those whose user has no live member left.
_SWEEP = """
local key, now = KEYS[1], tonumber(ARGV[1])
local lapsed = redis.call('ZRANGEBYSCORE', key, '-inf', now)
if #lapsed == 0 then return {} end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local live = {}
for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  live[string.match(m, '^[^|]*')] = true
end
local gone, seen = {}, {}
for _, m in ipairs(lapsed) do
  local user = string.match(m, '^[^|]*')
  if not live[user] and not seen[user] then
    seen[user] = true
    table.insert(gone, m)
  end
end
return gone
"""


class RedisPresence:
    def __init__(self, prefix: str) -> None:
        self.redis = redis_clients.clients().primary
        self.prefix = prefix
        self._join = self.redis.register_script(_JOIN)
        self._leave = self.redis.register_script(_LEAVE)
        self._sweep = self.redis.register_script(_SWEEP)

    def _key(self, channel: str) -> str:
        return f"{self.prefix}:presence:{channel}"

    async def join(self, channel: str, user_id: int, user_type: str, socket_id: str) -> bool:
        now = time.time()
        first = await self._join(
            keys=[self._key(channel)],
            args=[f"{user_id}|{user_type}|{socket_id}", f"{user_id}|", now, now + PRESENCE_TTL],
        )
        return bool(first)

    async def leave(self, channel: str, user_id: int, user_type: str, socket_id: str) -> bool:
        last = await self._leave(
            keys=[self._key(channel)],
            args=[f"{user_id}|{user_type}|{socket_id}", f"{user_id}|", time.time()],
        )
        return bool(last)

    async def users(self, channel: str) -> list[dict[str, Any]]:
        members: list[Any] = await self.redis.zrangebyscore(self._key(channel), time.time(), "+inf")
        entries = []
        for member in members:
            text = member.decode() if isinstance(member, bytes) else str(member)
            user_id, user_type, _ = text.split("|", 2)
            entries.append((int(user_id), user_type))
        return summarize(entries)

    async def refresh(self, entries: Iterable[tuple[str, int, str, str]]) -> None:
        lapse = time.time() + PRESENCE_TTL
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for channel, user_id, user_type, socket_id in entries:
            pipe.zadd(self._key(channel), {f"{user_id}|{user_type}|{socket_id}": lapse})
            pipe.expire(self._key(channel), int(PRESENCE_TTL) + 60)
            count += 1
        if count:
            await pipe.execute()

    async def sweep(self, channel: str) -> list[tuple[int, str]]:
        """Drop the lapsed entries of `channel`; the users (id, type) who
        have no live entry left there, each returned to one caller only."""
        gone = await self._sweep(keys=[self._key(channel)], args=[time.time()])
        users = []
        for member in gone:
            text = member.decode() if isinstance(member, bytes) else member
            user_id, user_type, _ = text.split("|", 2)
            users.append((int(user_id), user_type))
        return users


_local: list[LocalPresence] = []


def make_presence() -> LocalPresence | RedisPresence:
    """Redis with REDIS_URL (the running loop's client); else the one
    presence table of this process."""
    if settings.REDIS_URLS:
        return RedisPresence(realtime_settings.REDIS_PREFIX)
    if not _local:
        _local.append(LocalPresence())
    return _local[0]


async def channel_users(channel: str) -> list[dict[str, Any]]:
    """Presence of a channel, read from wherever this process keeps it."""
    return await make_presence().users(channel)
