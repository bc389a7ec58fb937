"""The chat's services, in process: messages stored with their events in one
transaction, once per client_id, within the rate limit; read marks that only
move forward; the conversation list; payment notifications in the outbox."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from jobs import services as job_services
from jobs.chat import ratelimit, services
from jobs.chat.models import ChatMessage
from jobs.models import JobStatus
from realtime.models import OutboxMessage
from realtime.presence import make_presence

from .factories import make_employer, make_job, make_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_counts():
    cache.clear()


def accepted_job():
    employer, worker = make_employer(), make_worker()
    return make_job(employer=employer, worker=worker, status=JobStatus.ACCEPTED), employer, worker


def send(job, sender, body="hello", client_id=None):
    return services.chat_send(
        job_id=job.pk, sender=sender, body=body, client_id=client_id or str(uuid.uuid4())
    )


def chat_events(type: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(type=type).order_by("id"))


def test_a_message_is_stored_trimmed_with_its_chat_message_event():
    job, employer, _ = accepted_job()
    sent = send(job, employer, body="  Hi there \n")
    assert sent.created
    assert sent.message.body == "Hi there"
    [event] = chat_events("chat_message")
    assert event.channels == [f"job.{job.pk}"]
    assert event.key == f"job:{job.pk}"
    assert event.data == {
        "message_id": sent.message.pk,
        "job_id": job.pk,
        "sender_id": employer.pk,
        "body": "Hi there",
        "client_id": str(sent.message.client_id),
        "created_at": event.data["created_at"],
    }


def test_a_rolled_back_transaction_leaves_neither_the_message_nor_its_event():
    job, employer, _ = accepted_job()

    def send_then_fail():
        with transaction.atomic():
            send(job, employer)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        send_then_fail()
    assert not ChatMessage.objects.exists()
    assert not chat_events("chat_message")


def test_the_same_client_id_stores_one_message_whatever_the_body():
    job, employer, _ = accepted_job()
    client_id = str(uuid.uuid4())
    first = send(job, employer, body="one", client_id=client_id)
    again = send(job, employer, body="two", client_id=client_id)
    assert not again.created
    assert again.message.pk == first.message.pk
    assert ChatMessage.objects.count() == 1
    assert len(chat_events("chat_message")) == 1


@pytest.mark.parametrize(
    ("body", "client_id", "field"),
    [
        ("", "uuid", "body"),
        ("   ", "uuid", "body"),
        ("x" * 4001, "uuid", "body"),
        (5, "uuid", "body"),
        ("hi", None, "client_id"),
        ("hi", "not-a-uuid", "client_id"),
    ],
)
def test_bodies_and_client_ids_out_of_bounds_are_refused_by_field(body, client_id, field):
    job, employer, _ = accepted_job()
    with pytest.raises(services.ChatInvalidError) as refused:
        services.chat_send(
            job_id=job.pk,
            sender=employer,
            body=body,
            client_id=str(uuid.uuid4()) if client_id == "uuid" else client_id,
        )
    assert refused.value.field == field


def test_a_body_of_4000_characters_after_trimming_is_stored():
    job, employer, _ = accepted_job()
    assert send(job, employer, body=" " + "x" * 4000 + " ").created


def test_only_the_employer_and_the_accepted_worker_take_part():
    job, employer, worker = accepted_job()
    assert send(job, worker).created
    open_job = make_job(employer=employer)
    for outsider, target in [(make_worker(), job), (worker, open_job)]:
        with pytest.raises(services.ChatForbiddenError):
            send(target, outsider)
    with pytest.raises(services.ChatForbiddenError):
        services.chat_send(job_id=999_999, sender=employer, body="x", client_id=str(uuid.uuid4()))


def test_the_eleventh_message_in_ten_seconds_is_refused_and_retries_do_not_count():
    job, employer, _ = accepted_job()
    client_id = str(uuid.uuid4())
    send(job, employer, client_id=client_id)
    for _ in range(9):
        send(job, employer)
    assert not send(job, employer, client_id=client_id).created  # a retry: not refused
    with pytest.raises(services.ChatRateLimitedError):
        send(job, employer)
    assert ChatMessage.objects.count() == ratelimit.RATE_LIMIT


def test_refused_messages_are_not_counted():
    job, employer, _ = accepted_job()
    for _ in range(5):
        with pytest.raises(services.ChatInvalidError):
            send(job, employer, body="")
    for _ in range(ratelimit.RATE_LIMIT):
        send(job, employer)


def test_a_participant_off_the_job_channel_gets_a_chat_notification_with_a_preview():
    job, employer, worker = accepted_job()
    sent = send(job, employer, body="é" * 150)
    [note] = chat_events("chat_notification")
    assert note.channels == [f"user.{worker.pk}"]
    assert note.data == {
        "job_id": job.pk,
        "message_id": sent.message.pk,
        "sender_id": employer.pk,
        "preview": "é" * 100,
    }


async def _join(channel: str, user_id: int) -> None:
    await make_presence().join(channel, user_id, "worker", "socket-1")


async def _leave(channel: str, user_id: int) -> None:
    await make_presence().leave(channel, user_id, "worker", "socket-1")


def test_a_participant_on_the_job_channel_gets_no_notification():
    job, employer, worker = accepted_job()
    async_to_sync(_join)(f"job.{job.pk}", worker.pk)
    try:
        send(job, employer)
    finally:
        async_to_sync(_leave)(f"job.{job.pk}", worker.pk)
    assert not chat_events("chat_notification")


def test_read_marks_only_move_forward_and_announce_each_move():
    job, employer, worker = accepted_job()
    first, second = send(job, employer).message, send(job, employer).message
    assert services.chat_mark_read(job_id=job.pk, user=worker, message_id=second.pk)
    assert not services.chat_mark_read(job_id=job.pk, user=worker, message_id=first.pk)
    assert not services.chat_mark_read(job_id=job.pk, user=worker, message_id=second.pk)
    assert services.last_read_id(job=job, user=worker) == second.pk
    [event] = chat_events("chat_read")
    assert event.data == {"user_id": worker.pk, "message_id": second.pk}
    assert event.channels == [f"job.{job.pk}"]


def test_a_read_mark_names_a_message_of_that_chat():
    job, employer, worker = accepted_job()
    other, other_employer, _ = accepted_job()
    elsewhere = send(other, other_employer).message
    with pytest.raises(services.ChatInvalidError) as refused:
        services.chat_mark_read(job_id=job.pk, user=worker, message_id=elsewhere.pk)
    assert refused.value.field == "message_id"


def test_conversations_count_the_other_participants_unread_messages():
    job, employer, worker = accepted_job()
    make_job(employer=employer)  # open, no messages: not a conversation
    quiet = make_job(employer=employer, worker=worker, status=JobStatus.ACCEPTED)
    messages = [send(job, employer).message for _ in range(3)]
    send(job, worker)
    services.chat_mark_read(job_id=job.pk, user=worker, message_id=messages[0].pk)
    [latest, older] = list(services.chat_conversations(user=worker))
    assert (latest.pk, latest.unread_count) == (job.pk, 2)
    assert (older.pk, older.unread_count, older.last_message_id) == (quiet.pk, 0, None)
    assert [c.unread_count for c in services.chat_conversations(user=employer)] == [1, 0]


def test_history_pages_go_newest_first_with_before_and_after():
    job, employer, _ = accepted_job()
    ids = [send(job, employer).message.pk for _ in range(5)]
    newest = services.chat_history(job=job, limit=2)
    assert [m.pk for m in newest.messages] == ids[:2:-1]
    assert (newest.has_older, newest.has_newer) == (True, False)
    older = services.chat_history(job=job, before=ids[3], limit=2)
    assert [m.pk for m in older.messages] == [ids[2], ids[1]]
    assert (older.has_older, older.has_newer) == (True, True)
    newer = services.chat_history(job=job, after=ids[0], limit=2)
    assert [m.pk for m in newer.messages] == [ids[2], ids[1]]
    assert (newer.has_older, newer.has_newer) == (True, True)


def test_completing_a_job_tells_both_parties_the_payment_is_released():
    job, employer, worker = accepted_job()
    job_services.job_complete(job=job, employer=employer)
    [event] = chat_events("payment_released")
    assert event.data == {
        "job_id": job.pk,
        "amount_usd": 5000.0,
        "worker_id": worker.pk,
        "employer_id": employer.pk,
    }
    assert sorted(event.channels) == sorted([f"user.{worker.pk}", f"user.{employer.pk}"])
    assert event.key == f"job:{job.pk}"
    assert not chat_events("payment_refunded")


def test_refunding_a_job_tells_the_employer():
    employer = make_employer()
    job = make_job(employer=employer)
    type(job).objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    job.refresh_from_db()
    job_services.job_refund(job=job, employer=employer)
    [event] = chat_events("payment_refunded")
    assert event.data == {"job_id": job.pk, "amount_usd": 5000.0}
    assert event.channels == [f"user.{employer.pk}"]


def test_a_failed_job_change_enqueues_no_payment_event():
    job, employer, _ = accepted_job()
    with pytest.raises(job_services.JobPermissionError):
        job_services.job_complete(job=job, employer=make_employer())
    assert not chat_events("payment_released")
