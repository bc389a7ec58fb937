"""
The hub: which local socket is on which channel, and the writing of frames
to them. Nothing else: it joins no group and reads no Redis (that is the
node's job, see realtime.node).

A message is encoded and framed once (realtime.wsframe) and written to each
socket through its Client, which never waits for a socket that does not read
(see realtime.client). What the sockets are given during one turn of the
event loop is written at the end of that turn, one write per socket. A socket
holding a channel (catching up on its history after subscribing) keeps that
channel's messages until it is released.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .client import Client
from .wsframe import Outgoing

logger = logging.getLogger(__name__)


@dataclass
class Counters:
    """Per-process message counters, reported by /stats."""

    published: int = 0
    delivered: int = 0
    received: int = 0
    errors_sent: int = 0
    slow_disconnects: int = 0
    resyncs: int = 0


class Hub:
    def __init__(self, counters: Counters, loop: asyncio.AbstractEventLoop) -> None:
        self.counters = counters
        self.loop = loop
        self.clients: dict[str, Client] = {}
        self.channels: dict[str, set[Client]] = {}
        self._pending: list[Client] = []

    def pending(self, client: Client) -> None:
        """A socket was given frames this turn: write them at its end."""
        if not self._pending:
            self.loop.call_soon(self._write_pending)
        self._pending.append(client)

    def _write_pending(self) -> None:
        pending, self._pending = self._pending, []
        for client in pending:
            client.write_pending()

    def add(self, client: Client) -> None:
        self.clients[client.id] = client

    def remove(self, client: Client) -> list[str]:
        """Forget a socket; returns the channels it left (in no order)."""
        self.clients.pop(client.id, None)
        left = []
        for channel in tuple(client.channels):
            if self.leave(client, channel):
                left.append(channel)
        client.holds = None
        return left

    def join(self, client: Client, channel: str, *, hold: bool = False) -> bool:
        """Put a socket on a channel; True when it is newly there."""
        if hold:
            if client.holds is None:
                client.holds = {}
            client.holds.setdefault(channel, [])
        members = self.channels.setdefault(channel, set())
        if client in members:
            return False
        members.add(client)
        client.channels.add(channel)
        return True

    def leave(self, client: Client, channel: str) -> bool:
        """Take a socket off a channel; True when it was there."""
        client.channels.discard(channel)
        self.drop_hold(client, channel)
        members = self.channels.get(channel)
        if members is None or client not in members:
            return False
        members.discard(client)
        if not members:
            del self.channels[channel]
        return True

    def has_members(self, channel: str) -> bool:
        return bool(self.channels.get(channel))

    def deliver(
        self,
        channel: str | None,
        message: Outgoing | str,
        offset: int | None = None,
        *,
        skip_user: int | None = None,
    ) -> int:
        """Write one message to every local socket on `channel` (every socket
        when None). Returns how many took it."""
        targets: Iterable[Client]
        if channel is None:
            targets = tuple(self.clients.values())
        else:
            members = self.channels.get(channel)
            if not members:
                return 0
            targets = tuple(members)
        if isinstance(message, str):
            message = Outgoing(message)
        sent = 0
        for client in targets:
            if skip_user is not None and client.user_id == skip_user:
                continue
            if client.holds is not None and channel in client.holds:
                client.holds[channel].append((offset, message))
                continue
            client.write(message)
            sent += 1
        self.counters.delivered += sent
        return sent

    def release(
        self, client: Client, channel: str, *, after: int, replay: Iterable[tuple[int, str]] = ()
    ) -> None:
        """End a hold: write `replay` (history, in offset order), then what
        was kept back, skipping every offset already written or not after
        `after`; then let the channel's messages through again."""
        last: int = after
        for offset, frame in replay:
            if offset > last:
                client.write(Outgoing(frame))
                last = offset
        kept = client.holds.get(channel) if client.holds else None
        while kept:
            kept_offset, message = kept.pop(0)
            if kept_offset is None or kept_offset > last:
                client.write(message)
                if kept_offset is not None:
                    last = kept_offset
        self.drop_hold(client, channel)

    @staticmethod
    def drop_hold(client: Client, channel: str) -> None:
        if client.holds is not None:
            client.holds.pop(channel, None)
            if not client.holds:
                client.holds = None

    def connection_stats(self) -> dict[str, Any]:
        """{"total": N, "by_channel": {...}}. Safe to call from any thread: it
        reads atomic copies of the hub's dicts."""
        channels = self.channels.copy()
        return {
            "total": len(self.clients),
            "by_channel": {name: len(members) for name, members in sorted(channels.items())},
        }
