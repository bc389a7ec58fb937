"""Job changes reach subscribed sockets, after commit and only after commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.utils import timezone

from jobs import services
from realtime.models import OutboxMessage, OutboxStatus
from realtime.outbox import Relay

from .factories import make_employer, make_job, make_superuser, make_worker
from .live import free_port
from .sockets import subscribed_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def jobs_socket() -> WebsocketCommunicator:
    """A socket subscribed to `jobs`. The events of what the test made before
    are published first, as a running server's relay does at commit."""
    await Relay().drain()
    return await subscribed_socket("jobs")


async def test_creating_a_job_publishes_job_created_to_jobs():
    socket = await jobs_socket()
    employer = await sync_to_async(make_employer)()
    job = await sync_to_async(services.job_create)(
        employer=employer, title="Web Development", job_type="development", pay_amount_usd="5000"
    )
    event = await socket.receive_json_from()
    assert event["type"] == "job_created"
    assert event["channel"] == "jobs"
    assert event["data"] == {
        **event["data"],
        "job_id": job.pk,
        "title": "Web Development",
        "pay_amount_usd": 5000.0,
        "job_type": "development",
    }
    assert isinstance(event["data"]["pay_amount_usd"], float)
    await socket.disconnect()


async def test_accept_complete_publish_in_order_with_their_data():
    job = await sync_to_async(make_job)()
    worker = await sync_to_async(make_worker)()
    socket = await jobs_socket()

    def accept_then_complete() -> None:
        accepted = services.job_accept(job=job, worker=worker)
        services.job_complete(job=accepted, employer=accepted.employer)

    await sync_to_async(accept_then_complete)()
    accepted = await socket.receive_json_from()
    completed = await socket.receive_json_from()
    assert accepted["type"] == "job_accepted"
    assert accepted["data"]["job_id"] == job.pk
    assert accepted["data"]["worker_id"] == worker.pk
    assert completed["type"] == "job_completed"
    assert completed["data"]["payment_released"] is True
    await socket.disconnect()


async def test_refunding_an_expired_job_publishes_job_refunded():
    job = await sync_to_async(make_job)(expires_at=timezone.now() - timedelta(seconds=1))
    socket = await jobs_socket()
    await sync_to_async(services.refund_expired_jobs)()
    event = await socket.receive_json_from()
    assert event["type"] == "job_refunded"
    assert event["data"]["job_id"] == job.pk
    assert event["data"]["reason"] == "expired"
    await socket.disconnect()


async def test_the_event_waits_for_the_commit():
    employer = await sync_to_async(make_employer)()
    socket = await jobs_socket()
    seen_before_commit = []

    def create_in_transaction() -> None:
        with transaction.atomic():
            make_job(employer=employer)
            seen_before_commit.append(not socket.output_queue.empty())

    await sync_to_async(create_in_transaction)()
    assert seen_before_commit == [False]
    assert (await socket.receive_json_from())["type"] == "job_created"
    await socket.disconnect()


async def test_saving_without_a_status_change_publishes_nothing():
    job = await sync_to_async(make_job)()
    socket = await jobs_socket()
    job.title = "Renamed"
    await sync_to_async(job.save)()
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_a_change_made_in_the_admin_publishes_the_same_event():
    admin = await sync_to_async(make_superuser)()
    job = await sync_to_async(make_job)(expires_at=timezone.now() - timedelta(days=1))
    socket = await jobs_socket()

    def refund_in_admin() -> int:
        client = Client()
        client.force_login(admin)
        form = {"action": "refund_jobs", "_selected_action": [str(job.pk)]}
        return client.post("/admin/jobs/job/", form).status_code

    assert await sync_to_async(refund_in_admin)() == 302
    event = await socket.receive_json_from()
    assert event["type"] == "job_refunded"
    assert event["data"]["job_id"] == job.pk
    await socket.disconnect()


def test_a_change_while_the_channel_layer_is_down_succeeds_and_its_event_waits(settings, client):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0"}]},
        }
    }
    employer = make_employer()
    client.force_login(employer)
    response = client.post(
        "/api/jobs/",
        {"title": "Web Development", "job_type": "development", "pay_amount_usd": "5000"},
        content_type="application/json",
    )
    assert response.status_code == 201
    waiting = OutboxMessage.objects.get()
    assert waiting.status == OutboxStatus.PENDING
    assert waiting.type == "job_created"
    assert waiting.data["title"] == "Web Development"
