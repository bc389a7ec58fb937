"""What each chat change announces: the publication's type, data and channels.
All go through the outbox (realtime.outbox) in the transaction of the change,
with the job's ordering key, so they keep the order of the job's events."""

from __future__ import annotations

from typing import Any

from rest_framework.fields import DateTimeField

from realtime.permissions import personal_channel
from realtime.protocol import PublicationType

from .models import ChatMessage

PREVIEW_LENGTH = 100


def job_channel(job_id: int) -> str:
    return f"job.{job_id}"


def ordering_key(job_id: int) -> str:
    """The outbox key of the job's events (see jobs.signals)."""
    return f"job:{job_id}"


def message_data(message: ChatMessage) -> dict[str, Any]:
    """A message as the socket and the REST API show it."""
    return {
        "message_id": message.pk,
        "job_id": message.job_id,
        "sender_id": message.sender_id,
        "body": message.body,
        "client_id": str(message.client_id),
        "created_at": DateTimeField().to_representation(message.created_at),
    }


def message_event(message: ChatMessage) -> tuple[str, dict[str, Any], list[str]]:
    """`chat_message`, on the job's channel."""
    return PublicationType.CHAT_MESSAGE, message_data(message), [job_channel(message.job_id)]


def notification_event(
    message: ChatMessage, recipient_id: int
) -> tuple[str, dict[str, Any], list[str]]:
    """`chat_notification`, on the personal channel of a participant who is
    not on the job's channel."""
    data = {
        "job_id": message.job_id,
        "message_id": message.pk,
        "sender_id": message.sender_id,
        "preview": message.body[:PREVIEW_LENGTH],
    }
    return PublicationType.CHAT_NOTIFICATION, data, [personal_channel(recipient_id)]


def read_event(
    *, job_id: int, user_id: int, message_id: int
) -> tuple[str, dict[str, Any], list[str]]:
    """`chat_read`, on the job's channel."""
    data = {"user_id": user_id, "message_id": message_id}
    return PublicationType.CHAT_READ, data, [job_channel(job_id)]
