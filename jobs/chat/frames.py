"""
The chat's socket frames, registered with realtime.handlers by the app's
ready(): `chat_send`, `typing` and `chat_read`, each naming its chat by the
job's channel (`"channel": "job.12"`) and carrying its fields in `data`.
They translate frames into jobs.chat.services calls and their errors into
the protocol's `error` messages; the connection stays open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async

from realtime.handlers import ClientMessage, register_client_message
from realtime.protocol import ClientType, ErrorCode, ProtocolError, ServerType, envelope
from realtime.services import PublishError

from ..permissions import JOB_CHANNEL_PATTERN
from . import services
from .events import job_channel
from .indicators import STATES, indicators
from .ratelimit import RATE_LIMIT

logger = logging.getLogger(__name__)

JOB_CHANNEL_RE = re.compile(JOB_CHANNEL_PATTERN)


def _job_id(message: ClientMessage) -> int:
    channel = message.body.get("channel")
    found = JOB_CHANNEL_RE.fullmatch(channel) if isinstance(channel, str) else None
    if found is None:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            "A chat is named by its job's channel: 'job.<id>'.",
            field="channel",
        )
    return int(found.group(1))


def _data(message: ClientMessage) -> dict[str, Any]:
    data = message.body.get("data")
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "'data' must be an object.", field="data")
    return data


def _refusal(exc: services.ChatError, **fields: Any) -> ProtocolError:
    if isinstance(exc, services.ChatRateLimitedError):
        fields["limit"] = RATE_LIMIT
    return ProtocolError(exc.code, exc.message, field=exc.field, **fields)


def _signed_in(message: ClientMessage, channel: str) -> Any:
    if message.user is None:
        raise ProtocolError(
            ErrorCode.FORBIDDEN, "Sign in to take part in a job's chat.", channel=channel
        )
    return message.user


async def on_chat_send(message: ClientMessage) -> None:
    """Store a message (once per client_id) and ack it with its id."""
    job_id = _job_id(message)
    channel = job_channel(job_id)
    data = _data(message)
    client_id = data.get("client_id")
    shown_id = client_id if isinstance(client_id, str) else None
    try:
        services.clean_body(data.get("body"))
        services.clean_client_id(client_id)
        user = _signed_in(message, channel)
        sent = await database_sync_to_async(services.chat_send)(
            job_id=job_id, sender=user, body=data.get("body"), client_id=client_id
        )
    except services.ChatError as exc:
        raise _refusal(exc, channel=channel, client_id=shown_id) from None
    await message.reply(
        envelope(
            ServerType.CHAT_ACK,
            {"client_id": str(sent.message.client_id), "message_id": sent.message.pk},
        )
    )
    if sent.created:
        try:
            await indicators.message_sent(user_id=user.pk, job_id=job_id)
        except PublishError as exc:
            logger.warning("Sending the 'stopped' of user %s failed: %s", user.pk, exc)


async def on_typing(message: ClientMessage) -> None:
    """`typing` or `stopped`, to the job's other sockets (see jobs.chat.indicators)."""
    job_id = _job_id(message)
    channel = job_channel(job_id)
    state = _data(message).get("state")
    if state not in STATES:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, "'state' is 'typing' or 'stopped'.", field="state"
        )
    user = _signed_in(message, channel)
    # A socket on the job's channel was let in by the same rule.
    if channel not in message.channels:
        try:
            await database_sync_to_async(services.participant_job)(job_id=job_id, user=user)
        except services.ChatError as exc:
            raise _refusal(exc, channel=channel) from None
    await _quietly(indicators.received(user_id=user.pk, job_id=job_id, state=state))


async def on_chat_read(message: ClientMessage) -> None:
    """Move the user's read mark forward (an older id changes nothing)."""
    job_id = _job_id(message)
    channel = job_channel(job_id)
    message_id = _data(message).get("message_id")
    try:
        services.clean_message_id(message_id)
        user = _signed_in(message, channel)
        await database_sync_to_async(services.chat_mark_read)(
            job_id=job_id, user=user, message_id=message_id
        )
    except services.ChatError as exc:
        raise _refusal(exc, channel=channel) from None


async def _quietly(call: Awaitable[None]) -> None:
    """An ephemeral send: when the channel layer is away, say so."""
    try:
        await call
    except PublishError as exc:
        raise ProtocolError(
            ErrorCode.SERVICE_UNAVAILABLE, f"Could not send the typing state: {exc}"
        ) from None


HANDLERS: dict[str, Callable[[ClientMessage], Awaitable[None]]] = {
    ClientType.CHAT_SEND: on_chat_send,
    ClientType.TYPING: on_typing,
    ClientType.CHAT_READ: on_chat_read,
}


def register() -> None:
    for type, handler in HANDLERS.items():
        register_client_message(type, handler)
