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
from types import TracebackType
from typing import Any

import redis
from asgiref.sync import async_to_sync

from . import protocol
from .broker import get_broker
from .conf import realtime_settings
from .node import counters

logger = logging.getLogger(__name__)


class PublishError(Exception):
    """The publication was not made. Raised as one of the two kinds below,
    which callers tell apart: only the first is worth retrying as it is."""

    code = "publish_failed"


class LayerUnavailableError(PublishError):
    """The channel layer or Redis is unreachable: a connection refused or
    lost, or no answer within REALTIME["LAYER_TIMEOUT"] seconds. Retry later."""

    code = "channel_layer_unavailable"


class PublishFailedError(PublishError):
    """Any other failure: Redis answered with an error (WRONGTYPE on one key,
    a full memory, a script error) or the code has a bug. Retrying the same
    publication may fail the same way."""


class PublicationTooLargeError(PublishFailedError):
    """The publication's `data`, serialized, is over
    REALTIME["MAX_PUBLICATION_BYTES"]. Nothing was published."""

    code = "payload_too_large"


# What "unreachable" is: redis-py's connection and timeout errors (its
# ConnectionError covers a Redis still loading its data), and the socket's own
# (OSError: refused, reset, timed out).
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
)


def publish_error(exc: BaseException) -> PublishError:
    """The PublishError that says what `exc`, raised while publishing, means."""
    detail = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
    if isinstance(exc, UNREACHABLE_ERRORS):
        return LayerUnavailableError(f"The channel layer is unreachable: {detail}")
    return PublishFailedError(f"The publication failed: {detail}")


class _on_the_layer:  # noqa: N801 - used as `async with _on_the_layer():`
    """Broker work within REALTIME["LAYER_TIMEOUT"], any failure raised as
    the PublishError it means. A class rather than an @asynccontextmanager:
    it is entered once per publishing call, and a generator per call was a
    measurable part of a POST /broadcast."""

    __slots__ = ("_timeout",)

    async def __aenter__(self) -> None:
        self._timeout = asyncio.timeout(realtime_settings.LAYER_TIMEOUT)
        await self._timeout.__aenter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self._timeout.__aexit__(kind, exc, traceback)
        except TimeoutError:
            raise LayerUnavailableError(
                "The channel layer did not answer within"
                f" {realtime_settings.LAYER_TIMEOUT:g} seconds."
            ) from None
        if isinstance(exc, Exception) and not isinstance(exc, PublishError):
            raise publish_error(exc) from exc


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
    Raises LayerUnavailableError when the channel layer cannot be reached or does
    not answer within REALTIME["LAYER_TIMEOUT"] seconds, PublishFailedError when
    publishing fails otherwise (both are PublishError)."""
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
        data_json = protocol.encode(message.data)
        if protocol.utf8_size(data_json) > realtime_settings.MAX_PUBLICATION_BYTES:
            raise PublicationTooLargeError(
                f"The data of {message.type!r} is over"
                f" {realtime_settings.MAX_PUBLICATION_BYTES} bytes as JSON."
            )
        if message.channels:
            prefixes = protocol.publication_prefixes(
                message.type, data_json, id=message_id, channels=list(message.channels)
            )
            records.extend(
                (channel, prefix, dedupe)
                for channel, prefix in zip(message.channels, prefixes, strict=True)
            )
        else:
            frame = protocol.publication_to_all(message.type, data_json, id=message_id)
            to_all.append((frame, dedupe))
        publications.append(
            Publication(id=message_id, type=message.type, channels=message.channels)
        )
    async with _on_the_layer():
        broker = get_broker()
        if records:
            await broker.publish_many(records)
        for frame, dedupe in to_all:
            await broker.publish_all(frame, dedupe_key=dedupe)
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


async def apublish_ephemeral(
    *,
    type: str,
    data: dict[str, Any] | None = None,
    channel: str,
    skip_user: int | None = None,
) -> None:
    """Send a message to the subscribers of `channel` now, without an id or a
    position: not a publication (it is never in history, and a socket that
    is away misses it), as presence events are. Typing indicators are
    these. `skip_user`: that user's own sockets do not get it. Raises
    LayerUnavailableError or PublishFailedError as `apublish`."""
    frame = protocol.encode(protocol.envelope(type, data or {}, channel=channel))
    async with _on_the_layer():
        await get_broker().send_ephemeral(channel, frame, skip_user=skip_user)


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
