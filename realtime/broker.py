"""
The broker: publishes to a channel with a position and history, and reads
them back. Storage only: it knows nothing of sockets or delivery.

Every publication to a channel gets the next `offset` of that channel (the
first is 1) and the channel's `epoch`, a string that changes whenever the
stream is lost (a Redis that kept nothing, a new in-memory process). The last
HISTORY_SIZE publications of each channel are kept for HISTORY_TTL seconds;
the epoch and top offset outlive them (META_TTL, at least a day).

Publishing is two steps: record (offset, history and, with a message id, the
dedupe mark, in one atomic step), then send the finished frame to the
channel's group through the channel layer's public `group_send`. Two
publishers may therefore reach a process out of offset order, and a Redis
reconnect may lose a send: the node that receives them fills such gaps from
the history (see realtime.node).

With Redis, the publications of concurrent callers share both steps (group
commit, realtime.batching): one pipelined round trip records them all, then
one `group_send` per channel carries that channel's new frames, in offset
order, as one layer message (`layer_batch`). A node therefore writes them to
each socket in one go.

Two implementations behind one interface: `MemoryBroker` (the in-memory
channel layer: one process) and `RedisBroker` (a Lua script on each channel's
Redis host, which records up to RECORDS_PER_CALL publications per call, each
atomically; history entries encrypted with REALTIME["ENCRYPTION_KEYS"] when
set).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import secrets
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from redis.exceptions import NoScriptError, ResponseError

from . import redis_clients
from .batching import Batcher
from .conf import realtime_settings
from .crypto import Cipher, cipher_for

META_TTL = 48 * 3600
DEDUPE_TTL = 24 * 3600
# Publications of one process that may wait for the next round trip to Redis;
# past it publishing fails as if Redis were away (503) until Redis catches up.
MAX_WAITING_RECORDS = 10_000

# The layer message that carries a finished frame to every process' node.
PUBLICATION = "realtime.publication"
# The group every node joins, for publications to all clients.
GROUP_ALL = "realtime-all"


def group_for(channel: str) -> str:
    """The Channels group of a realtime channel (names are already group-safe)."""
    return f"rt.{channel}"


def layer_message(
    channel: str | None,
    frame: str,
    *,
    offset: int | None = None,
    epoch: str | None = None,
    skip_user: int | None = None,
) -> dict[str, Any]:
    """The one shape of what the layer carries to the nodes. Without offset
    it is not a publication of the stream (to all clients, presence events).
    `ts`: when it was published, for the delivery latency (realtime.instruments)."""
    message: dict[str, Any] = {
        "type": PUBLICATION,
        "channel": channel,
        "frame": frame,
        "ts": time.time(),
    }
    if offset is not None:
        message["offset"] = offset
        message["epoch"] = epoch
    if skip_user is not None:
        message["skip_user"] = skip_user
    return message


def layer_batch(channel: str, publications: Sequence[tuple[int, str, str]]) -> dict[str, Any]:
    """Several publications of one channel in one layer message: `batch` is
    [offset, epoch, frame] per publication, in offset order."""
    return {
        "type": PUBLICATION,
        "channel": channel,
        "batch": [list(publication) for publication in publications],
        "ts": time.time(),
    }


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


class Broker(Protocol):
    async def publish(
        self, channel: str, prefix: str, *, dedupe_key: str | None = None
    ) -> Position | None:
        """Record and send one publication; None when `dedupe_key` was seen
        on this channel."""

    async def publish_many(
        self, records: Sequence[tuple[str, str, str | None]]
    ) -> list[Position | None]:
        """`publish` for each (channel, prefix, dedupe_key), in order, the
        Redis work pipelined."""

    async def publish_all(self, frame: str, *, dedupe_key: str | None = None) -> bool:
        """Send a frame to every connected client (no position); False when
        `dedupe_key` was seen."""

    async def send_ephemeral(
        self, channel: str, frame: str, *, skip_user: int | None = None
    ) -> None:
        """Send a frame to a channel's subscribers (but `skip_user`'s) without
        a position: not a publication of the stream, never in history."""

    async def snapshot(self, channel: str, *, after: int | None = None) -> Snapshot:
        """The channel's position, and with `after` its history after it."""

    async def positions(self, channels: Sequence[str]) -> dict[str, Position]:
        """The positions of many channels, in one round trip per host."""


