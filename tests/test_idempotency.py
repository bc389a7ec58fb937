"""POST /broadcast with an Idempotency-Key: once per key and caller, for a day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient

from realtime.idempotency import body_hash
from realtime.models import IdempotencyRecord
from realtime.protocol import new_message_id
from realtime.services import publish

from .live import free_port
from .sockets import subscribed_socket

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "service-key-one"
OTHER_KEY = "service-key-two"
MESSAGE = {"type": "invoice_paid", "data": {"invoice": 7}, "channel": "jobs"}


@pytest.fixture(autouse=True)
def _debug_on(settings):
    settings.DEBUG = True


@pytest.fixture
def keys(settings):
    settings.REALTIME = {**settings.REALTIME, "BROADCAST_API_KEYS": [KEY, OTHER_KEY]}


def broadcast(body: dict, *, idempotency_key: str | None = None, api_key: str | None = None):
    headers = {}
    if idempotency_key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    if api_key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Api-Key {api_key}"
    return APIClient().post("/broadcast", body, format="json", **headers)


abroadcast = sync_to_async(broadcast)


async def test_the_same_key_and_body_answers_the_first_id_and_delivers_once():
    socket = await subscribed_socket("jobs")
    first = await abroadcast(MESSAGE, idempotency_key="order-7-paid")
    again = await abroadcast(MESSAGE, idempotency_key="order-7-paid")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["channel"] == "jobs"
    delivered = await socket.receive_json_from()
    assert delivered["id"] == first.json()["id"]
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_without_a_key_every_request_is_a_new_message():
    socket = await subscribed_socket("jobs")
    first = await abroadcast(MESSAGE)
    second = await abroadcast(MESSAGE)
    assert first.json()["id"] != second.json()["id"]
    assert (await socket.receive_json_from())["id"] == first.json()["id"]
    assert (await socket.receive_json_from())["id"] == second.json()["id"]
    await socket.disconnect()


async def test_the_same_key_with_another_body_is_422_and_delivers_nothing():
    socket = await subscribed_socket("jobs")
    first = await abroadcast(MESSAGE, idempotency_key="order-7-paid")
    other = await abroadcast({**MESSAGE, "data": {"invoice": 8}}, idempotency_key="order-7-paid")
    assert first.status_code == 202
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert (await socket.receive_json_from())["id"] == first.json()["id"]
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_the_same_body_spelled_differently_is_the_same_message():
    first = await abroadcast(
        {"channel": "jobs", "data": {"b": 2, "a": 1}, "type": "x"}, idempotency_key="k"
    )
    again = await abroadcast(
        {"type": "x", "data": {"a": 1, "b": 2}, "channel": "jobs"}, idempotency_key="k"
    )
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]


async def test_different_callers_may_use_the_same_key(keys):
    socket = await subscribed_socket("jobs")
    mine = await abroadcast(MESSAGE, idempotency_key="order-7-paid", api_key=KEY)
    theirs = await abroadcast(MESSAGE, idempotency_key="order-7-paid", api_key=OTHER_KEY)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]
    ids = {(await socket.receive_json_from())["id"] for _ in range(2)}
    assert ids == {mine.json()["id"], theirs.json()["id"]}
    await socket.disconnect()


async def test_a_failed_publish_does_not_poison_the_key(settings):
    working_layer = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0"}]},
        }
    }
    failed = await abroadcast(MESSAGE, idempotency_key="order-7-paid")
    settings.CHANNEL_LAYERS = working_layer
    socket = await subscribed_socket("jobs")
    retried = await abroadcast(MESSAGE, idempotency_key="order-7-paid")
    assert failed.status_code == 503
    assert retried.status_code == 202
    assert (await socket.receive_json_from())["id"] == retried.json()["id"]
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_a_request_racing_the_first_one_answers_its_id_and_the_message_goes_out_once():
    socket = await subscribed_socket("jobs")
    # The first request has recorded the key and not published yet.
    recorded = await IdempotencyRecord.objects.acreate(
        caller="anonymous",
        key="order-7-paid",
        body_hash=body_hash(type=MESSAGE["type"], data=MESSAGE["data"], channels=["jobs"]),
        message_id=new_message_id(),
    )
    racing = await abroadcast(MESSAGE, idempotency_key="order-7-paid")
    # Now the first one publishes.
    await sync_to_async(publish)(
        type=MESSAGE["type"], data=MESSAGE["data"], channel="jobs", message_id=recorded.message_id
    )
    assert racing.status_code == 202
    assert racing.json()["id"] == recorded.message_id
    assert (await socket.receive_json_from())["id"] == recorded.message_id
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_a_key_older_than_a_day_may_be_used_again():
    first = await abroadcast(MESSAGE, idempotency_key="order-7-paid")
    await IdempotencyRecord.objects.aupdate(created_at=timezone.now() - timedelta(hours=25))
    later = await abroadcast({**MESSAGE, "data": {"invoice": 8}}, idempotency_key="order-7-paid")
    assert later.status_code == 202
    assert later.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "caf\u00e9"])
async def test_a_malformed_key_is_400_invalid_idempotency_key(key):
    response = await abroadcast(MESSAGE, idempotency_key=key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
