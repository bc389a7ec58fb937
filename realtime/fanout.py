"""
The local fan-out: one hub per server process.

A straightforward Channels build gives every socket its own layer channel and
adds it to a group per subscription: a broadcast to N sockets then wakes N
consumers and serializes the message N times. Here the *process* is the
member of the group instead:

* each channel `jobs` is the Channels group `rt.jobs`; the hub joins it once,
  with its own layer channel, when the first local socket subscribes, and
  leaves it when the last one goes;
* the publishing service serializes a publication once and sends the finished
  frame to the group;
* the hub's single receive loop writes that same frame to each local socket
  subscribed to the channel, one after another, in arrival order.

Across processes this stays plain Channels: with channels-redis every process
joins the groups its sockets need, and a group send reaches each process once,
hence each socket once. Everything that is not fan-out (parsing, permissions,
replies to one socket) stays in the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer

from .conf import realtime_settings
from .presence import USER_OFFLINE, USER_ONLINE, make_presence, presence_enabled
from .protocol import encode, envelope
from .registry import REFRESH_EVERY, make_registry

logger = logging.getLogger(__name__)

# Layer message type carrying a serialized publication to the hubs.
PUBLICATION = "realtime.publication"
# The group every hub joins, for publications to all clients.
GROUP_ALL = "realtime-all"
# A hub's proof that it still receives its groups (see Hub._watch_subscriptions).
PROBE = "realtime.probe"
PROBE_EVERY = 3.0
PROBE_GRACE = 2.0

Send = Callable[[dict[str, Any]], Awaitable[None]]


# Scope key under which the server's own `send` is kept (see keep_server_send).
SERVER_SEND = "realtime.server_send"


def keep_server_send(application: Any) -> Any:
    """Outermost wrapper of the socket stack: keeps the ASGI server's own
    `send` in the scope. Middleware below (sessions, auth) wraps `send` to
    watch for the accept; the hub writes publications through the server's
    `send` directly, one call per socket instead of one per wrapper."""

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> Any:
        return await application({**scope, SERVER_SEND: send}, receive, send)

    return app


def group_for(channel: str) -> str:
    """The Channels group of a realtime channel (names are already group-safe)."""
    return f"rt.{channel}"


@dataclass
class Counters:
    """Per-process message counters, reported by /stats."""

    published: int = 0
    delivered: int = 0
    received: int = 0
    errors_sent: int = 0


counters = Counters()


class LocalSocket:
    """One open socket on this process, as the hub sees it.

    A socket can be *held*: what is delivered to it meanwhile is kept, in
    order, and written when it is released (used while the socket is being
    set up, so that `connected` is always its first message)."""

    __slots__ = (
        "id",
        "send",
        "channels",
        "user_id",
        "user_type",
        "holds",
        "_socket_send",
        "_held",
        "__weakref__",
    )

    def __init__(self, send: Send, *, held: bool = False) -> None:
        self.id = str(uuid.uuid4())
        self.channels: set[str] = set()
        self.user_id: int | None = None
        self.user_type: str = ""
        # Channels whose publications are kept back while the socket catches
        # up on their history: channel -> [(offset, message)].
        self.holds: dict[str, list[tuple[int | None, dict[str, Any]]]] | None = None
        self._socket_send = send
        self._held: list[dict[str, Any]] | None = [] if held else None
        self.send: Send = self._hold if held else send

    async def _hold(self, message: dict[str, Any]) -> None:
        assert self._held is not None
        self._held.append(message)

    async def release(self) -> None:
        """Write what was held, then let deliveries through directly."""
        while self._held:
            held, self._held = self._held, []
            for message in held:
                await self._socket_send(message)
        self._held = None
        self.send = self._socket_send


class JoinError(Exception):
    """The channel layer did not let this process join a channel's group."""


