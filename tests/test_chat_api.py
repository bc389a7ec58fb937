"""The chat's REST API and socket frames, in process: the shapes (checked
against the OpenAPI and AsyncAPI documents by tests/contracts.py), paging,
refusals, the extension point in realtime.handlers, and the admin."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from jobs.chat import services
from jobs.chat.frames import on_chat_send
from jobs.models import JobStatus
from realtime.handlers import register_client_message, unregister_client_message
from realtime.protocol import ClientType

from .factories import make_employer, make_job, make_superuser, make_worker
from .sockets import open_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_counts():
    cache.clear()


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def accepted_job():
    employer, worker = make_employer(), make_worker()
    return make_job(employer=employer, worker=worker, status=JobStatus.ACCEPTED), employer, worker


def test_posting_a_message_answers_201_then_200_for_the_same_client_id():
    job, employer, _ = accepted_job()
    body = {"body": " Hi ", "client_id": str(uuid.uuid4())}
    url = f"/api/jobs/{job.pk}/messages/"
    created = client_of(employer).post(url, body, format="json")
    assert created.status_code == 201
    assert created.json()["body"] == "Hi"
    again = client_of(employer).post(url, {**body, "body": "changed"}, format="json")
    assert again.status_code == 200
    assert again.json() == created.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "", "client_id": "uuid"}, "body"),
        ({"body": "x" * 4001, "client_id": "uuid"}, "body"),
        ({"body": "hi"}, "client_id"),
        ({"body": "hi", "client_id": "nope"}, "client_id"),
    ],
)
def test_a_bad_body_or_client_id_is_400_by_field(body, field):
    job, employer, _ = accepted_job()
    if body.get("client_id") == "uuid":
        body["client_id"] = str(uuid.uuid4())
    answer = client_of(employer).post(f"/api/jobs/{job.pk}/messages/", body, format="json")
    assert answer.status_code == 400
    assert field in answer.json()


def test_the_eleventh_message_over_http_is_429_chat_rate_limited():
    job, employer, _ = accepted_job()
    client = client_of(employer)
    url = f"/api/jobs/{job.pk}/messages/"
    for _ in range(10):
        body = {"body": "x", "client_id": str(uuid.uuid4())}
        assert client.post(url, body, format="json").status_code == 201
    refused = client.post(url, {"body": "x", "client_id": str(uuid.uuid4())}, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "chat_rate_limited"


def test_history_pages_link_older_and_newer_pages():
    job, employer, worker = accepted_job()
    ids = [
        services.chat_send(
            job_id=job.pk, sender=employer, body=f"m{n}", client_id=uuid.uuid4()
        ).message.pk
        for n in range(5)
    ]
    client = client_of(worker)
    page = client.get(f"/api/jobs/{job.pk}/messages/?limit=2").json()
    assert [m["message_id"] for m in page["results"]] == [ids[4], ids[3]]
    assert page["previous"] is None
    older = client.get(page["next"]).json()
    assert [m["message_id"] for m in older["results"]] == [ids[2], ids[1]]
    newer = client.get(older["previous"]).json()
    assert [m["message_id"] for m in newer["results"]] == [ids[4], ids[3]]
    last = client.get(older["next"]).json()
    assert [m["message_id"] for m in last["results"]] == [ids[0]]
    assert last["next"] is None
    assert client.get(f"/api/jobs/{job.pk}/messages/?limit=101").status_code == 400


def test_the_chat_list_shows_the_other_participant_the_last_message_and_unread_count():
    job, employer, worker = accepted_job()
    open_job = make_job(employer=employer)
    services.chat_send(job_id=job.pk, sender=employer, body="first", client_id=uuid.uuid4())
    last = services.chat_send(
        job_id=job.pk, sender=employer, body="second", client_id=uuid.uuid4()
    ).message
    [chat] = client_of(worker).get("/api/chats/").json()["results"]
    assert chat["job_id"] == job.pk
    assert chat["other_participant"] == {
        "id": employer.pk,
        "username": employer.username,
        "user_type": "employer",
    }
    assert chat["last_message"]["message_id"] == last.pk
    assert chat["unread_count"] == 2
    read = client_of(worker).post(
        f"/api/jobs/{job.pk}/messages/read/", {"message_id": last.pk}, format="json"
    )
    assert read.json() == {"moved": True, "last_read_id": last.pk}
    assert client_of(worker).get("/api/chats/").json()["results"][0]["unread_count"] == 0
    [seen_by_employer] = client_of(employer).get("/api/chats/").json()["results"]
    assert (seen_by_employer["last_read_id"], seen_by_employer["other_last_read_id"]) == (
        0,
        last.pk,
    )
    assert open_job.pk != seen_by_employer["job_id"]  # no worker and no messages: no chat


def test_staff_read_every_chat_in_the_admin_and_change_nothing(client):
    job, employer, _ = accepted_job()
    message = services.chat_send(
        job_id=job.pk, sender=employer, body="Visible to staff", client_id=uuid.uuid4()
    ).message
    client.force_login(make_superuser())
    assert "Visible to staff" in client.get("/admin/jobs/chatmessage/").content.decode()
    assert client.get(f"/admin/jobs/chatmessage/{message.pk}/change/").status_code == 200
    assert client.get("/admin/jobs/chatmessage/add/").status_code == 403
    assert client.post(f"/admin/jobs/chatmessage/{message.pk}/delete/").status_code == 403
    changed = client.post(f"/admin/jobs/chatmessage/{message.pk}/change/", {"body": "edited"})
    assert changed.status_code == 403
    message.refresh_from_db()
    assert message.body == "Visible to staff"


async def test_a_chat_frame_without_a_registered_handler_is_an_unknown_type():
    socket, _ = await open_socket()
    unregister_client_message(ClientType.CHAT_SEND)
    try:
        await socket.send_json_to({"type": "chat_send", "channel": "job.1", "data": {}})
        error = await socket.receive_json_from()
        assert error["data"]["code"] == "unknown_type"
    finally:
        register_client_message(ClientType.CHAT_SEND, on_chat_send)
    await socket.disconnect()


def test_only_client_types_of_the_protocol_can_be_registered():
    with pytest.raises(ValueError):
        register_client_message("brand_new", on_chat_send)


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        ({"type": "chat_send", "channel": "job.1", "data": "hi"}, "invalid_message", "data"),
        (
            {"type": "typing", "channel": "job.1", "data": {"state": "x"}},
            "invalid_message",
            "state",
        ),
        (
            {"type": "typing", "channel": "jobs", "data": {"state": "typing"}},
            "invalid_message",
            "channel",
        ),
        (
            {"type": "chat_read", "channel": "job.1", "data": {"message_id": "1"}},
            "invalid_message",
            "message_id",
        ),
        ({"type": "typing", "channel": "job.1", "data": {"state": "typing"}}, "forbidden", None),
    ],
)
async def test_chat_frames_are_refused_with_stable_codes_and_the_socket_stays_open(
    frame, code, field
):
    socket, _ = await open_socket()  # anonymous
    await socket.send_json_to(frame)
    error = (await socket.receive_json_from())["data"]
    assert (error["code"], error.get("field")) == (code, field)
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from())["type"] == "pong"
    await socket.disconnect()


async def test_a_participant_not_subscribed_may_still_send_typing():
    job, employer, worker = await sync_to_async(accepted_job)()
    boss, _ = await open_socket(f"/ws?token={AccessToken.for_user(employer)}")
    hand, _ = await open_socket(f"/ws?token={AccessToken.for_user(worker)}")
    await boss.send_json_to({"type": "subscribe", "channels": [f"job.{job.pk}"]})
    await hand.send_json_to(
        {"type": "typing", "channel": f"job.{job.pk}", "data": {"state": "typing"}}
    )
    while (typing := await boss.receive_json_from())["type"] != "typing":
        assert typing["type"] in {"subscribed", "job_created", "job_accepted"}, typing
    assert typing["data"] == {"user_id": worker.pk, "state": "typing"}
    while not await hand.receive_nothing():
        assert (await hand.receive_json_from())["type"] == "job_accepted"
    await boss.disconnect()
    await hand.disconnect()
