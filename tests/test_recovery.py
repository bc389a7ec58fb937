"""Positions, history and recovery, in process (the in-memory streams)."""

from __future__ import annotations

import asyncio

from channels.testing import WebsocketCommunicator

from paychain.asgi import application
from realtime.protocol import ErrorCode
from realtime.services import apublish


async def open_socket() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws")
    assert (await communicator.connect())[0]
    await communicator.receive_json_from()
    return communicator


async def subscribe(communicator, channels, since=None) -> dict:
    frame = {"type": "subscribe", "channels": channels}
    if since is not None:
        frame["since"] = since
    await communicator.send_json_to(frame)
    reply = await communicator.receive_json_from()
    assert reply["type"] == "subscribed", reply
    return reply["data"]


async def publish_many(channel: str, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await apublish(type="tick", data={"n": n}, channel=channel)


async def receive(communicator, count: int) -> list[dict]:
    return [await communicator.receive_json_from() for _ in range(count)]


async def test_channel_publications_carry_channel_offset_epoch_and_id():
    socket = await open_socket()
    data = await subscribe(socket, ["jobs"])
    assert data["positions"]["jobs"]["offset"] == 0
    epoch = data["positions"]["jobs"]["epoch"]
    await publish_many("jobs", 3)
    messages = await receive(socket, 3)
    assert [m["offset"] for m in messages] == [1, 2, 3]
    assert {m["epoch"] for m in messages} == {epoch}
    assert all(m["channel"] == "jobs" and m["id"] for m in messages)
    await socket.disconnect()


async def test_offsets_are_per_channel():
    socket = await open_socket()
    await subscribe(socket, ["jobs", "announcements"])
    await apublish(type="a", channel="jobs")
    await apublish(type="b", channel="announcements")
    await apublish(type="c", channel="jobs")
    messages = await receive(socket, 3)
    assert [(m["channel"], m["offset"]) for m in messages] == [
        ("jobs", 1),
        ("announcements", 1),
        ("jobs", 2),
    ]
    await socket.disconnect()


async def test_a_publication_to_all_clients_carries_an_id_but_no_position():
    socket = await open_socket()
    await apublish(type="maintenance", data={})
    message = await socket.receive_json_from()
    assert message["id"]
    assert "offset" not in message
    assert "epoch" not in message
    await socket.disconnect()


async def test_a_plain_subscribe_reports_the_current_position_without_recovered():
    await publish_many("jobs", 4)
    socket = await open_socket()
    data = await subscribe(socket, ["jobs"])
    assert data["channels"] == ["jobs"]
    assert data["positions"]["jobs"]["offset"] == 4
    assert "recovered" not in data["positions"]["jobs"]
    await socket.disconnect()


async def test_a_returning_client_gets_exactly_what_it_missed_then_live_ones():
    socket = await open_socket()
    data = await subscribe(socket, ["jobs"])
    epoch = data["positions"]["jobs"]["epoch"]
    await publish_many("jobs", 2)
    last = (await receive(socket, 2))[-1]["offset"]
    await socket.disconnect()

    await publish_many("jobs", 5, start=2)
    socket = await open_socket()
    data = await subscribe(socket, ["jobs"], since={"jobs": {"offset": last, "epoch": epoch}})
    assert data["positions"]["jobs"] == {"offset": 7, "epoch": epoch, "recovered": True}
    missed = await receive(socket, 5)
    assert [m["data"]["n"] for m in missed] == [2, 3, 4, 5, 6]
    assert [m["offset"] for m in missed] == [3, 4, 5, 6, 7]
    await publish_many("jobs", 1, start=7)
    assert (await socket.receive_json_from())["offset"] == 8
    assert await socket.receive_nothing()
    await socket.disconnect()


async def test_publications_during_recovery_are_neither_lost_nor_repeated():
    await publish_many("jobs", 10)
    socket = await open_socket()
    epoch = (await subscribe(socket, ["announcements"]))["positions"]["announcements"]["epoch"]
    publisher = asyncio.ensure_future(publish_many("jobs", 40, start=10))
    await asyncio.sleep(0)
    await socket.send_json_to(
        {
            "type": "subscribe",
            "channels": ["jobs"],
            "since": {"jobs": {"offset": 3, "epoch": epoch}},
        }
    )
    await publisher
    messages = []
    while len(messages) < 1 + 47:
        messages.append(await socket.receive_json_from())
    offsets = [m["offset"] for m in messages if m["type"] == "tick"]
    assert offsets == list(range(4, 51))
    assert await socket.receive_nothing()
    await socket.disconnect()


async def test_another_epoch_is_not_recovered_and_nothing_is_replayed():
    await publish_many("jobs", 3)
    socket = await open_socket()
    data = await subscribe(socket, ["jobs"], since={"jobs": {"offset": 1, "epoch": "someother"}})
    assert data["positions"]["jobs"]["recovered"] is False
    assert data["positions"]["jobs"]["offset"] == 3
    assert await socket.receive_nothing()
    await socket.disconnect()


async def test_a_position_beyond_the_top_is_not_recovered():
    socket = await open_socket()
    epoch = (await subscribe(socket, ["jobs"]))["positions"]["jobs"]["epoch"]
    await socket.send_json_to({"type": "unsubscribe", "channels": ["jobs"]})
    await socket.receive_json_from()
    data = await subscribe(socket, ["jobs"], since={"jobs": {"offset": 99, "epoch": epoch}})
    assert data["positions"]["jobs"]["recovered"] is False
    await socket.disconnect()


async def test_a_gap_older_than_the_history_is_not_recovered(settings):
    settings.REALTIME = {**settings.REALTIME, "HISTORY_SIZE": 5}
    socket = await open_socket()
    epoch = (await subscribe(socket, ["jobs"]))["positions"]["jobs"]["epoch"]
    await socket.disconnect()
    await publish_many("jobs", 10)
    socket = await open_socket()
    lost = await subscribe(socket, ["jobs"], since={"jobs": {"offset": 2, "epoch": epoch}})
    assert lost["positions"]["jobs"]["recovered"] is False
    assert await socket.receive_nothing()
    kept = await subscribe(socket, ["jobs"], since={"jobs": {"offset": 5, "epoch": epoch}})
    assert kept["positions"]["jobs"]["recovered"] is True
    assert [m["offset"] for m in await receive(socket, 5)] == [6, 7, 8, 9, 10]
    await socket.disconnect()


async def test_history_older_than_its_ttl_is_not_recovered(settings):
    settings.REALTIME = {**settings.REALTIME, "HISTORY_TTL": 1}
    socket = await open_socket()
    epoch = (await subscribe(socket, ["jobs"]))["positions"]["jobs"]["epoch"]
    await socket.disconnect()
    await publish_many("jobs", 2)
    await asyncio.sleep(1.2)
    socket = await open_socket()
    data = await subscribe(socket, ["jobs"], since={"jobs": {"offset": 0, "epoch": epoch}})
    assert data["positions"]["jobs"] == {"offset": 2, "epoch": epoch, "recovered": False}
    await socket.disconnect()


async def test_since_for_a_channel_already_subscribed_replays_the_same_way():
    socket = await open_socket()
    epoch = (await subscribe(socket, ["jobs"]))["positions"]["jobs"]["epoch"]
    await publish_many("jobs", 3)
    await receive(socket, 3)
    data = await subscribe(socket, ["jobs"], since={"jobs": {"offset": 1, "epoch": epoch}})
    assert data["positions"]["jobs"]["recovered"] is True
    assert [m["offset"] for m in await receive(socket, 2)] == [2, 3]
    await socket.disconnect()


async def test_a_malformed_since_is_an_invalid_message():
    socket = await open_socket()
    await socket.send_json_to({"type": "subscribe", "channels": ["jobs"], "since": [1]})
    assert (await socket.receive_json_from())["data"]["code"] == ErrorCode.INVALID_MESSAGE
    await socket.send_json_to(
        {"type": "subscribe", "channels": ["jobs"], "since": {"jobs": {"offset": -1}}}
    )
    error = await socket.receive_json_from()
    assert error["data"]["code"] == ErrorCode.INVALID_MESSAGE
    assert error["data"]["channel"] == "jobs"
    await socket.disconnect()


async def test_the_same_message_id_is_published_once_per_channel():
    socket = await open_socket()
    await subscribe(socket, ["jobs"])
    first = await apublish(type="paid", data={}, channel="jobs", message_id="m-1")
    again = await apublish(type="paid", data={}, channel="jobs", message_id="m-1")
    assert first.id == again.id == "m-1"
    assert (await socket.receive_json_from())["id"] == "m-1"
    assert await socket.receive_nothing()
    await socket.disconnect()
