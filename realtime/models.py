"""
The realtime server's own tables: the outbox of durable events, and the
idempotency keys of POST /broadcast.
"""

from __future__ import annotations

import uuid

from django.db import models


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"


class OutboxMessage(models.Model):
    """One event waiting to be published, written in the same transaction as
    the change it announces (see realtime.outbox).

    A relay claims a pending row by setting `lease_owner` and `lease_until`
    in one conditional UPDATE; after a failed attempt `lease_until` is the
    earliest time of the next one. Rows of one `key` are published in id order.
    """

    message_id = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="The publication id, the same on every attempt.",
    )
    type = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    channels = models.JSONField(default=list, blank=True)
    key = models.CharField(
        max_length=100, help_text="Ordering key (e.g. job:12): its rows go out in order."
    )
    status = models.CharField(
        max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text="Failed attempts (the channel layer being down does not count)."
    )
    last_error = models.TextField(blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="Claimed, or waiting after a failed attempt, until then."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "outbox message"
        ordering = ["id"]
        indexes = [
            # The relay: pending rows in id order, and the head of each key.
            models.Index(
                fields=["id"],
                condition=models.Q(status="pending"),
                name="outbox_pending_idx",
            ),
            models.Index(
                fields=["key", "id"],
                condition=models.Q(status="pending"),
                name="outbox_pending_key_idx",
            ),
            # Pruning published rows.
            models.Index(fields=["status", "published_at"], name="outbox_status_published_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type} ({self.key}, {self.status})"


class IdempotencyRecord(models.Model):
    """An `Idempotency-Key` a caller sent to POST /broadcast, the hash of the
    body it came with, and the id of the message it published (see
    realtime.idempotency)."""

    caller = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    message_id = models.CharField(max_length=36)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotency_caller_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.caller}: {self.key}"
