"""
Channel streams: positions (offset, epoch) and history, for recovery.

Every publication to a channel gets the next `offset` of that channel (the
first is 1) and the channel's `epoch`, a string that changes whenever the
stream is lost (a Redis that kept nothing, a new in-memory process). The last
HISTORY_SIZE publications of each channel are kept for HISTORY_TTL seconds;
the epoch and top offset outlive them (META_TTL, at least a day).

With Redis, one Lua script assigns the offset, appends to the history and
publishes to the channel's Channels group in one atomic step, so every
process receives a channel's publications in offset order, whatever the
number of publishers. It publishes the layer message the channels-redis
pub/sub layer would (JSON serializer, the layer's own group channel name),
so the hubs receive it through the layer like any group_send.
In memory (the in-memory layer, one process) the same happens in-process.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

from .conf import realtime_settings
from .fanout import PUBLICATION, group_for

META_TTL = 48 * 3600
DEDUPE_TTL = 24 * 3600


def redis_client(url: str) -> aioredis.Redis:
    """A client for this process' own Redis calls. redis-py 8 caps a pool at
    100 connections and fails beyond; a blocking pool makes a burst (1,000
    sockets subscribing at once) wait for a connection instead."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=50,
        timeout=realtime_settings.LAYER_TIMEOUT,
        socket_timeout=realtime_settings.LAYER_TIMEOUT,
        socket_connect_timeout=3,
        health_check_interval=15,
    )
    return aioredis.Redis(connection_pool=pool)


def new_epoch() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True)
class Position:
    offset: int
    epoch: str


@dataclass
class Snapshot:
    """A channel's position and the history after some offset, read at once."""

    position: Position
    entries: list[tuple[int, str]] = field(default_factory=list)  # (offset, frame)
    oldest: int | None = None  # oldest offset still in history

    def recovers(self, since: Position) -> bool:
        """Can a client at `since` get everything it missed from this history?"""
        if since.epoch != self.position.epoch or since.offset > self.position.offset:
            return False
        if since.offset == self.position.offset:
            return True
        return self.oldest is not None and self.oldest <= since.offset + 1


def frame_with_position(prefix: str, offset: int, epoch: str) -> str:
    """`prefix` is an encoded envelope without its closing brace."""
    return f'{prefix},"offset":{offset},"epoch":"{epoch}"}}'


class MemoryStreams:
    """Streams of this process (the in-memory channel layer)."""

    def __init__(self) -> None:
        self.epoch = new_epoch()
        self.offsets: dict[str, int] = {}
        self.history: dict[str, collections.deque[tuple[int, float, str]]] = {}
        self.seen: dict[str, tuple[float, Position]] = {}

    async def publish(
        self, channel: str, prefix: str, *, dedupe_key: str | None = None
    ) -> Position | None:
        """Record and send one publication; None when `dedupe_key` was seen."""
        now = time.time()
        if dedupe_key is not None:
            self._forget_seen(now)
            if dedupe_key in self.seen:
                return None
        offset = self.offsets.get(channel, 0) + 1
        self.offsets[channel] = offset
        frame = frame_with_position(prefix, offset, self.epoch)
        history = self.history.get(channel)
        if history is None or history.maxlen != realtime_settings.HISTORY_SIZE:
            history = self.history[channel] = collections.deque(
                history or (), maxlen=realtime_settings.HISTORY_SIZE
            )
        history.append((offset, now, frame))
        position = Position(offset, self.epoch)
        layer = get_channel_layer()
        await layer.group_send(
            group_for(channel),
            {"type": PUBLICATION, "channel": channel, "frame": frame, "offset": offset},
        )
        if dedupe_key is not None:
            self.seen[dedupe_key] = (now, position)
        return position

    async def seen_before(self, key: str) -> bool:
        self._forget_seen(time.time())
        return key in self.seen

    async def mark_seen(self, key: str) -> None:
        self.seen[key] = (time.time(), Position(0, self.epoch))

    def _forget_seen(self, now: float) -> None:
        if len(self.seen) > 10_000:
            for key, (when, _) in list(self.seen.items()):
                if now - when > DEDUPE_TTL:
                    del self.seen[key]

    async def snapshot(self, channel: str, *, after: int | None = None) -> Snapshot:
        position = Position(self.offsets.get(channel, 0), self.epoch)
        if after is None:
            return Snapshot(position)
        horizon = time.time() - realtime_settings.HISTORY_TTL
        alive = [(o, f) for o, ts, f in self.history.get(channel, ()) if ts >= horizon]
        return Snapshot(
            position,
            entries=[(o, f) for o, f in alive if o > after],
            oldest=alive[0][0] if alive else None,
        )


