"""The chat's REST shapes: input validated here, output as the socket shows
it (jobs.chat.events.message_data)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import BODY_MAX_LENGTH
from .services import HISTORY_MAX_PAGE_SIZE, HISTORY_PAGE_SIZE


class ChatMessageSerializer(serializers.Serializer):
    """A message: the `data` of the socket's `chat_message`."""

    message_id = serializers.IntegerField()
    job_id = serializers.IntegerField()
    sender_id = serializers.IntegerField()
    body = serializers.CharField()
    client_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()


class ChatSendSerializer(serializers.Serializer):
    """POST /api/jobs/<id>/messages/: the body (trimmed, 1 to 4,000
    characters) and the sender's UUID of the message."""

    body = serializers.CharField(max_length=BODY_MAX_LENGTH, trim_whitespace=True)
    client_id = serializers.UUIDField()


class ChatHistoryQuerySerializer(serializers.Serializer):
    """`?before=<message_id>` (older pages) or `?after=<message_id>` (newer),
    and `?limit=` (1 to 100, default 50)."""

    before = serializers.IntegerField(required=False, min_value=1)
    after = serializers.IntegerField(required=False, min_value=0)
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=HISTORY_MAX_PAGE_SIZE, default=HISTORY_PAGE_SIZE
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError("Give 'before' or 'after', not both.")
        return attrs


class ChatHistorySerializer(serializers.Serializer):
    """A page of history, newest first; `next` is the older page, `previous`
    the newer one."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ChatMessageSerializer(many=True)


class ChatReadSerializer(serializers.Serializer):
    message_id = serializers.IntegerField(min_value=1)


class ChatReadResultSerializer(serializers.Serializer):
    """`moved`: false when the mark was at or past the message already."""

    moved = serializers.BooleanField()
    last_read_id = serializers.IntegerField()


class ParticipantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    user_type = serializers.CharField()


class ConversationSerializer(serializers.Serializer):
    """One chat of the user: the job, the other participant (null while an
    open job has no worker), the last message (null when none) and how many
    of the other participant's messages the user has not read; how far the
    user and the other participant have read (message ids, 0 for nothing),
    for read ticks."""

    job_id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField()
    other_participant = ParticipantSerializer(allow_null=True)
    last_message = ChatMessageSerializer(allow_null=True)
    unread_count = serializers.IntegerField()
    last_read_id = serializers.IntegerField()
    other_last_read_id = serializers.IntegerField()
