"""
The node: this process' part of the real-time server, one per event loop.

It owns the broker (positions and history), the hub (local sockets per
channel), presence, the per-user socket registry, the counters, and the
background tasks. It is the one member of the channel layer's groups for all
of this process' sockets: it joins a channel's group when the first local
socket subscribes and leaves it when the last one goes, and its single
receive loop hands each publication to the hub.

Gapless per process. The node remembers, per joined channel, the position it
delivered last. A publication that arrives after a gap (a Redis reconnect
lost a send, or two publishers raced) is preceded by the missing ones from
the history, in offset order; one already delivered is dropped. A publication
of a new epoch (Redis lost the stream) is preceded by that epoch's history
from offset 1. Every POSITION_CHECK_EVERY seconds one round trip per Redis
host reads the positions of all joined channels, catching losses at the
tail. When the history cannot fill a gap, the channel's sockets get
`resync` ("reload this channel's state") and live delivery goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
import weakref
from collections.abc import Awaitable
from typing import Any

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer

from . import instruments, protocol, redis_clients
from .broker import (
    GROUP_ALL,
    PUBLICATION,
    Broker,
    Position,
    get_broker,
    group_for,
)
from .client import Client, Send
from .conf import realtime_settings
from .hub import Counters, Hub
from .presence import make_presence, presence_enabled
from .protocol import ErrorCode, ServerType
from .registry import REFRESH_EVERY, make_registry
from .servers.extension import SocketTransport

logger = logging.getLogger(__name__)

# A node's proof that it still receives its groups (see Node._watch_subscriptions).
PROBE = "realtime.probe"
PROBE_EVERY = 3.0
PROBE_GRACE = 2.0
POSITION_CHECK_EVERY = 5.0
PRESENCE_SWEEP_EVERY = 5.0


# The process' message counters (one node per process when serving; tests
# run a node per event loop and share them).
counters = Counters()


class JoinError(Exception):
    """The channel layer did not let this process join a channel's group."""


