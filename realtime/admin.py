from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import OutboxMessage, OutboxStatus
from .outbox import wake_relay


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """The outbox: what waits to be published, and what failed. Rows are
    written by the job signals and published by the relay; here they are
    only read, retried or deleted."""

    list_display = [
        "id",
        "type",
        "key",
        "status",
        "attempts",
        "short_error",
        "created_at",
        "published_at",
        "lease_owner",
        "lease_until",
    ]
    list_filter = ["status", "type"]
    search_fields = ["key", "=message_id"]
    actions = ["retry_failed"]
    readonly_fields = [
        "message_id",
        "type",
        "data",
        "channels",
        "key",
        "status",
        "attempts",
        "last_error",
        "lease_owner",
        "lease_until",
        "created_at",
        "published_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="last error")
    def short_error(self, message: OutboxMessage) -> str:
        return message.last_error[:80]

    @admin.action(description="Retry selected failed messages", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = queryset.filter(status=OutboxStatus.FAILED).update(
            status=OutboxStatus.PENDING,
            attempts=0,
            last_error="",
            lease_owner="",
            lease_until=None,
        )
        transaction.on_commit(wake_relay)
        skipped = queryset.count() - count
        self.message_user(
            request,
            f"{count} failed message(s) sent back to pending"
            + (f"; {skipped} not failed, left as they were." if skipped else "."),
            messages.SUCCESS,
        )
