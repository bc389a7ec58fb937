"""The admin. A job's state (status, worker, payment release) is read-only
here: it changes only through the actions, which call jobs.services with the
API's rules, so the same events are published."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from . import services
from .models import ChatMessage, Job, JobStatus, User

logger = logging.getLogger(__name__)

# Set only by jobs.services. employer and pay_amount_usd are fixed once a job
# is posted (its escrow); they are editable only on the add form.
STATE_FIELDS = ["status", "worker", "payment_released"]
FIXED_AFTER_POSTING = ["employer", "pay_amount_usd"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "user_type", "is_staff", "is_active"]
    list_filter = ["user_type", "is_staff", "is_active"]
    fieldsets = [
        *(DjangoUserAdmin.fieldsets or ()),
        ("PayChain", {"fields": ["user_type"]}),
    ]
    add_fieldsets = [
        *DjangoUserAdmin.add_fieldsets,
        ("PayChain", {"fields": ["user_type"]}),
    ]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "status",
        "job_type",
        "pay_amount_usd",
        "employer",
        "worker",
        "expires_at",
        "payment_released",
    ]
    list_filter = ["status", "job_type"]
    search_fields = ["title"]
    list_select_related = ["employer", "worker"]
    raw_id_fields = ["employer"]
    actions = ["complete_jobs", "refund_jobs"]

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        fixed = FIXED_AFTER_POSTING if obj is not None else []
        return [*STATE_FIELDS, *fixed, "created_at", "updated_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # An accepted, completed or refunded job is the record of an escrow:
        # only an open job (no worker, no money moved) may be deleted. Django's
        # "delete selected" asks this for each job and refuses the lot (403)
        # when one of them may not go.
        if obj is not None and obj.status != JobStatus.OPEN:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Job, form: ModelForm, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Write only what the form changed: a stale form never overwrites a
        # state the services set meanwhile.
        obj.save(update_fields=[*form.changed_data, "updated_at"])

    @admin.action(
        description="Complete the selected jobs (release the payment)", permissions=["change"]
    )
    def complete_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._change_state(request, queryset, services.job_complete, "completed")

    @admin.action(description="Refund the selected expired jobs", permissions=["change"])
    def refund_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._change_state(request, queryset, services.job_refund, "refunded")

    def _change_state(
        self,
        request: HttpRequest,
        queryset: QuerySet[Job],
        service: Callable[..., Job],
        done: str,
    ) -> None:
        changed = 0
        for job in queryset.order_by("pk"):
            try:
                service(job=job)
            except (services.JobTransitionError, services.JobPermissionError) as exc:
                self.message_user(request, f"Job #{job.pk}: {exc}", messages.ERROR)
                continue
            changed += 1
            logger.info("Job %s %s by staff user %s in the admin", job.pk, done, request.user.pk)
        if changed:
            self.message_user(request, f"{changed} job(s) {done}.", messages.SUCCESS)


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    """Staff read the chats here; nobody writes them here (messages are sent
    by the participants, through jobs.chat.services)."""

    list_display = ["id", "job", "sender", "short_body", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["body", "job__title", "sender__username"]
    list_select_related = ["job", "sender"]
    readonly_fields = ["job", "sender", "body", "client_id", "created_at"]

    @admin.display(description="Body")
    def short_body(self, obj: ChatMessage) -> str:
        return obj.body if len(obj.body) <= 80 else obj.body[:79] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ChatMessage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ChatMessage | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: ChatMessage | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)
