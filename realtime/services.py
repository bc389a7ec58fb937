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


def _targets(channel: str | None, channels: Sequence[str] | None) -> list[str]:
    targets = list(channels or ())
    if channel is not None:
        targets.insert(0, channel)
    return list(dict.fromkeys(targets))


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
    targets = _targets(channel, channels)
    idempotent = message_id is not None
    message_id = message_id or protocol.new_message_id()
    try:
        async with asyncio.timeout(realtime_settings.LAYER_TIMEOUT):
            broker = get_broker()
            if not targets:
                frame = protocol.encode(protocol.envelope(type, data or {}, id=message_id))
                await broker.publish_all(frame, dedupe_key=message_id if idempotent else None)
            for target in targets:
                prefix = protocol.encode(
                    protocol.envelope(type, data or {}, channel=target, id=message_id)
                )[:-1]
                await broker.publish(target, prefix, dedupe_key=message_id if idempotent else None)
    except TimeoutError:
        raise PublishError(
            f"The channel layer did not answer within {realtime_settings.LAYER_TIMEOUT:g} seconds."
        ) from None
    except Exception as exc:
        raise PublishError(f"The channel layer failed: {exc or exc.__class__.__name__}") from exc
    counters.published += 1
    logger.info(
        "Broadcasted %r to %s (id %s)",
        type,
        ", ".join(f"channel {t}" for t in targets) if targets else "all clients",
        message_id,
    )
    return Publication(id=message_id, type=type, channels=tuple(targets))


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
