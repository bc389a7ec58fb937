"""
The publishing service: the only way anything is sent to a channel.

Views, signals, the admin and management commands all call `publish` (sync)
or `apublish` (async). A publication is serialized here, once per channel,
and handed to the broker, which gives it its position and history and sends
the finished frame to the channel's group; each process' node writes that
frame to its local subscribers (see `realtime.broker` and `realtime.node`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync

from . import protocol
from .broker import get_broker
from .conf import realtime_settings
from .node import counters

logger = logging.getLogger(__name__)


class PublishError(Exception):
    """The channel layer did not take the publication (down, or too slow)."""


@dataclass(frozen=True)
class Publication:
    id: str
    type: str
    channels: tuple[str, ...]  # empty: every connected client

    @property
    def channel(self) -> str | None:
        return self.channels[0] if len(self.channels) == 1 else None


@dataclass(frozen=True)
class Message:
    """One publication to make: to `channels`, or every client when empty."""

    type: str
    data: dict[str, Any]
    channels: tuple[str, ...] = ()
    message_id: str | None = None  # given: idempotent (see apublish)


def _targets(channel: str | None, channels: Sequence[str] | None) -> tuple[str, ...]:
    targets = list(channels or ())
    if channel is not None:
        targets.insert(0, channel)
    return tuple(dict.fromkeys(targets))


async def apublish(
    *,
    type: str,
    data: dict[str, Any] | None = None,
    channel: str | None = None,
    channels: Sequence[str] | None = None,
    message_id: str | None = None,
) -> Publication:
    """Send one message to the subscribers of `channel` and/or `channels`, or
    to every connected client when neither is given. Every copy carries the
    same `id` and its own `channel`, `offset` and `epoch` (see
    realtime.broker). With `message_id` given, publishing is idempotent: the
    same id to the same channel within a day delivers nothing again.
    Raises PublishError when the channel layer fails or does not answer
    within REALTIME["LAYER_TIMEOUT"] seconds."""
    message = Message(type, data or {}, _targets(channel, channels), message_id)
    return (await apublish_many([message]))[0]


async def apublish_many(messages: Sequence[Message]) -> list[Publication]:
    """Publish several messages, in order, with the Redis work of all of them
    pipelined; their publications, in the same order. All or nothing is
    attempted; PublishError as `apublish`."""
    publications = []
    records: list[tuple[str, str, str | None]] = []  # (channel, prefix, dedupe key)
    to_all: list[tuple[str, str | None]] = []  # (frame, dedupe key)
    for message in messages:
        message_id = message.message_id or protocol.new_message_id()
        dedupe = message_id if message.message_id is not None else None
        if message.channels:
            prefixes = protocol.publication_prefixes(
                message.type, message.data, id=message_id, channels=list(message.channels)
            )
            records.extend(
                (channel, prefix, dedupe)
                for channel, prefix in zip(message.channels, prefixes, strict=True)
            )
        else:
            frame = protocol.encode(protocol.envelope(message.type, message.data, id=message_id))
            to_all.append((frame, dedupe))
        publications.append(
            Publication(id=message_id, type=message.type, channels=message.channels)
        )
    try:
        async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
            broker = get_broker()
            if records:
                await broker.publish_many(records)
            for frame, dedupe in to_all:
                await broker.publish_all(frame, dedupe_key=dedupe)
    except TimeoutError:
        raise PublishError(
            f"The channel layer did not answer within {realtime_settings.LAYER_TIMEOUT:g} seconds."
        ) from None
    except Exception as exc:
        raise PublishError(f"The channel layer failed: {exc or exc.__class__.__name__}") from exc
    counters.published += len(publications)
    if logger.isEnabledFor(logging.INFO):
        for publication in publications:
            logger.info(
                "Broadcasted %r to %s (id %s)",
                publication.type,
                ", ".join(f"channel {t}" for t in publication.channels) or "all clients",
                publication.id,
            )
    return publications


def publish(
    *,
    type: str,
    data: dict[str, Any] | None = None,
    channel: str | None = None,
    channels: Sequence[str] | None = None,
    message_id: str | None = None,
) -> Publication:
    """Synchronous `apublish`, for views, signals and commands."""
    return async_to_sync(apublish)(
        type=type, data=data, channel=channel, channels=channels, message_id=message_id
    )