class Node:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.counters = counters
        self.hub = Hub(self.counters, self.loop)
        self.broker: Broker = get_broker()
        self.registry = make_registry()
        self.presence = make_presence()
        self.process_id = uuid.uuid4().hex
        self.channel_name: str | None = None
        # Per joined channel: the position delivered last (None: not known yet).
        self.delivered: dict[str, Position | None] = {}
        self._joined: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._delivering = asyncio.Lock()
        self._started: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._stats_dirty = True
        self._probe_group = f"realtime-probe.{self.process_id}"
        self._probe_seen = 0
        self._broken = False
        self._receiving = redis_clients.Outage(logger, "Receiving from the channel layer")

    @property
    def uses_redis(self) -> bool:
        return not isinstance(self.layer, InMemoryChannelLayer)

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Create the node's layer channel, join the all-clients group and
        start the background tasks. Safe to await from many sockets at once."""
        if self._started is None:
            self._started = self.loop.create_future()
            try:
                self.channel_name = await self.layer.new_channel("realtime.node.")
                await self._group_add(GROUP_ALL)
                await self._group_add(self._probe_group)
                self._task = self.loop.create_task(self._receive_loop())
                self._spawn(self._refresh_registry())
                self._spawn(self._report_stats())
                if self.uses_redis:
                    self._spawn(self._watch_subscriptions())
                    self._spawn(self._check_positions())
                    self._spawn(self._sweep_presence())
                self._started.set_result(None)
            except BaseException as exc:
                started, self._started = self._started, None
                started.set_exception(exc)
                started.exception()  # retrieved: the caller raises it
                raise
        await asyncio.shield(self._started)

    async def stop(self) -> None:
        """Stop the background tasks and close the Redis clients."""
        tasks = [*self._background, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.registry.close()
        await redis_clients.close_clients()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = self.loop.create_task(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- receiving ----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        assert self.channel_name is not None
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._receiving.failed(exc)
                await asyncio.sleep(1.0)
                continue
            self._receiving.succeeded()
            kind = message.get("type")
            if kind == PUBLICATION:
                try:
                    async with self._delivering:
                        await self._on_publication(message)
                except Exception:
                    logger.exception("Delivering a publication failed")
            elif kind == PROBE:
                self._probe_seen = max(self._probe_seen, int(message.get("n", 0)))

    async def _on_publication(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        batch = message.get("batch")
        if batch is not None:  # realtime.broker.layer_batch: one channel's, in order
            for offset, epoch, frame in batch:
                if channel is not None and await self._on_positioned(
                    channel, frame, Position(int(offset), str(epoch))
                ):
                    instruments.delivered(message)
            return
        frame = message["frame"]
        offset = message.get("offset")
        if channel is None or offset is None:
            if self.hub.deliver(channel, frame, skip_user=message.get("skip_user")):
                instruments.delivered(message)
            return
        position = Position(int(offset), str(message.get("epoch")))
        if await self._on_positioned(channel, frame, position):
            instruments.delivered(message)

    async def _on_positioned(self, channel: str, frame: str, position: Position) -> bool:
        """Deliver a publication of a channel's stream after any gap before
        it; False when it is not this process' to deliver (no longer joined,
        delivered already) or no local socket took it."""
        if channel not in self.delivered:
            return False  # no longer joined
        last = self.delivered[channel]
        if last is not None and position.epoch == last.epoch:
            if position.offset <= last.offset:
                return False  # delivered already (from history, or twice)
            if position.offset > last.offset + 1:
                await self._fill(channel, last, position)
        elif last is not None and position.offset > 1:
            await self._fill(channel, Position(0, position.epoch), position)
        taken = self.hub.deliver(channel, frame, position.offset) > 0
        self._delivered(channel, position)
        return taken

    def _delivered(self, channel: str, position: Position) -> None:
        if channel in self.delivered:
            self.delivered[channel] = position

    async def _fill(self, channel: str, last: Position, upto: Position) -> None:
        """Deliver what lies between `last` and `upto` (exclusive) from the
        history, or tell the channel's sockets to resync."""
        try:
            snapshot = await self.broker.snapshot(channel, after=last.offset)
        except Exception as exc:
            logger.warning("Reading the history of %s failed: %s", channel, exc)
            await self._resync(channel, upto)
            return
        wanted = range(last.offset + 1, upto.offset)
        found = {o: f for o, f in snapshot.entries if o in wanted}
        if snapshot.position.epoch != upto.epoch or len(found) != len(wanted):
            await self._resync(channel, Position(upto.offset - 1, upto.epoch))
            return
        for offset in wanted:
            self.hub.deliver(channel, found[offset], offset)
        logger.info("Filled a gap of %s publication(s) on %s from history", len(wanted), channel)

    async def _resync(self, channel: str, top: Position) -> None:
        self.counters.resyncs += 1
        logger.warning("Publications on %s were lost; its sockets resync at %s", channel, top)
        frame = protocol.encode(
            protocol.envelope(
                ServerType.RESYNC, {"offset": top.offset, "epoch": top.epoch}, channel=channel
            )
        )
        self.hub.deliver(channel, frame)
        self._delivered(channel, top)

    async def _check_positions(self) -> None:
        """Catch losses at the tail: every POSITION_CHECK_EVERY seconds, read
        the positions of all joined channels (one round trip per host) and
        deliver what this process has not seen."""
        outage = redis_clients.Outage(logger, "Checking channel positions")
        while True:
            await asyncio.sleep(POSITION_CHECK_EVERY)
            known = {c: p for c, p in self.delivered.items() if p is not None}
            if not known:
                continue
            try:
                tops = await self.broker.positions(list(known))
                outage.succeeded()
            except Exception as exc:
                outage.failed(exc)
                continue
            for channel, top in tops.items():
                last = self.delivered.get(channel)
                if last is None or (top.epoch == last.epoch and top.offset <= last.offset):
                    continue
                async with self._delivering:
                    last = self.delivered.get(channel)
                    if last is None:
                        continue
                    if top.epoch == last.epoch and top.offset <= last.offset:
                        continue
                    start = last if top.epoch == last.epoch else Position(0, top.epoch)
                    await self._fill(channel, start, Position(top.offset + 1, top.epoch))
                    self._delivered(channel, top)

    # --- subscriptions -------------------------------------------------------------------

    def attach(self, send: Send, transport: SocketTransport | None) -> Client:
        client = Client(
            send,
            transport,
            limit=realtime_settings.MAX_SOCKET_BUFFER_BYTES,
            on_pending=self.hub.pending,
            on_failure=self.detach,
            on_slow=self._cut_off,
        )
        self.hub.add(client)
        self._stats_dirty = True
        return client

    def detach(self, client: Client) -> None:
        """Forget a socket everywhere: channels, groups, presence, its user's slot."""
        if client.id not in self.hub.clients and not client.channels:
            return
        self._stats_dirty = True
        for channel in self.hub.remove(client):
            self._left(client, channel)
        if client.user_id is not None:
            self._spawn(self.registry.release(client.user_id, client.id))

    def _cut_off(self, client: Client) -> None:
        self.counters.slow_disconnects += 1
        self.counters.errors_sent += 1
        instruments.errors[ErrorCode.SLOW_CONSUMER] += 1
        instruments.disconnects[protocol.CloseCode.SLOW_CONSUMER] += 1
        last_words = protocol.encode(
            protocol.error(
                ErrorCode.SLOW_CONSUMER,
                "The socket did not read fast enough; reconnect and recover with 'since'.",
                limit=client.limit,
            )
        )
        self.detach(client)
        self._spawn(client.cut_off(protocol.CloseCode.SLOW_CONSUMER, last_words))

    async def claim_user_slot(
        self, client: Client, user_id: int, user_type: str, limit: int
    ) -> bool:
        """Count the socket against its user's limit of open sockets (across
        processes with Redis); False when the user is at the limit."""
        if not await self.registry.acquire(user_id, client.id, limit):
            return False
        client.user_id = user_id
        client.user_type = user_type
        return True

    async def subscribe(self, client: Client, channel: str, *, hold: bool = False) -> None:
        """Put the socket on a channel. Returns once this process is a member
        of the channel's group, so anything published after the caller answers
        `subscribed` reaches the socket. With `hold`, the channel's
        publications are kept back for the socket until `release`. Raises
        JoinError when the layer fails."""
        if client.id not in self.hub.clients:
            return
        if not self.hub.join(client, channel, hold=hold):
            return
        self._stats_dirty = True
        if channel not in self._joined:
            try:
                await self._join(channel)
            except Exception as exc:
                self.hub.leave(client, channel)
                raise JoinError(str(exc) or exc.__class__.__name__) from exc
        await self._presence_join(client, channel)

    def release(
        self, client: Client, channel: str, *, after: int, replay: list[tuple[int, str]]
    ) -> None:
        self.hub.release(client, channel, after=after, replay=replay)

    def unsubscribe(self, client: Client, channel: str) -> bool:
        """Take the socket off a channel; False when it was not on it."""
        if not self.hub.leave(client, channel):
            return False
        self._left(client, channel)
        return True

    def _left(self, client: Client, channel: str) -> None:
        self._stats_dirty = True
        if client.user_id is not None and presence_enabled(channel):
            self._spawn(self._presence_leave(client, channel))
        if not self.hub.has_members(channel):
            self._spawn(self._leave(channel))

    def _lock(self, channel: str) -> asyncio.Lock:
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    async def _join(self, channel: str) -> None:
        async with self._lock(channel):
            if channel in self._joined or not self.hub.has_members(channel):
                return
            self.delivered.setdefault(channel, None)
            try:
                await self._group_add(group_for(channel))
            except BaseException:
                self.delivered.pop(channel, None)
                raise
            self._joined.add(channel)
        # The baseline: what was published before the join is not ours to deliver.
        try:
            snapshot = await self.broker.snapshot(channel)
        except Exception as exc:
            logger.warning("Reading the position of %s failed: %s", channel, exc)
            return
        if channel in self.delivered and self.delivered[channel] is None:
            self.delivered[channel] = snapshot.position

    async def _leave(self, channel: str) -> None:
        async with self._lock(channel):
            if channel not in self._joined or self.hub.has_members(channel):
                return
            self._joined.discard(channel)
            self.delivered.pop(channel, None)
            try:
                async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
                    await self.layer.group_discard(group_for(channel), self.channel_name)
            except Exception as exc:
                logger.warning("Leaving channel %s failed: %s", channel, exc)
        if not self.hub.has_members(channel) and not self._lock(channel).locked():
            self._locks.pop(channel, None)

    async def _group_add(self, group: str) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow
        # the cancellation of a consumer whose join has just finished.
        async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
            await self.layer.group_add(group, self.channel_name)

    async def _watch_subscriptions(self) -> None:
        """Prove, every few seconds, that this process still receives what is
        sent to its groups: it sends itself a probe through the layer. When
        Redis answers the send but the probe never arrives (the layer's
        subscriptions did not survive a Redis restart), join everything again
        on a fresh subscription."""
        sent = 0
        outage = redis_clients.Outage(logger, "The channel layer")
        while True:
            await asyncio.sleep(PROBE_EVERY)
            if self._broken:
                await self._rejoin()
                continue
            sent += 1
            try:
                async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
                    await self.layer.group_send(self._probe_group, {"type": PROBE, "n": sent})
            except Exception as exc:
                outage.failed(exc)
                continue  # nothing to judge until Redis answers
            outage.succeeded()
            await asyncio.sleep(PROBE_GRACE)
            if self._probe_seen < sent:
                logger.warning("This process stopped receiving its groups; joining them again")
                await self._rejoin()

    async def _rejoin(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT * 2):
                await self.layer.flush()
                self.channel_name = await self.layer.new_channel("realtime.node.")
                for channel in tuple(self._joined):
                    await self.layer.group_add(group_for(channel), self.channel_name)
                await self.layer.group_add(GROUP_ALL, self.channel_name)
                await self.layer.group_add(self._probe_group, self.channel_name)
        except Exception as exc:
            if not self._broken:
                logger.warning("Joining the groups again failed (%s); retrying", exc)
            self._broken = True
        else:
            self._broken = False
            logger.info("Joined %s channel groups again", len(self._joined))
        finally:
            if self.channel_name is not None and self._task is None:
                self._task = self.loop.create_task(self._receive_loop())

    # --- presence ------------------------------------------------------------------------

    async def _presence_join(self, client: Client, channel: str) -> None:
        if client.user_id is None or not presence_enabled(channel):
            return
        try:
            first = await self.presence.join(channel, client.user_id, client.user_type, client.id)
            if first:
                await self._presence_event(
                    ServerType.USER_ONLINE, channel, client.user_id, client.user_type
                )
        except Exception as exc:
            logger.warning("Presence join on %s failed: %s", channel, exc)

    async def _presence_leave(self, client: Client, channel: str) -> None:
        assert client.user_id is not None
        try:
            last = await self.presence.leave(channel, client.user_id, client.user_type, client.id)
            if last:
                await self._presence_event(
                    ServerType.USER_OFFLINE, channel, client.user_id, client.user_type
                )
        except Exception as exc:
            logger.warning("Presence leave on %s failed: %s", channel, exc)

    async def _presence_event(self, kind: str, channel: str, user_id: int, user_type: str) -> None:
        """To the channel's subscribers other than the user's own sockets.
        Not a publication: no offset, not in history."""
        frame = protocol.encode(
            protocol.envelope(kind, {"user_id": user_id, "user_type": user_type}, channel=channel)
        )
        async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
            await self.broker.send_ephemeral(channel, frame, skip_user=user_id)

    async def _sweep_presence(self) -> None:
        """Announce `user_offline` for the users of processes that died
        without cleaning up: their presence entries lapse (they are refreshed
        while their process lives), and whichever process removes the last
        entry of a user on a channel announces it, once."""
        outage = redis_clients.Outage(logger, "Sweeping presence")
        while True:
            await asyncio.sleep(PRESENCE_SWEEP_EVERY)
            channels = [c for c in tuple(self.hub.channels) if presence_enabled(c)]
            try:
                for channel in channels:
                    for user_id, user_type in await self.presence.sweep(channel):
                        await self._presence_event(
                            ServerType.USER_OFFLINE, channel, user_id, user_type
                        )
                outage.succeeded()
            except Exception as exc:
                outage.failed(exc)

    async def _refresh_registry(self) -> None:
        """Keep this process' entries (sockets per user, presence) alive in
        Redis, and re-create them after Redis lost them."""
        outage = redis_clients.Outage(logger, "Refreshing this process' entries")
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            signed_in = [
                (c.user_id, c) for c in tuple(self.hub.clients.values()) if c.user_id is not None
            ]
            try:
                await self.registry.refresh((user_id, c.id) for user_id, c in signed_in)
                await self.presence.refresh(
                    (channel, user_id, c.user_type, c.id)
                    for user_id, c in signed_in
                    for channel in tuple(c.channels)
                    if presence_enabled(channel)
                )
                outage.succeeded()
            except Exception as exc:
                outage.failed(exc)

    async def _report_stats(self) -> None:
        """Publish this process' connection counts for /health and /stats on
        every process: within a quarter second of a change, and every few
        seconds as a heartbeat."""
        outage = redis_clients.Outage(logger, "Reporting connection counts")
        quiet = 0.0
        while True:
            await asyncio.sleep(0.25)
            quiet += 0.25
            if not self._stats_dirty and quiet < 5:
                continue
            self._stats_dirty = False
            quiet = 0.0
            try:
                await self.registry.report(self.process_id, self.report())
                outage.succeeded()
            except Exception as exc:
                outage.failed(exc)

    # --- statistics ----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        return {
            **self.hub.connection_stats(),
            "messages": dataclasses.asdict(self.counters),
        }


# One node per event loop: a server runs one loop per process; tests run one per test.
_nodes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Node] = weakref.WeakKeyDictionary()
_latest: list[Node] = []


async def get_node() -> Node:
    loop = asyncio.get_running_loop()
    node = _nodes.get(loop)
    if node is None:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("CHANNEL_LAYERS has no default layer")
        node = _nodes[loop] = Node(layer)
        _latest[:] = [node]
    await node.start()
    return node


def current_node() -> Node | None:
    """The node of this process' serving loop, if a socket has started one."""
    if _latest and not _latest[0].loop.is_closed():
        return _latest[0]
    return None


def local_report() -> dict[str, Any]:
    """This process' connections and counters (zero before any socket)."""
    node = current_node()
    if node is None:
        return {"total": 0, "by_channel": {}, "messages": dataclasses.asdict(counters)}
    return node.report()


async def stop_node() -> None:
    """Stop the running loop's node (at server shutdown)."""
    node = _nodes.pop(asyncio.get_running_loop(), None)
    if node is not None:
        await node.stop()
