"""
The chat's rules and changes, in one place: who may read and write a job's
chat, sending (idempotent by the sender's `client_id`, rate-limited), read
marks that only move forward, the history and the conversation list.

Every change is stored with its events in one transaction (the outbox
publishes them after commit; see realtime.outbox). The socket handlers
(jobs.chat.frames) and the REST views (jobs.chat.api) both call these.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from realtime.outbox import outbox_enqueue
from realtime.presence import channel_users
from realtime.protocol import ErrorCode

from ..models import Job
from . import events, ratelimit
from .models import BODY_MAX_LENGTH, ChatMessage, ChatReadMark

logger = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 50
HISTORY_MAX_PAGE_SIZE = 100


class ChatError(Exception):
    """A chat request refused; `code` is the protocol's error code."""

    code = ErrorCode.INVALID_MESSAGE

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ChatInvalidError(ChatError):
    code = ErrorCode.INVALID_MESSAGE


class ChatForbiddenError(ChatError):
    """Not a participant of the job's chat, or no such job."""

    code = ErrorCode.FORBIDDEN


class ChatRateLimitedError(ChatError):
    code = ErrorCode.CHAT_RATE_LIMITED


# --- input ------------------------------------------------------------------------------


def clean_body(body: Any) -> str:
    """The body as stored: trimmed, 1 to BODY_MAX_LENGTH characters."""
    if not isinstance(body, str):
        raise ChatInvalidError("'body' must be a string.", field="body")
    body = body.strip()
    if not body:
        raise ChatInvalidError("A message needs a non-empty 'body'.", field="body")
    if len(body) > BODY_MAX_LENGTH:
        raise ChatInvalidError(
            f"A message's 'body' may be at most {BODY_MAX_LENGTH} characters.", field="body"
        )
    return body


