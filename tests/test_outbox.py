"""Job events go through the outbox: written with the change, published by a
relay after commit, in order per job, never twice, kept while Redis is away."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from jobs import services
from jobs.events import job_event, job_event_channels
from realtime import outbox, redis_clients
from realtime.models import IdempotencyRecord, OutboxMessage, OutboxStatus
from realtime.outbox import Relay, prune
from realtime.services import Publication

from .factories import make_employer, make_job, make_superuser, make_worker
from .live import free_port
from .sockets import subscribed_socket


def outbox_message(**fields) -> OutboxMessage:
    fields.setdefault("type", "job_created")
    fields.setdefault("data", {"job_id": 1})
    fields.setdefault("channels", ["jobs"])
    fields.setdefault("key", "job:1")
    return OutboxMessage.objects.create(**fields)


def relay_once() -> str:
    out = StringIO()
    call_command("relay_outbox", "--once", stdout=out)
    return out.getvalue()


@pytest.fixture
def no_relay_in_process(settings):
    settings.REALTIME = {**settings.REALTIME, "RELAY_IN_PROCESS": False}


DOWN_LAYER = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0"}]},
    }
}


# --- Written with the change -----------------------------------------------------------


@pytest.mark.django_db
def test_a_job_change_writes_its_event_to_the_outbox_in_the_same_transaction():
    with transaction.atomic():
        job = make_job()
        written = list(OutboxMessage.objects.filter(key=f"job:{job.pk}"))
    assert len(written) == 1
    event_type, data = job_event(job, created=True, previous_status=None)
    assert written[0].type == event_type == "job_created"
    assert written[0].data == data
    assert written[0].channels == job_event_channels(event_type, job) == ["jobs"]
    assert written[0].status == OutboxStatus.PENDING


@pytest.mark.django_db
def test_each_status_change_of_a_job_adds_its_event_under_the_jobs_key():
    job = make_job()
    worker = make_worker()
    accepted = services.job_accept(job=job, worker=worker)
    services.job_complete(job=accepted, employer=accepted.employer)
    written = OutboxMessage.objects.filter(key=f"job:{job.pk}").order_by("id")
    assert [m.type for m in written] == [
        "job_created",
        "job_accepted",
        "job_completed",
        "payment_released",
    ]
    assert written[2].channels == ["jobs", f"user.{job.employer_id}", f"user.{worker.pk}"]


@pytest.mark.django_db(transaction=True)
async def test_a_rolled_back_change_leaves_no_event_and_publishes_nothing():
    employer = await sync_to_async(make_employer)()
    socket = await subscribed_socket("jobs")

    def create_then_fail() -> None:
        with transaction.atomic():
            make_job(employer=employer)
            raise RuntimeError("payment provider said no")

    with pytest.raises(RuntimeError):
        await sync_to_async(create_then_fail)()
    assert await sync_to_async(OutboxMessage.objects.count)() == 0
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


# --- The relay in the server process -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_server_relay_publishes_a_committed_event_with_its_message_id():
    socket = await subscribed_socket("jobs")
    job = await sync_to_async(make_job)()
    event = await socket.receive_json_from(timeout=1)
    message = await OutboxMessage.objects.aget(key=f"job:{job.pk}")
    assert event["type"] == "job_created"
    assert event["id"] == str(message.message_id)
    await socket.disconnect()
    await asyncio.sleep(0.1)
    message = await OutboxMessage.objects.aget(pk=message.pk)
    assert message.status == OutboxStatus.PUBLISHED
    assert message.published_at is not None


@pytest.mark.django_db(transaction=True)
async def test_the_server_relay_polls_for_rows_committed_elsewhere():
    socket = await subscribed_socket("jobs")
    # Written without waking this process' relay, as another process would.
    await sync_to_async(outbox_message)(type="job_created", data={"job_id": 77}, key="job:77")
    event = await socket.receive_json_from(timeout=3)
    assert event["data"] == {"job_id": 77}
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_no_relay_runs_in_the_server_when_it_is_turned_off(no_relay_in_process):
    socket = await subscribed_socket("jobs")
    await sync_to_async(make_job)()
    assert await socket.receive_nothing(timeout=0.5)
    assert await OutboxMessage.objects.filter(status=OutboxStatus.PENDING).acount() == 1
    await socket.disconnect()


# --- relay_outbox and the relay's rules ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_relay_outbox_once_publishes_pending_events_in_order_per_job_and_marks_them(
    no_relay_in_process,
):
    socket = await subscribed_socket("jobs")

    def make_history() -> tuple[int, int]:
        first, second = make_job(), make_job()
        accepted = services.job_accept(job=first, worker=make_worker())
        services.job_complete(job=accepted, employer=accepted.employer)
        services.job_accept(job=second, worker=make_worker())
        return first.pk, second.pk

    first, second = await sync_to_async(make_history)()
    assert await socket.receive_nothing(timeout=0.2)
    output = await sync_to_async(relay_once)()
    # 5 job events, and the payment notification (to personal channels only).
    assert "Published 6 outbox message(s)" in output
    events = [await socket.receive_json_from() for _ in range(5)]
    assert await socket.receive_nothing(timeout=0.2)
    by_job: dict[int, list[str]] = {}
    for event in events:
        by_job.setdefault(event["data"]["job_id"], []).append(event["type"])
    assert by_job == {
        first: ["job_created", "job_accepted", "job_completed"],
        second: ["job_created", "job_accepted"],
    }
    messages = [m async for m in OutboxMessage.objects.order_by("id")]
    assert {m.status for m in messages} == {OutboxStatus.PUBLISHED}
    assert [e["id"] for e in events if e["data"]["job_id"] == first] == [
        str(m.message_id) for m in messages if m.key == f"job:{first}" and "jobs" in m.channels
    ]
    await socket.disconnect()


@pytest.mark.django_db
def test_a_failing_row_holds_back_the_later_rows_of_its_key_only(settings):
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_MAX_ATTEMPTS": 5}
    broken = outbox_message(key="job:1", channels=["not a channel!"])
    later = outbox_message(key="job:1")
    other = outbox_message(key="job:2")
    relay_once()
    broken.refresh_from_db()
    later.refresh_from_db()
    other.refresh_from_db()
    assert broken.status == OutboxStatus.PENDING
    assert broken.attempts == 1
    assert later.status == OutboxStatus.PENDING
    assert later.attempts == 0
    assert other.status == OutboxStatus.PUBLISHED


@pytest.mark.django_db
@pytest.mark.parametrize("cause", ["invalid channel", "publishing raises"])
def test_a_row_that_keeps_failing_is_marked_failed_with_its_error_and_frees_its_key(
    settings, monkeypatch, cause
):
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_MAX_ATTEMPTS": 3, "OUTBOX_RETRY_MAX": 0}
    if cause == "invalid channel":
        broken = outbox_message(key="job:1", channels=["not a channel!"])
        expected_error = "Invalid channel name 'not a channel!'"
    else:
        broken = outbox_message(key="job:1", type="unserializable")
        expected_error = "ValueError: cannot encode this"
        real_apublish = outbox.apublish

        async def fussy_apublish(**kwargs) -> Publication:
            if kwargs["type"] == "unserializable":
                raise ValueError("cannot encode this")
            return await real_apublish(**kwargs)

        monkeypatch.setattr(outbox, "apublish", fussy_apublish)
    later = outbox_message(key="job:1")
    output = relay_once()
    broken.refresh_from_db()
    later.refresh_from_db()
    assert broken.status == OutboxStatus.FAILED
    assert broken.attempts == 3
    assert expected_error in broken.last_error
    assert "3 failed attempt(s)" in output
    assert later.status == OutboxStatus.PUBLISHED


@pytest.mark.django_db(transaction=True)
async def test_a_redis_error_on_one_channel_fails_its_row_after_the_attempts_and_no_other(
    settings, redis_layer
):
    prefix, redis = redis_layer
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_MAX_ATTEMPTS": 3, "OUTBOX_RETRY_MAX": 0}
    # The injected fault: the broker's offset record of one channel holds a
    # string, so Redis answers WRONGTYPE to every publication there.
    redis.set(f"{prefix}:stream:{{poisoned}}:meta", "x")
    create = sync_to_async(outbox_message)
    broken = await create(key="job:1", channels=["poisoned"])
    later = await create(key="job:1", channels=["jobs"])
    others = [await create(key=f"job:{n}", channels=["jobs"]) for n in (2, 3)]
    try:
        result = await Relay().drain()
    finally:
        await redis_clients.close_clients()
    assert not result.layer_down
    assert result.failed == 3
    broken = await OutboxMessage.objects.aget(pk=broken.pk)
    assert broken.status == OutboxStatus.FAILED
    assert broken.attempts == 3
    assert "WRONGTYPE" in broken.last_error
    for row in [later, *others]:
        row = await OutboxMessage.objects.aget(pk=row.pk)
        assert row.status == OutboxStatus.PUBLISHED


@pytest.mark.django_db(transaction=True)
def test_relays_running_at_once_never_publish_a_row_twice(monkeypatch, settings):
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_BATCH_SIZE": 5}
    rows = [outbox_message(key=f"job:{n % 12}", data={"n": n}) for n in range(120)]
    key_of = {str(m.message_id): m.key for m in rows}
    published: list[str] = []  # message ids, in publishing order
    lock = threading.Lock()

    async def recording_apublish(*, message_id: str, **kwargs) -> Publication:
        with lock:
            published.append(message_id)
        await asyncio.sleep(0)
        return Publication(id=message_id, type=kwargs["type"], channels=("jobs",))

    monkeypatch.setattr(outbox, "apublish", recording_apublish)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def run_relay(name: str) -> None:
        relay = Relay(name=name)
        start.wait()
        try:
            while len(set(published)) < len(rows):
                async_to_sync(relay.drain)()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run_relay, args=(f"relay-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(published) == sorted(key_of)  # each row exactly once
    for key in set(key_of.values()):
        in_order = [str(m.message_id) for m in rows if m.key == key]
        assert [i for i in published if key_of[i] == key] == in_order
    assert not OutboxMessage.objects.exclude(status=OutboxStatus.PUBLISHED).exists()


@pytest.mark.django_db
def test_a_down_channel_layer_keeps_rows_pending_without_counting_attempts(settings):
    working_layer = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = DOWN_LAYER
    job = make_job()
    with pytest.raises(CommandError, match="channel layer is unavailable"):
        relay_once()
    waiting = OutboxMessage.objects.get(key=f"job:{job.pk}")
    assert waiting.status == OutboxStatus.PENDING
    assert waiting.attempts == 0
    assert waiting.lease_until is None  # free for any relay at once
    assert "LayerUnavailableError" in waiting.last_error
    settings.CHANNEL_LAYERS = working_layer  # the channel layer is back
    assert "Published 1 outbox message(s)" in relay_once()
    waiting.refresh_from_db()
    assert waiting.status == OutboxStatus.PUBLISHED


@pytest.mark.django_db
def test_rows_claimed_by_a_relay_that_died_go_out_once_its_lease_ends():
    stuck = outbox_message(lease_owner="died:1", lease_until=timezone.now() + timedelta(minutes=1))
    relay_once()
    stuck.refresh_from_db()
    assert stuck.status == OutboxStatus.PENDING
    OutboxMessage.objects.filter(pk=stuck.pk).update(lease_until=timezone.now())
    relay_once()
    stuck.refresh_from_db()
    assert stuck.status == OutboxStatus.PUBLISHED


# --- Pruning ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pruning_deletes_published_rows_after_the_retention_and_day_old_idempotency_keys(
    settings,
):
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_RETENTION": 3600}
    now = timezone.now()
    old = outbox_message(status=OutboxStatus.PUBLISHED, published_at=now - timedelta(hours=2))
    recent = outbox_message(status=OutboxStatus.PUBLISHED, published_at=now - timedelta(minutes=10))
    pending = outbox_message()
    failed = outbox_message(status=OutboxStatus.FAILED)
    OutboxMessage.objects.filter(pk__in=[pending.pk, failed.pk]).update(
        created_at=now - timedelta(days=3)
    )
    stale_key = IdempotencyRecord.objects.create(
        caller="anonymous", key="a", body_hash="x", message_id="m1"
    )
    fresh_key = IdempotencyRecord.objects.create(
        caller="anonymous", key="b", body_hash="x", message_id="m2"
    )
    IdempotencyRecord.objects.filter(pk=stale_key.pk).update(created_at=now - timedelta(hours=25))
    assert prune() == (1, 1)
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {
        recent.pk,
        pending.pk,
        failed.pk,
    }
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh_key.pk]


# --- Admin --------------------------------------------------------------------------------


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(make_superuser())
    return client


@pytest.mark.django_db
def test_the_admin_lists_pending_and_failed_rows_by_status_and_type(admin_client):
    outbox_message(type="job_accepted", key="job:41")
    outbox_message(type="job_created", key="job:42", status=OutboxStatus.FAILED)
    outbox_message(type="job_created", key="job:43", status=OutboxStatus.PUBLISHED)
    url = "/admin/realtime/outboxmessage/"
    assert admin_client.get(url).status_code == 200
    failed = admin_client.get(url, {"status__exact": "failed"}).content.decode()
    assert "job:42" in failed
    assert "job:41" not in failed
    pending = admin_client.get(url, {"status__exact": "pending"}).content.decode()
    assert "job:41" in pending
    assert "job:43" not in pending
    accepted = admin_client.get(url, {"type__exact": "job_accepted"}).content.decode()
    assert "job:41" in accepted
    assert "job:42" not in accepted


@pytest.mark.django_db
def test_the_admin_retry_action_sends_failed_rows_back_to_pending(admin_client):
    failed = outbox_message(status=OutboxStatus.FAILED, attempts=5, last_error="boom")
    published = outbox_message(status=OutboxStatus.PUBLISHED, published_at=timezone.now())
    response = admin_client.post(
        "/admin/realtime/outboxmessage/",
        {"action": "retry_failed", "_selected_action": [failed.pk, published.pk]},
    )
    assert response.status_code == 302
    failed.refresh_from_db()
    published.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == (OutboxStatus.PENDING, 0, "")
    assert published.status == OutboxStatus.PUBLISHED