class MemoryBroker:
    """Streams of this process (the in-memory channel layer)."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.epoch = new_epoch()
        self.offsets: dict[str, int] = {}
        self.history: dict[str, collections.deque[tuple[int, float, str]]] = {}
        self.seen: dict[str, float] = {}

    async def publish(
        self, channel: str, prefix: str, *, dedupe_key: str | None = None
    ) -> Position | None:
        now = time.time()
        if dedupe_key is not None:
            dedupe_key = f"{channel}:{dedupe_key}"
            if self._seen(dedupe_key, now):
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
        if dedupe_key is not None:
            self.seen[dedupe_key] = now
        await self.layer.group_send(
            group_for(channel), layer_message(channel, frame, offset=offset, epoch=self.epoch)
        )
        return Position(offset, self.epoch)

    async def publish_many(
        self, records: Sequence[tuple[str, str, str | None]]
    ) -> list[Position | None]:
        return [await self.publish(c, p, dedupe_key=d) for c, p, d in records]

    async def publish_all(self, frame: str, *, dedupe_key: str | None = None) -> bool:
        now = time.time()
        if dedupe_key is not None and self._seen(dedupe_key, now):
            return False
        await self.layer.group_send(GROUP_ALL, layer_message(None, frame))
        if dedupe_key is not None:
            self.seen[dedupe_key] = now  # marked once sent: a failed send can be retried
        return True

    async def send_ephemeral(
        self, channel: str, frame: str, *, skip_user: int | None = None
    ) -> None:
        await self.layer.group_send(
            group_for(channel), layer_message(channel, frame, skip_user=skip_user)
        )

    def _seen(self, key: str, now: float) -> bool:
        if len(self.seen) > 10_000:
            for old, when in list(self.seen.items()):
                if now - when > DEDUPE_TTL:
                    del self.seen[old]
        return key in self.seen

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

    async def positions(self, channels: Sequence[str]) -> dict[str, Position]:
        return {name: Position(self.offsets.get(name, 0), self.epoch) for name in channels}


# Records publications, each in one atomic step. ARGV: size, ttl, meta ttl,
# dedupe ttl, then per publication: payload, candidate epoch, now, dedupe
# flag. KEYS: per publication meta, history, seen. History entries:
# "<offset> <time> <payload>". Answers per publication {offset, epoch}
# ({0, ''} when its dedupe key was seen), or {-1, error} when Redis refused
# one of its commands (a key of the wrong type): the others still count.
_PUBLISH = """
local size, ttl, meta_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local dedupe_ttl = tonumber(ARGV[4])
local function record(meta, hist, seen, payload, candidate, now, dedupe)
  if dedupe and redis.call('EXISTS', seen) == 1 then return {0, ''} end
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = candidate
    redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
  end
  local offset = redis.call('HINCRBY', meta, 'offset', 1)
  redis.call('EXPIRE', meta, meta_ttl)
  redis.call('RPUSH', hist, offset .. ' ' .. now .. ' ' .. payload)
  redis.call('LTRIM', hist, -size, -1)
  redis.call('EXPIRE', hist, ttl)
  if dedupe then redis.call('SET', seen, '1', 'EX', dedupe_ttl) end
  return {offset, epoch}