def clean_client_id(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or not value:
        raise ChatInvalidError("A message needs a 'client_id' (a UUID).", field="client_id")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ChatInvalidError("'client_id' must be a UUID.", field="client_id") from None


# --- who -----------------------------------------------------------------------------------


def is_participant(job: Job, user: Any) -> bool:
    """The job's employer, or its worker (a job has one once accepted)."""
    return user is not None and user.pk is not None and user.pk in (job.employer_id, job.worker_id)


def participant_job(*, job_id: int, user: Any) -> Job:
    """The job whose chat `user` takes part in; ChatForbiddenError when the
    job does not exist or the user is not one of its participants."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not is_participant(job, user):
        raise ChatForbiddenError("You may not take part in this job's chat.")
    return job


def can_read(job: Job, user: Any) -> bool:
    """Participants read the chat; staff read every chat."""
    return is_participant(job, user) or bool(getattr(user, "is_staff", False))


def other_participant_ids(job: Job, user_id: int) -> list[int]:
    return [pk for pk in (job.employer_id, job.worker_id) if pk is not None and pk != user_id]


def absent_participants(job: Job, user_ids: list[int]) -> list[int]:
    """Those of `user_ids` with no socket on the job's channel now (presence,
    across processes with Redis). When presence cannot be read, all of them:
    a notification too many rather than one missed."""
    if not user_ids:
        return []
    try:
        present = {u["user_id"] for u in async_to_sync(channel_users)(events.job_channel(job.pk))}
    except Exception as exc:
        logger.warning("Reading the presence of job %s failed: %s", job.pk, exc)
        return list(user_ids)
    return [pk for pk in user_ids if pk not in present]


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    message: ChatMessage
    created: bool  # False: the sender's client_id was known; nothing was stored


def _enqueue(event: tuple[str, dict[str, Any], list[str]], job_id: int) -> None:
    type, data, channels = event
    outbox_enqueue(type=type, data=data, channels=channels, key=events.ordering_key(job_id))


def chat_send(*, job_id: int, sender: Any, body: Any, client_id: Any) -> Sent:
    """Store a message from `sender` in the job's chat, with its
    `chat_message` event and a `chat_notification` for each other participant
    who is not on the job's channel, in one transaction. A `client_id` the
    sender used before stores nothing and gives that message back (whatever
    the body). Raises ChatInvalidError, ChatForbiddenError,
    ChatRateLimitedError."""
    body = clean_body(body)
    client_id = clean_client_id(client_id)
    job = participant_job(job_id=job_id, user=sender)
    known = ChatMessage.objects.filter(sender_id=sender.pk, client_id=client_id).first()
    if known is not None:
        return Sent(known, created=False)
    absent = absent_participants(job, other_participant_ids(job, sender.pk))
    counted = ratelimit.reserve(sender.pk)
    if counted is None:
        raise ChatRateLimitedError(
            f"At most {ratelimit.RATE_LIMIT} messages in {ratelimit.RATE_WINDOW} seconds; "
            "wait a moment and send it again."
        )
    try:
        with transaction.atomic():
            message = ChatMessage.objects.create(
                job=job, sender_id=sender.pk, body=body, client_id=client_id
            )
            _enqueue(events.message_event(message), job.pk)
            for recipient_id in absent:
                _enqueue(events.notification_event(message, recipient_id), job.pk)
    except IntegrityError:
        ratelimit.release(counted)
        # The same client_id, stored by a concurrent request meanwhile.
        known = ChatMessage.objects.filter(sender_id=sender.pk, client_id=client_id).first()
        if known is None:
            raise
        return Sent(known, created=False)
    except BaseException:
        ratelimit.release(counted)
        raise
    return Sent(message, created=True)


# --- reading -------------------------------------------------------------------------------


def clean_message_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ChatInvalidError("'message_id' must be a message's id.", field="message_id")
    return value


def chat_mark_read(*, job_id: int, user: Any, message_id: Any) -> bool:
    """Mark the job's chat read by `user` up to `message_id` (a message of
    that chat), with its `chat_read` event. It only moves forward: an id at
    or before the current mark changes nothing and announces nothing.
    Returns whether the mark moved."""
    message_id = clean_message_id(message_id)
    job = participant_job(job_id=job_id, user=user)
    if not ChatMessage.objects.filter(job=job, pk=message_id).exists():
        raise ChatInvalidError("No such message in this job's chat.", field="message_id")
    with transaction.atomic():
        mark, _ = ChatReadMark.objects.get_or_create(job=job, user_id=user.pk)
        moved = ChatReadMark.objects.filter(pk=mark.pk, last_read_id__lt=message_id).update(
            last_read_id=message_id
        )
        if moved:
            _enqueue(
                events.read_event(job_id=job.pk, user_id=user.pk, message_id=message_id), job.pk
            )
    return bool(moved)


def last_read_id(*, job: Job, user: Any) -> int:
    mark = ChatReadMark.objects.filter(job=job, user_id=user.pk).first()
    return mark.last_read_id if mark is not None else 0


@dataclass(frozen=True)
class HistoryPage:
    messages: list[ChatMessage]  # newest first
    has_older: bool
    has_newer: bool


def chat_history(
    *, job: Job, before: int | None = None, after: int | None = None, limit: int = HISTORY_PAGE_SIZE
) -> HistoryPage:
    """Up to `limit` messages of the job's chat, newest first: the newest
    ones, those just before message `before`, or those just after `after`."""
    messages = ChatMessage.objects.filter(job=job)
    if after is not None:
        page = list(messages.filter(pk__gt=after).order_by("id")[: limit + 1])
        has_newer = len(page) > limit
        page = page[:limit][::-1]
        has_older = messages.filter(pk__lt=page[-1].pk if page else after + 1).exists()
        return HistoryPage(page, has_older=has_older, has_newer=has_newer)
    if before is not None:
        messages_before = messages.filter(pk__lt=before)
    else:
        messages_before = messages
    page = list(messages_before.order_by("-id")[: limit + 1])
    has_older = len(page) > limit
    page = page[:limit]
    has_newer = before is not None and messages.filter(pk__gte=before).exists()
    return HistoryPage(page, has_older=has_older, has_newer=has_newer)


def chat_conversations(*, user: Any) -> QuerySet[Job]:
    """The jobs whose chat `user` takes part in and that have a worker or
    messages, most recent message first, each annotated with
    `last_message_id`, `unread_count` (the other participant's messages
    after the user's read mark), `read_upto` (that mark) and
    `other_read_upto` (the other participant's; 0 for none)."""
    marks = ChatReadMark.objects.filter(job=OuterRef("pk"))
    read_upto = marks.filter(user_id=user.pk).values("last_read_id")[:1]
    other_read_upto = marks.exclude(user_id=user.pk).values("last_read_id")[:1]
    return (
        Job.objects.involving(user)
        .select_related("employer", "worker")
        .annotate(
            last_message_id=Max("chat_messages__id"),
            read_upto=Coalesce(Subquery(read_upto), Value(0)),
            other_read_upto=Coalesce(Subquery(other_read_upto), Value(0)),
        )
        .annotate(
            unread_count=Count(
                "chat_messages",
                filter=Q(chat_messages__id__gt=F("read_upto"))
                & ~Q(chat_messages__sender_id=user.pk),
            )
        )
        .filter(Q(worker__isnull=False) | Q(last_message_id__isnull=False))
        .order_by(F("last_message_id").desc(nulls_last=True), "-id")
    )
