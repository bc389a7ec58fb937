"""The chat's storage: messages, and how far each participant has read.

Imported by jobs.models, so that the app's models module holds them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

BODY_MAX_LENGTH = 4000


class ChatMessage(models.Model):
    """A message of a job's chat, from its employer or its worker.
    `client_id` is the sender's own id of the message: one message per
    (sender, client_id), so a client that retries never doubles it."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="chat_messages")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="chat_messages_sent"
    )
    body = models.TextField(max_length=BODY_MAX_LENGTH)
    client_id = models.UUIDField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "client_id"], name="chat_message_client_id_unique_per_sender"
            ),
        ]
        indexes = [models.Index(fields=["job", "-id"], name="chat_message_job_newest")]

    def __str__(self) -> str:
        return f"#{self.pk} on job {self.job_id} by {self.sender_id}"


class ChatReadMark(models.Model):
    """The last message of a job's chat that a participant has read. It only
    moves forward (see jobs.chat.services.chat_mark_read)."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="chat_read_marks")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_read_marks"
    )
    last_read_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "user"], name="chat_read_mark_unique"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} read job {self.job_id} up to #{self.last_read_id}"
