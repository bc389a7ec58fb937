"""GET /api/asyncapi.json: the socket protocol as an AsyncAPI 3.0 document,
generated from realtime/protocol.py; the suite's messages checked against it
(tests/contracts.py)."""

from __future__ import annotations

import jsonschema
import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from realtime import asyncapi
from realtime.broker import get_broker, group_for
from realtime.node import get_node
from realtime.protocol import ClientType, CloseCode, ErrorCode, ServerType
from realtime.services import apublish

from . import contracts
from .factories import make_employer, make_job, make_worker
from .sockets import open_socket

pytestmark = pytest.mark.django_db(transaction=True)


def served() -> dict:
    response = APIClient().get("/api/asyncapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_document_is_asyncapi_3_with_every_message_error_and_close_code_of_the_protocol():
    document = served()
    assert document["asyncapi"] == "3.0.0"
    messages = document["components"]["messages"]
    for kind in asyncapi.constants(ServerType).values():
        assert messages[f"server.{kind}"]["payload"]["properties"]["type"] == {
            "type": "string",
            "const": kind,
        }
    for kind in asyncapi.constants(ClientType).values():
        assert messages[f"client.{kind}"]["payload"]["properties"]["type"]["const"] == kind
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorCode"]["enum"]) == set(asyncapi.constants(ErrorCode).values())
    assert set(schemas["CloseCode"]["enum"]) == set(asyncapi.constants(CloseCode).values())
    assert "4029" in document["channels"]["socket"]["description"]


def test_every_payload_is_a_json_schema_and_every_operation_points_at_a_message():
    document = served()
    for message in document["components"]["messages"].values():
        jsonschema.Draft7Validator.check_schema(message["payload"])
    channel = document["channels"]["socket"]
    for operation in document["operations"].values():
        assert operation["action"] in {"send", "receive"}
        assert operation["channel"] == {"$ref": "#/channels/socket"}
        for ref in operation["messages"]:
            name = ref["$ref"].removeprefix("#/channels/socket/messages/")
            assert name in channel["messages"]


def test_the_protocol_is_described_not_placeholders():
    text = str(asyncapi.document())
    assert asyncapi.UNDESCRIBED not in text


def test_a_constant_added_to_protocol_py_appears_without_editing_the_generator(monkeypatch):
    monkeypatch.setattr(ErrorCode, "BRAND_NEW", "brand_new", raising=False)
    monkeypatch.setattr(ServerType, "BRAND_NEW", "brand_new", raising=False)
    monkeypatch.setattr(CloseCode, "BRAND_NEW", 4999, raising=False)
    document = asyncapi.document()
    assert "brand_new" in document["components"]["schemas"]["ErrorCode"]["enum"]
    assert 4999 in document["components"]["schemas"]["CloseCode"]["enum"]
    assert "server.brand_new" in document["components"]["messages"]


@pytest.mark.parametrize(
    "message",
    [
        # An error code the protocol does not have.
        {
            "type": "error",
            "data": {"code": "oops", "message": "?"},
            "timestamp": "2025-11-01T12:00:00.000Z",
        },
        # `subscribed` without its channels.
        {"type": "subscribed", "data": {}, "timestamp": "2025-11-01T12:00:00.000Z"},
        # A timestamp not in the protocol's form.
        {"type": "pong", "data": {}, "timestamp": "2025-11-01 12:00:00"},
        # A type the server never sends, without an id (so not a publication).
        {"type": "surprise", "data": {}, "timestamp": "2025-11-01T12:00:00.000Z"},
        # A publication to a channel without its position.
        {
            "type": "tick",
            "data": {},
            "timestamp": "2025-11-01T12:00:00.000Z",
            "id": "1",
            "channel": "jobs",
        },
        # A field the envelope does not have.
        {"type": "pong", "data": {}, "timestamp": "2025-11-01T12:00:00.000Z", "extra": 1},
    ],
)
def test_the_check_refuses_what_the_document_does_not_describe(message):
    with pytest.raises(AssertionError):
        contracts.check_server_message(message)


async def test_a_session_with_every_server_message_type_matches_the_document(settings):
    """Every server message type, received by the suite's own socket clients
    (checked by tests/contracts.py on the way), then each checked again here."""
    settings.REALTIME = {
        **settings.REALTIME,
        "PRESENCE_CHANNELS": ["jobs", "user.*"],
        "HISTORY_SIZE": 2,
        "RELAY_IN_PROCESS": False,
    }
    received: list[dict] = []
    first, second = await sync_to_async(lambda: (make_worker(), make_worker()))()
    one, hello = await open_socket(f"/ws?token={AccessToken.for_user(first)}")
    received.append(hello)
    other, _ = await open_socket()

    async def ask(socket, frame: dict) -> dict:
        await socket.send_json_to(frame)
        reply = await socket.receive_json_from()
        received.append(reply)
        return reply

    await ask(one, {"type": "ping", "data": {"sent": 1}})
    await ask(one, {"type": "subscribe", "channels": ["jobs"]})
    await ask(other, {"type": "auth", "token": str(AccessToken.for_user(second))})
    await ask(
        other,
        {"type": "subscribe", "channels": ["jobs"], "since": {"jobs": {"offset": 0, "epoch": "x"}}},
    )
    received.append(await one.receive_json_from())  # user_online of the second user
    await ask(one, {"type": "presence", "channel": "jobs"})
    await ask(one, {"type": "subscribe", "channels": ["payments!"]})  # error
    await apublish(type="tick", data={"n": 1}, channel="jobs")
    received.append(await one.receive_json_from())
    await apublish(type="hello", data={})  # to every client
    received.append(await one.receive_json_from())
    # Lose publications the history cannot give back: `resync`.
    node = await get_node()
    await node.layer.group_discard(group_for("jobs"), node.channel_name)
    for n in range(4):
        await get_broker().publish(
            "jobs",
            f'{{"type":"t","data":{{"n":{n}}},"timestamp":"2025-11-01T12:00:00.000Z","id":"x"',
            dedupe_key=None,
        )
    await node.layer.group_add(group_for("jobs"), node.channel_name)
    await apublish(type="tick", data={"n": 2}, channel="jobs")
    while (message := await one.receive_json_from())["type"] != "tick":
        received.append(message)
    received.append(message)
    # The chat's own (jobs.chat): `chat_ack`, and `typing` to the other participant.
    employer = await sync_to_async(make_employer)()
    job = await sync_to_async(make_job)(employer=employer, worker=first, status="accepted")
    chat = f"job.{job.pk}"
    boss, _ = await open_socket(f"/ws?token={AccessToken.for_user(employer)}")
    await ask(boss, {"type": "subscribe", "channels": [chat]})
    await one.send_json_to({"type": "typing", "channel": chat, "data": {"state": "typing"}})
    received.append(await boss.receive_json_from())
    body = {"body": "hello", "client_id": "0b7f3c2e-0d0a-4a52-9d0e-6a1f5c0f1e11"}
    await ask(one, {"type": "chat_send", "channel": chat, "data": body})
    await boss.disconnect()
    await other.disconnect()
    received.append(await one.receive_json_from())  # user_offline
    await ask(one, {"type": "unsubscribe", "channels": ["jobs"]})
    await one.disconnect()

    for message in received:
        contracts.check_server_message(message)
    kinds = {asyncapi.message_name_of(m) for m in received}
    every = {f"server.{kind}" for kind in asyncapi.constants(ServerType).values()}
    assert every | {asyncapi.PUBLICATION} <= kinds