end
local answers = {}
for i = 0, #KEYS / 3 - 1 do
  local a = 5 + 4 * i
  local ok, answer = pcall(record, KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3],
    ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3] == '1')
  if not ok then
    if type(answer) == 'table' then answer = answer.err end
    answer = {-1, tostring(answer)}
  end
  answers[#answers + 1] = answer
end
return answers
"""
# Publications per script call: bounds how long one call holds Redis.
RECORDS_PER_CALL = 100

# KEYS: meta, history. ARGV: candidate epoch, meta ttl, with history flag.
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBroker:
    def __init__(self, layer: BaseChannelLayer, prefix: str) -> None:
        self.layer = layer
        self.clients = redis_clients.clients()
        self.prefix = prefix
        self.cipher: Cipher | None = cipher_for(realtime_settings.ENCRYPTION_KEYS)
        self._publish_sha = hashlib.sha1(_PUBLISH.encode(), usedforsecurity=False).hexdigest()
        self._publisher: Batcher[dict[str, Any], Position | None] = Batcher(
            self._record_and_send, MAX_WAITING_RECORDS
        )
        self._snapshot = [c.register_script(_SNAPSHOT) for c in self.clients.hosts]

    def _keys(self, channel: str) -> tuple[str, str]:
        base = f"{self.prefix}:stream:{{{channel}}}"
        return f"{base}:meta", f"{base}:history"

    def _shard(self, channel: str) -> int:
        return redis_clients.shard_index(channel, len(self.clients.hosts))

    async def publish(
        self, channel: str, prefix: str, *, dedupe_key: str | None = None
    ) -> Position | None:
        return (await self.publish_many([(channel, prefix, dedupe_key)]))[0]

    def _publish_args(self, channel: str, prefix: str, dedupe_key: str | None) -> dict[str, Any]:
        meta, history = self._keys(channel)
        seen = f"{meta}:seen:{dedupe_key}" if dedupe_key else f"{meta}:unused"
        return {
            "keys": (meta, history, seen),
            "args": (
                self.cipher.encrypt(prefix) if self.cipher else prefix,
                new_epoch(),
                f"{time.time():.3f}",
                "1" if dedupe_key else "0",
            ),
        }

    async def publish_many(
        self, records: Sequence[tuple[str, str, str | None]]
    ) -> list[Position | None]:
        # Joins the next round trip of this process' publisher; an error for
        # one record (Redis answered WRONGTYPE for its keys, its send failed)
        # fails its caller only, after the caller's other records are sent.
        results = await self._publisher.put(
            [
                self._publish_args(channel, prefix, dedupe_key)
                | {"shard": self._shard(channel), "channel": channel, "prefix": prefix}
                for channel, prefix, dedupe_key in records
            ]
        )
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            raise failure
        return [r for r in results if not isinstance(r, BaseException)]

    async def _record_and_send(
        self, calls: list[dict[str, Any]]
    ) -> list[Position | None | Exception]:
        """Record every call (one pipeline per host), then send each channel's
        recorded frames to its group in one layer message. What was recorded
        is sent even when another record failed: a retry with the same dedupe
        key then skips it instead of losing it."""
        results: list[Position | None | Exception] = []
        by_channel: dict[str, list[int]] = {}
        for index, (call, reply) in enumerate(zip(calls, await self._record(calls), strict=True)):
            if isinstance(reply, Exception):
                results.append(reply)
            elif int(reply[0]) == 0:
                results.append(None)  # its dedupe key was seen: nothing to send
            else:
                results.append(Position(int(reply[0]), _text(reply[1])))
                by_channel.setdefault(call["channel"], []).append(index)
        for channel, indexes in by_channel.items():
            frames = []
            for index in indexes:
                position = results[index]
                assert isinstance(position, Position)
                frame = frame_with_position(calls[index]["prefix"], position.offset, position.epoch)
                frames.append((position.offset, position.epoch, frame))
            if len(frames) == 1:
                offset, epoch, frame = frames[0]
                message = layer_message(channel, frame, offset=offset, epoch=epoch)
            else:
                message = layer_batch(channel, frames)
            try:
                await self.layer.group_send(group_for(channel), message)
            except Exception as exc:
                for index in indexes:
                    results[index] = exc
        return results

    async def _record(self, calls: list[dict[str, Any]]) -> list[Any]:
        """Run the publish script for the calls: one pipeline per host, of
        EVALSHA with up to RECORDS_PER_CALL publications each (loading the
        script once when a host does not have it). Per call: [offset, epoch],
        or the error Redis answered for it."""
        results: list[Any] = [None] * len(calls)
        by_host: dict[int, list[int]] = collections.defaultdict(list)
        for index, call in enumerate(calls):
            by_host[call["shard"]].append(index)
        common = (
            realtime_settings.HISTORY_SIZE,
            realtime_settings.HISTORY_TTL,
            max(META_TTL, realtime_settings.HISTORY_TTL),
            DEDUPE_TTL,
        )
        for host, indexes in by_host.items():
            parts = [
                indexes[start : start + RECORDS_PER_CALL]
                for start in range(0, len(indexes), RECORDS_PER_CALL)
            ]
            for attempt in range(2):
                pipe = self.clients.hosts[host].pipeline(transaction=False)
                for part in parts:
                    keys = [key for index in part for key in calls[index]["keys"]]
                    args = [arg for index in part for arg in calls[index]["args"]]
                    pipe.evalsha(self._publish_sha, len(keys), *keys, *common, *args)
                replies = await pipe.execute(raise_on_error=False)
                if attempt == 0 and any(isinstance(r, NoScriptError) for r in replies):
                    await self.clients.hosts[host].script_load(_PUBLISH)
                    continue  # NOSCRIPT ran nothing: run them all again
                for part, reply in zip(parts, replies, strict=True):
                    answers = [reply] * len(part) if isinstance(reply, Exception) else reply
                    for index, answer in zip(part, answers, strict=True):
                        if not isinstance(answer, Exception) and int(answer[0]) == -1:
                            answer = ResponseError(_text(answer[1]))
                        results[index] = answer
                break
        return results

    async def publish_all(self, frame: str, *, dedupe_key: str | None = None) -> bool:
        key = f"{self.prefix}:published-all:{dedupe_key}"
        if dedupe_key is not None and await self.clients.primary.exists(key):
            return False
        await self.layer.group_send(GROUP_ALL, layer_message(None, frame))
        if dedupe_key is not None:
            await self.clients.primary.set(key, "1", ex=DEDUPE_TTL)
        return True

    async def send_ephemeral(
        self, channel: str, frame: str, *, skip_user: int | None = None
    ) -> None:
        await self.layer.group_send(
            group_for(channel), layer_message(channel, frame, skip_user=skip_user)
        )

    async def snapshot(self, channel: str, *, after: int | None = None) -> Snapshot:
        meta, history = self._keys(channel)
        offset, epoch, items = await self._snapshot[self._shard(channel)](
            keys=[meta, history],
            args=[
                new_epoch(),
                max(META_TTL, realtime_settings.HISTORY_TTL),
                "0" if after is None else "1",
            ],
        )
        position = Position(int(offset), _text(epoch))
        if after is None:
            return Snapshot(position)
        alive = list(self._entries(items, position.epoch))
        return Snapshot(
            position,
            entries=[(o, f) for o, f in alive if o > after],
            oldest=alive[0][0] if alive else None,
        )

    def _entries(self, items: Iterable[bytes | str], epoch: str) -> Iterable[tuple[int, str]]:
        horizon = time.time() - realtime_settings.HISTORY_TTL
        for item in items:
            raw_offset, raw_time, payload = _text(item).split(" ", 2)
            if float(raw_time) < horizon:
                continue
            prefix = self.cipher.decrypt(payload) if self.cipher else payload
            yield int(raw_offset), frame_with_position(prefix, int(raw_offset), epoch)

    async def positions(self, channels: Sequence[str]) -> dict[str, Position]:
        by_host: dict[int, list[str]] = collections.defaultdict(list)
        for name in channels:
            by_host[self._shard(name)].append(name)
        found: dict[str, Position] = {}
        for index, names in by_host.items():
            pipe = self.clients.hosts[index].pipeline(transaction=False)
            for name in names:
                pipe.hmget(self._keys(name)[0], "offset", "epoch")
            for name, (offset, epoch) in zip(names, await pipe.execute(), strict=True):
                if offset is not None and epoch is not None:
                    found[name] = Position(int(offset), _text(epoch))
        return found


_memory: list[MemoryBroker] = []
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisBroker] = (
    weakref.WeakKeyDictionary()
)


def get_broker() -> MemoryBroker | RedisBroker:
    """This process' broker: with Redis one per event loop (its clients are
    the loop's), else one in-memory store for the process."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS has no default layer")
    if not settings.REDIS_URLS:
        if not _memory or _memory[0].layer is not layer:
            _memory[:] = [MemoryBroker(layer)]
        return _memory[0]
    loop = asyncio.get_running_loop()
    broker = _by_loop.get(loop)
    if broker is None or broker.layer is not layer:
        broker = _by_loop[loop] = RedisBroker(layer, realtime_settings.REDIS_PREFIX)
    return broker


def forget_brokers() -> None:
    """Drop the in-memory streams (tests start each with a fresh one)."""
    _memory.clear()


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
