"""Presence: who is on a channel now, and user_online / user_offline."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from jobs import services
from paychain.asgi import application
from realtime.protocol import ErrorCode
from realtime.services import apublish

from .factories import make_job, make_superuser, make_worker

pytestmark = pytest.mark.django_db(transaction=True)


async def socket_for(user=None) -> WebsocketCommunicator:
    path = "/ws" if user is None else f"/ws?token={AccessToken.for_user(user)}"
    communicator = WebsocketCommunicator(application, path)
    assert (await communicator.connect())[0]
    await communicator.receive_json_from()
    return communicator


async def join(communicator, channel: str) -> dict:
    await communicator.send_json_to({"type": "subscribe", "channels": [channel]})
    reply = await communicator.receive_json_from()
    assert reply["type"] == "subscribed", reply
    return reply["data"]["positions"][channel]


async def presence(communicator, channel: str) -> dict:
    await communicator.send_json_to({"type": "presence", "channel": channel})
    return await communicator.receive_json_from()


@pytest.fixture(autouse=True)
def _no_relay(settings):
    """Job events of the fixtures stay in the outbox: these tests watch presence."""
    settings.REALTIME = {**settings.REALTIME, "RELAY_IN_PROCESS": False}


@pytest.fixture
def accepted_job(db):
    job = make_job()
    worker = make_worker()
    services.job_accept(job=job, worker=worker)
    return job, job.employer, worker


async def test_presence_lists_the_users_on_a_channel_with_their_socket_counts(accepted_job):
    job, employer, worker = accepted_job
    channel = f"job.{job.pk}"
    boss = await socket_for(employer)
    await join(boss, channel)
    tabs = [await socket_for(worker) for _ in range(2)]
    for tab in tabs:
        await join(tab, channel)
    assert (await boss.receive_json_from())["type"] == "user_online"
    reply = await presence(boss, channel)
    assert reply["type"] == "presence"
    assert reply["data"] == {
        "channel": channel,
        "users": sorted(
            [
                {"user_id": employer.pk, "user_type": "employer", "connections": 1},
                {"user_id": worker.pk, "user_type": "worker", "connections": 2},
            ],
            key=lambda u: u["user_id"],
        ),
    }
    for communicator in (boss, *tabs):
        await communicator.disconnect()


async def test_user_online_and_offline_follow_the_first_and_last_socket(accepted_job):
    job, employer, worker = accepted_job
    channel = f"job.{job.pk}"
    boss = await socket_for(employer)
    await join(boss, channel)
    first = await socket_for(worker)
    await join(first, channel)
    online = await boss.receive_json_from()
    assert online["type"] == "user_online"
    assert online["data"]["user_id"] == worker.pk
    assert online["channel"] == channel
    assert "offset" not in online
    second = await socket_for(worker)
    await join(second, channel)
    await first.disconnect()
    assert await boss.receive_nothing()
    await second.disconnect()
    offline = await boss.receive_json_from()
    assert offline["type"] == "user_offline"
    assert offline["data"]["user_id"] == worker.pk
    await boss.disconnect()


async def test_presence_events_are_not_in_history(accepted_job):
    job, employer, worker = accepted_job
    channel = f"job.{job.pk}"
    boss = await socket_for(employer)
    position = await join(boss, channel)
    helper = await socket_for(worker)
    await join(helper, channel)
    assert (await boss.receive_json_from())["type"] == "user_online"
    await apublish(type="note", data={}, channel=channel)
    assert (await boss.receive_json_from())["offset"] == 1
    await boss.disconnect()
    again = await socket_for(employer)
    await again.send_json_to(
        {"type": "subscribe", "channels": [channel], "since": {channel: position}}
    )
    assert (await again.receive_json_from())["data"]["positions"][channel]["recovered"] is True
    replayed = await again.receive_json_from()
    assert replayed["type"] == "note"
    assert await again.receive_nothing()
    for communicator in (again, helper):
        await communicator.disconnect()


async def test_presence_is_refused_where_subscribing_is(accepted_job):
    job, _, _ = accepted_job
    stranger = await sync_to_async(make_worker)()
    communicator = await socket_for(stranger)
    reply = await presence(communicator, f"job.{job.pk}")
    assert reply["data"]["code"] == ErrorCode.FORBIDDEN
    await communicator.disconnect()


async def test_channels_without_presence_say_so():
    communicator = await socket_for()
    reply = await presence(communicator, "jobs")
    assert reply["data"]["code"] == ErrorCode.PRESENCE_DISABLED
    reply = await presence(communicator, "not valid!")
    assert reply["data"]["code"] == ErrorCode.INVALID_CHANNEL
    await communicator.disconnect()


async def test_the_http_presence_api_needs_a_service_key_or_staff(accepted_job, settings, client):
    job, employer, worker = accepted_job
    settings.REALTIME = {**settings.REALTIME, "BROADCAST_API_KEYS": ["svc"]}
    channel = f"job.{job.pk}"
    communicator = await socket_for(worker)
    await join(communicator, channel)
    url = f"/api/presence/{channel}/"
    get = sync_to_async(client.get)
    assert (await get(url)).status_code == 401
    assert (await get(url, HTTP_AUTHORIZATION="Api-Key wrong")).status_code == 403
    ok = await get(url, HTTP_AUTHORIZATION="Api-Key svc")
    assert ok.status_code == 200
    assert ok.json()["users"] == [{"user_id": worker.pk, "user_type": "worker", "connections": 1}]
    staff = await sync_to_async(make_superuser)()
    token = AccessToken.for_user(staff)
    assert (await get(url, HTTP_AUTHORIZATION=f"Bearer {token}")).status_code == 200
    token = AccessToken.for_user(employer)
    assert (await get(url, HTTP_AUTHORIZATION=f"Bearer {token}")).status_code == 403
    await communicator.disconnect()
