"""The /ws protocol, through Channels' WebsocketCommunicator."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from channels.testing import WebsocketCommunicator

from realtime.protocol import CloseCode, ErrorCode
from realtime.services import apublish

from .sockets import open_socket, subscribed_socket

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def error_for(communicator: WebsocketCommunicator, frame: str | bytes) -> dict:
    if isinstance(frame, bytes):
        await communicator.send_to(bytes_data=frame)
    else:
        await communicator.send_to(text_data=frame)
    reply = await communicator.receive_json_from()
    assert reply["type"] == "error", reply
    return reply["data"]


async def test_connect_sends_connected_with_a_uuid4_connection_id():
    communicator, hello = await open_socket()
    assert hello["type"] == "connected"
    assert uuid.UUID(hello["data"]["connection_id"]).version == 4
    assert TIMESTAMP.fullmatch(hello["timestamp"])
    await communicator.disconnect()


async def test_path_with_trailing_slash_connects_too():
    communicator, hello = await open_socket("/ws/")
    assert hello["type"] == "connected"
    await communicator.disconnect()


async def test_subscribe_answers_with_the_channels_subscribed():
    communicator, _ = await open_socket()
    await communicator.send_json_to({"type": "subscribe", "channels": ["jobs", "announcements"]})
    reply = await communicator.receive_json_from()
    assert reply["type"] == "subscribed"
    assert reply["data"]["channels"] == ["jobs", "announcements"]
    assert TIMESTAMP.fullmatch(reply["timestamp"])
    await communicator.disconnect()


@pytest.mark.parametrize("frame", [{"channels": "jobs"}, {"channel": "jobs"}])
async def test_subscribe_accepts_a_single_string(frame):
    communicator, _ = await open_socket()
    await communicator.send_json_to({"type": "subscribe", **frame})
    reply = await communicator.receive_json_from()
    assert reply["data"]["channels"] == ["jobs"]
    await communicator.disconnect()


@pytest.mark.parametrize("kind", ["subscribe", "unsubscribe"])
@pytest.mark.parametrize("extra", [{}, {"channels": []}, {"channels": None}])
async def test_subscribe_or_unsubscribe_without_channels_is_invalid_message(kind, extra):
    communicator, _ = await open_socket()
    data = await error_for(communicator, json.dumps({"type": kind, **extra}))
    assert data["code"] == ErrorCode.INVALID_MESSAGE
    assert data["field"] == "channels"
    await communicator.disconnect()


async def test_bad_channel_name_is_named_and_the_good_ones_still_subscribe():
    communicator, _ = await open_socket()
    await communicator.send_json_to(
        {"type": "subscribe", "channels": ["jobs", "no spaces!", "x" * 81, "announcements"]}
    )
    first = await communicator.receive_json_from()
    second = await communicator.receive_json_from()
    reply = await communicator.receive_json_from()
    assert first["data"]["code"] == ErrorCode.INVALID_CHANNEL
    assert first["data"]["channel"] == "no spaces!"
    assert second["data"]["code"] == ErrorCode.INVALID_CHANNEL
    assert reply["type"] == "subscribed"
    assert reply["data"]["channels"] == ["jobs", "announcements"]
    await communicator.disconnect()


async def test_unsubscribe_answers_with_the_channels_it_removed():
    communicator = await subscribed_socket("jobs", "announcements")
    await communicator.send_json_to({"type": "unsubscribe", "channels": ["jobs", "never"]})
    reply = await communicator.receive_json_from()
    assert reply["type"] == "unsubscribed"
    assert reply["data"] == {"channels": ["jobs"]}
    await apublish(type="job_created", data={}, channel="jobs")
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_ping_answers_pong_echoing_its_data():
    communicator, _ = await open_socket()
    await communicator.send_json_to({"type": "ping", "data": {"sent": 1234.5}})
    reply = await communicator.receive_json_from()
    assert reply["type"] == "pong"
    assert reply["data"] == {"sent": 1234.5}
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from())["data"] == {}
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", ErrorCode.INVALID_JSON),
        ("{", ErrorCode.INVALID_JSON),
        ("[" * 60_000, ErrorCode.INVALID_JSON),
        ('"a string"', ErrorCode.INVALID_MESSAGE),
        ("[1, 2]", ErrorCode.INVALID_MESSAGE),
        ("null", ErrorCode.INVALID_MESSAGE),
        ('{"channels": ["jobs"]}', ErrorCode.INVALID_MESSAGE),
        ('{"type": 7}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "dance"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "ping", "data": [1]}', ErrorCode.INVALID_MESSAGE),
        (b"\x00\x01binary", ErrorCode.UNSUPPORTED_FRAME),
    ],
)
async def test_bad_input_gets_a_typed_error_and_the_connection_stays_open(frame, code):
    communicator, _ = await open_socket()
    data = await error_for(communicator, frame)
    assert data["code"] == code
    assert data["message"]
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.disconnect()


async def test_oversized_frame_gets_message_too_big_then_close_4013(settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_FRAME_BYTES": 1024}
    communicator, _ = await open_socket()
    data = await error_for(communicator, json.dumps({"type": "ping", "data": {"x": "y" * 2000}}))
    assert data["code"] == ErrorCode.MESSAGE_TOO_BIG
    assert await communicator.receive_output() == {
        "type": "websocket.close",
        "code": CloseCode.MESSAGE_TOO_BIG,
    }


async def test_frame_size_limit_counts_utf8_bytes(settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_FRAME_BYTES": 1024}
    communicator, _ = await open_socket()
    # 400 characters, 1,200 bytes of UTF-8.
    data = await error_for(
        communicator, json.dumps({"type": "ping", "d": "€" * 400}, ensure_ascii=False)
    )
    assert data["code"] == ErrorCode.MESSAGE_TOO_BIG


async def test_publication_reaches_channel_subscribers_only():
    on_jobs = await subscribed_socket("jobs")
    on_announcements = await subscribed_socket("announcements")
    publication = await apublish(type="job_created", data={"job_id": 1}, channel="jobs")
    message = await on_jobs.receive_json_from()
    assert message["type"] == "job_created"
    assert message["data"] == {"job_id": 1}
    assert message["channel"] == "jobs"
    assert message["id"] == publication.id
    assert TIMESTAMP.fullmatch(message["timestamp"])
    assert await on_announcements.receive_nothing()
    await on_jobs.disconnect()
    await on_announcements.disconnect()


async def test_publication_without_channel_reaches_every_client():
    subscribed = await subscribed_socket("jobs")
    bare, _ = await open_socket()
    await apublish(type="announcement", data={"text": "hi"})
    for communicator in (subscribed, bare):
        message = await communicator.receive_json_from()
        assert message["type"] == "announcement"
        assert "channel" not in message
        await communicator.disconnect()


async def test_subscribing_twice_delivers_once():
    communicator = await subscribed_socket("jobs")
    await communicator.send_json_to({"type": "subscribe", "channels": ["jobs"]})
    assert (await communicator.receive_json_from())["type"] == "subscribed"
    await apublish(type="job_created", data={}, channel="jobs")
    assert (await communicator.receive_json_from())["type"] == "job_created"
    assert await communicator.receive_nothing()
    await communicator.disconnect()