class Hub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.sockets: dict[str, LocalSocket] = {}
        self.channels: dict[str, set[LocalSocket]] = {}
        self.channel_name: str | None = None
        self._joined: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._started: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.registry = make_registry()
        self.presence = make_presence()
        self.process_id = uuid.uuid4().hex
        self._stats_dirty = True
        self._probe_group = f"realtime-probe.{self.process_id}"
        self._probe_seen = 0
        self._broken = False

    # --- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        """Create the hub's layer channel, join the all-clients group and start
        the receive loop. Safe to await from many sockets at once."""
        if self._started is None:
            self._started = self.loop.create_future()
            try:
                self.channel_name = await self.layer.new_channel("realtime.hub.")
                await self._group_add(GROUP_ALL)
                await self._group_add(self._probe_group)
                self._task = self.loop.create_task(self._receive_loop())
                self._spawn(self._refresh_registry())
                self._spawn(self._report_stats())
                if not isinstance(self.layer, InMemoryChannelLayer):
                    self._spawn(self._watch_subscriptions())
                self._started.set_result(None)
            except BaseException as exc:
                started, self._started = self._started, None
                started.set_exception(exc)
                started.exception()  # retrieved: the caller raises it
                raise
        await asyncio.shield(self._started)

    async def _receive_loop(self) -> None:
        assert self.channel_name is not None
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Hub receive failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message.get("type") == PUBLICATION:
                await self.deliver(
                    message.get("channel"),
                    message["frame"],
                    message.get("offset"),
                    skip_user=message.get("skip_user"),
                )
            elif message.get("type") == PROBE:
                self._probe_seen = max(self._probe_seen, int(message.get("n", 0)))

    async def _watch_subscriptions(self) -> None:
        """Prove, every few seconds, that this process still receives what is
        sent to its groups: it sends itself a probe through the layer. When
        Redis answers the send but the probe never arrives (the layer's
        subscriptions did not survive a Redis restart), join everything again
        on a fresh subscription."""
        sent = 0
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
                logger.debug("Probe not sent (%s): nothing to judge until Redis answers", exc)
                continue
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
                self.channel_name = await self.layer.new_channel("realtime.hub.")
                for channel in tuple(self._joined):
                    await self.layer.group_add(group_for(channel), self.channel_name)
                await self.layer.group_add(GROUP_ALL, self.channel_name)
                await self.layer.group_add(self._probe_group, self.channel_name)
        except Exception as exc:
            logger.warning("Joining the groups again failed (%s); retrying", exc)
            self._broken = True
        else:
            self._broken = False
            logger.info("Joined %s channel groups again", len(self._joined))
        finally:
            if self.channel_name is not None and self._task is None:
                self._task = self.loop.create_task(self._receive_loop())

    # --- fan-out ----------------------------------------------------------------

    async def deliver(
        self,
        channel: str | None,
        frame: str,
        offset: int | None = None,
        *,
        skip_user: int | None = None,
    ) -> int:
        """Write one serialized frame to every local socket on `channel` (all
        sockets when None). A socket that fails is logged and skipped: it never
        stops delivery to the others. A socket holding the channel (catching
        up on its history) keeps the frame for later."""
        targets: Iterable[LocalSocket]
        if channel is None:
            targets = tuple(self.sockets.values())
        else:
            members = self.channels.get(channel)
            if not members:
                return 0
            targets = tuple(members)
        message = {"type": "websocket.send", "text": frame}
        sent = 0
        for sock in targets:
            if skip_user is not None and sock.user_id == skip_user:
                continue
            try:
                if sock.holds is not None and channel in sock.holds:
                    sock.holds[channel].append((offset, message))
                    continue
                await sock.send(message)
                sent += 1
            except Exception:
                logger.warning("Delivery to client %s failed", sock.id, exc_info=True)
        counters.delivered += sent
        return sent

    # --- sockets and subscriptions ------------------------------------------------

    def attach(self, send: Send, *, held: bool = False) -> LocalSocket:
        sock = LocalSocket(send, held=held)
        self.sockets[sock.id] = sock
        self._stats_dirty = True
        return sock

    def detach(self, sock: LocalSocket) -> None:
        if self.sockets.pop(sock.id, None) is not None:
            self._stats_dirty = True
        for channel in tuple(sock.channels):
            self._remove(sock, channel)
        if sock.user_id is not None:
            self._spawn(self.registry.release(sock.user_id, sock.id))

    async def claim_user_slot(
        self, sock: LocalSocket, user_id: int, user_type: str, limit: int
    ) -> bool:
        """Count the socket against its user's limit of open sockets (across
        processes with Redis); False when the user is at the limit."""
        if not await self.registry.acquire(user_id, sock.id, limit):
            return False
        sock.user_id = user_id
        sock.user_type = user_type
        return True

    async def _refresh_registry(self) -> None:
        """Keep this process' entries (sockets per user, presence) alive in
        Redis, and re-create them after Redis lost them."""
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            sockets = [s for s in tuple(self.sockets.values()) if s.user_id]
            try:
                await self.registry.refresh((s.user_id, s.id) for s in sockets)
                await self.presence.refresh(
                    (channel, s.user_id, s.user_type, s.id)
                    for s in sockets
                    for channel in tuple(s.channels)
                    if presence_enabled(channel)
                )
            except Exception as exc:
                logger.warning("Refreshing this process' entries failed: %s", exc)

    async def _report_stats(self) -> None:
        """Publish this process' connection counts for /health and /stats on
        every process: within a quarter second of a change, and every few
        seconds as a heartbeat."""
        quiet = 0.0
        while True:
            await asyncio.sleep(0.25)
            quiet += 0.25
            if not self._stats_dirty and quiet < 5:
                continue
            self._stats_dirty = False
            quiet = 0.0
            try:
                await self.registry.report(
                    self.process_id,
                    {**self.connection_stats(), "messages": dataclasses.asdict(counters)},
                )
            except Exception as exc:
                logger.warning("Reporting connection counts failed: %s", exc)

    # --- presence ------------------------------------------------------------------

    async def _presence_join(self, sock: LocalSocket, channel: str) -> None:
        if sock.user_id is None or not presence_enabled(channel):
            return
        try:
            first = await self.presence.join(channel, sock.user_id, sock.user_type, sock.id)
            if first:
                await self._presence_event(USER_ONLINE, channel, sock)
        except Exception as exc:
            logger.warning("Presence join on %s failed: %s", channel, exc)

    async def _presence_leave(self, sock: LocalSocket, channel: str) -> None:
        assert sock.user_id is not None
        try:
            last = await self.presence.leave(channel, sock.user_id, sock.user_type, sock.id)
            if last:
                await self._presence_event(USER_OFFLINE, channel, sock)
        except Exception as exc:
            logger.warning("Presence leave on %s failed: %s", channel, exc)

    async def _presence_event(self, kind: str, channel: str, sock: LocalSocket) -> None:
        """To the channel's subscribers other than the user's own sockets.
        Not a publication: no offset, not in history."""
        frame = encode(
            envelope(kind, {"user_id": sock.user_id, "user_type": sock.user_type}, channel=channel)
        )
        async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
            await self.layer.group_send(
                group_for(channel),
                {
                    "type": PUBLICATION,
                    "channel": channel,
                    "frame": frame,
                    "skip_user": sock.user_id,
                },
            )

    async def subscribe(self, sock: LocalSocket, channel: str, *, hold: bool = False) -> None:
        """Add the socket to a channel. Returns once this process is a member
        of the channel's group, so anything published after the caller answers
        `subscribed` reaches the socket. With `hold`, the channel's
        publications are kept back for the socket until `release`. Raises
        JoinError when the layer fails."""
        if sock.id not in self.sockets:
            return
        if hold:
            if sock.holds is None:
                sock.holds = {}
            sock.holds.setdefault(channel, [])
        members = self.channels.setdefault(channel, set())
        if sock in members:
            return
        members.add(sock)
        sock.channels.add(channel)
        self._stats_dirty = True
        if channel not in self._joined:
            try:
                await self._join(channel)
            except Exception as exc:
                self._drop_hold(sock, channel)
                self._remove(sock, channel)
                raise JoinError(str(exc) or exc.__class__.__name__) from exc
        await self._presence_join(sock, channel)

    async def release(
        self,
        sock: LocalSocket,
        channel: str,
        *,
        after: int,
        replay: Iterable[tuple[int, str]] = (),
    ) -> None:
        """End a hold: write `replay` (history, in offset order), then what
        was kept back, skipping every offset already written or not after
        `after`; then let the channel's publications through again."""
        last = after
        for offset, frame in replay:
            if offset > last:
                await sock.send({"type": "websocket.send", "text": frame})
                last = offset
        kept = sock.holds.get(channel) if sock.holds else None
        while kept:
            offset, message = kept.pop(0)
            if offset is None or offset > last:
                await sock.send(message)
                last = offset if offset is not None else last
        self._drop_hold(sock, channel)

    @staticmethod
    def _drop_hold(sock: LocalSocket, channel: str) -> None:
        if sock.holds is not None:
            sock.holds.pop(channel, None)
            if not sock.holds:
                sock.holds = None

    def unsubscribe(self, sock: LocalSocket, channel: str) -> bool:
        """Remove the socket from a channel; False when it was not subscribed."""
        if channel not in sock.channels:
            return False
        self._remove(sock, channel)
        return True

    def _remove(self, sock: LocalSocket, channel: str) -> None:
        sock.channels.discard(channel)
        self._drop_hold(sock, channel)
        members = self.channels.get(channel)
        if members is None or sock not in members:
            return
        members.discard(sock)
        self._stats_dirty = True
        if sock.user_id is not None and presence_enabled(channel):
            self._spawn(self._presence_leave(sock, channel))
        if not members:
            del self.channels[channel]
            self._spawn(self._leave(channel))

    # --- group membership -----------------------------------------------------------

    def _lock(self, channel: str) -> asyncio.Lock:
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    async def _join(self, channel: str) -> None:
        async with self._lock(channel):
            if channel in self._joined or not self.channels.get(channel):
                return
            await self._group_add(group_for(channel))
            self._joined.add(channel)

    async def _leave(self, channel: str) -> None:
        async with self._lock(channel):
            if channel not in self._joined or self.channels.get(channel):
                return
            self._joined.discard(channel)
            try:
                async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
                    await self.layer.group_discard(group_for(channel), self.channel_name)
            except Exception:
                logger.warning("Leaving channel %s failed", channel, exc_info=True)
        if not self.channels.get(channel) and not self._lock(channel).locked():
            self._locks.pop(channel, None)

    async def _group_add(self, group: str) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow
        # the cancellation of a consumer whose join has just finished.
        async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
            await self.layer.group_add(group, self.channel_name)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = self.loop.create_task(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- statistics -------------------------------------------------------------------

    def connection_stats(self) -> dict[str, Any]:
        """{"total": N, "by_channel": {...}}. Safe to call from any thread: it
        reads atomic copies of the hub's dicts."""
        channels = self.channels.copy()
        return {
            "total": len(self.sockets),
            "by_channel": {name: len(members) for name, members in sorted(channels.items())},
        }


# One hub per event loop: daphne runs one loop per process; tests run one per test.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_latest: list[Hub] = []


async def get_hub() -> Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("CHANNEL_LAYERS has no default layer")
        hub = _hubs[loop] = Hub(layer)
        _latest[:] = [hub]
    await hub.start()
    return hub


def current_hub() -> Hub | None:
    """The hub of this process' serving loop, if a socket has started one."""
    if _latest and not _latest[0].loop.is_closed():
        return _latest[0]
    return None


def connection_stats() -> dict[str, Any]:
    hub = current_hub()
    if hub is None:
        return {"total": 0, "by_channel": {}}
    return hub.connection_stats()