_PUBLISH = """
local meta, hist, seen = KEYS[1], KEYS[2], KEYS[3]
local prefix, candidate, now = ARGV[1], ARGV[2], ARGV[3]
local size, ttl, meta_ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local pubsub_channel, message_type, channel = ARGV[7], ARGV[8], ARGV[9]
local dedupe = ARGV[10] == '1'
if dedupe then
  local previous = redis.call('GET', seen)
  if previous then return {0, previous} end
end
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = candidate
  redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
end
local offset = redis.call('HINCRBY', meta, 'offset', 1)
redis.call('EXPIRE', meta, meta_ttl)
local frame = prefix .. ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '"}'
redis.call('RPUSH', hist, offset .. ' ' .. now .. ' ' .. frame)
redis.call('LTRIM', hist, -size, -1)
redis.call('EXPIRE', hist, ttl)
redis.call('PUBLISH', pubsub_channel,
  cjson.encode({type = message_type, channel = channel, frame = frame, offset = offset}))
if dedupe then redis.call('SET', seen, epoch, 'EX', tonumber(ARGV[11])) end
return {offset, epoch}
"""

_SNAPSHOT = """
local meta, hist = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
  redis.call('EXPIRE', meta, tonumber(ARGV[2]))
end
local offset = redis.call('HGET', meta, 'offset')
local items = {}
if ARGV[3] == '1' then items = redis.call('LRANGE', hist, 0, -1) end
return {offset, epoch, items}
"""


class RedisStreams:
    def __init__(self, url: str, prefix: str) -> None:
        self.redis = redis_client(url)
        self.prefix = prefix
        self._publish = self.redis.register_script(_PUBLISH)
        self._snapshot = self.redis.register_script(_SNAPSHOT)

    def _keys(self, channel: str) -> tuple[str, str]:
        return f"{self.prefix}:stream:{channel}:meta", f"{self.prefix}:stream:{channel}:history"

    @staticmethod
    def _group_pubsub_channel(group: str) -> str:
        # The pub/sub channel channels-redis' layer uses for a group.
        layer = get_channel_layer()._get_layer()  # type: ignore[union-attr]
        return str(layer._get_group_channel_name(group))

    async def publish(
        self, channel: str, prefix: str, *, dedupe_key: str | None = None
    ) -> Position | None:
        meta, history = self._keys(channel)
        seen = f"{self.prefix}:published:{dedupe_key}" if dedupe_key else f"{meta}:unused"
        offset, epoch = await self._publish(
            keys=[meta, history, seen],
            args=[
                prefix,
                new_epoch(),
                f"{time.time():.3f}",
                realtime_settings.HISTORY_SIZE,
                realtime_settings.HISTORY_TTL,
                max(META_TTL, realtime_settings.HISTORY_TTL),
                self._group_pubsub_channel(group_for(channel)),
                PUBLICATION,
                channel,
                "1" if dedupe_key else "0",
                DEDUPE_TTL,
            ],
        )
        if int(offset) == 0:
            return None
        return Position(int(offset), epoch.decode() if isinstance(epoch, bytes) else epoch)

    async def seen_before(self, key: str) -> bool:
        return bool(await self.redis.exists(f"{self.prefix}:published:{key}"))

    async def mark_seen(self, key: str) -> None:
        await self.redis.set(f"{self.prefix}:published:{key}", "1", ex=DEDUPE_TTL)

    async def snapshot(self, channel: str, *, after: int | None = None) -> Snapshot:
        meta, history = self._keys(channel)
        offset, epoch, items = await self._snapshot(
            keys=[meta, history],
            args=[
                new_epoch(),
                max(META_TTL, realtime_settings.HISTORY_TTL),
                "0" if after is None else "1",
            ],
        )
        position = Position(int(offset), epoch.decode() if isinstance(epoch, bytes) else epoch)
        if after is None:
            return Snapshot(position)
        horizon = time.time() - realtime_settings.HISTORY_TTL
        alive: list[tuple[int, str]] = []
        for item in items:
            text = item.decode() if isinstance(item, bytes) else item
            raw_offset, raw_time, frame = text.split(" ", 2)
            if float(raw_time) >= horizon:
                alive.append((int(raw_offset), frame))
        return Snapshot(
            position,
            entries=[(o, f) for o, f in alive if o > after],
            oldest=alive[0][0] if alive else None,
        )


_streams: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
_memory: list[MemoryStreams] = []


def get_streams() -> MemoryStreams | RedisStreams:
    """The streams of this process: Redis with REDIS_URL (one client per event
    loop), else one in-memory store for the process."""
    if not settings.REDIS_URL:
        if not _memory:
            _memory.append(MemoryStreams())
        return _memory[0]
    loop = asyncio.get_running_loop()
    streams = _streams.get(loop)
    if streams is None:
        streams = _streams[loop] = RedisStreams(settings.REDIS_URL, realtime_settings.REDIS_PREFIX)
    return streams


def parse_since(value: Any) -> Position | None:
    """A client's `since` entry {"offset": int >= 0, "epoch": str}, or None."""
    if not isinstance(value, dict):
        return None
    offset, epoch = value.get("offset"), value.get("epoch")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return None
    if not isinstance(epoch, str) or not epoch or len(epoch) > 64:
        return None
    return Position(offset, epoch)
