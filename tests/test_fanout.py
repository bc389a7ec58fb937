"""The per-process hub: one group membership per channel, one frame for all."""

from __future__ import annotations

import asyncio

from channels.layers import InMemoryChannelLayer, get_channel_layer

from realtime import fanout
from realtime.fanout import PUBLICATION, Hub, get_hub, group_for
from realtime.services import apublish


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.messages: list[dict] = []
        self.fail = fail

    async def __call__(self, message: dict) -> None:
        if self.fail:
            raise ConnectionResetError("client went away")
        self.messages.append(message)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_failing_socket_never_stops_delivery_to_the_others():
    hub = await get_hub()
    good_before, broken, good_after = Recorder(), Recorder(fail=True), Recorder()
    sockets = [hub.attach(send) for send in (good_before, broken, good_after)]
    for sock in sockets:
        await hub.subscribe(sock, "jobs")
    sent = await hub.deliver("jobs", '{"type":"x"}')
    assert sent == 2
    assert (
        good_before.messages
        == good_after.messages
        == [{"type": "websocket.send", "text": '{"type":"x"}'}]
    )


async def test_the_process_joins_a_channel_group_once_whatever_its_subscribers():
    hub = await get_hub()
    layer = get_channel_layer()
    sockets = [hub.attach(Recorder()) for _ in range(50)]
    for sock in sockets:
        await hub.subscribe(sock, "jobs")
    assert list(layer.groups[group_for("jobs")]) == [hub.channel_name]


async def test_the_process_leaves_the_group_when_its_last_subscriber_goes():
    hub = await get_hub()
    layer = get_channel_layer()
    first, second = hub.attach(Recorder()), hub.attach(Recorder())
    await hub.subscribe(first, "jobs")
    await hub.subscribe(second, "jobs")
    hub.unsubscribe(first, "jobs")
    await settle()
    assert group_for("jobs") in layer.groups
    hub.detach(second)
    await settle()
    assert group_for("jobs") not in layer.groups
    assert hub.connection_stats() == {"total": 1, "by_channel": {}}


async def test_each_socket_gets_every_publication_once_and_in_order():
    hub = await get_hub()
    recorders = [Recorder() for _ in range(200)]
    for recorder in recorders:
        await hub.subscribe(hub.attach(recorder), "jobs")
    for seq in range(100):
        await apublish(type="tick", data={"seq": seq}, channel="jobs")
    for _ in range(100):
        if all(len(r.messages) == 100 for r in recorders):
            break
        await asyncio.sleep(0.02)
    for recorder in recorders:
        seqs = [int(m["text"].split('"seq":')[1].split("}")[0]) for m in recorder.messages]
        assert seqs == list(range(100))


async def test_a_publication_is_serialized_once_for_all_its_subscribers():
    hub = await get_hub()
    recorders = [Recorder() for _ in range(3)]
    for recorder in recorders:
        await hub.subscribe(hub.attach(recorder), "jobs")
    await apublish(type="tick", data={}, channel="jobs")
    for _ in range(50):
        if all(r.messages for r in recorders):
            break
        await asyncio.sleep(0.01)
    first = recorders[0].messages[0]
    assert all(r.messages[0] is first for r in recorders)


async def test_connection_stats_count_sockets_and_channel_members():
    hub = await get_hub()
    one, two = hub.attach(Recorder()), hub.attach(Recorder())
    await hub.subscribe(one, "jobs")
    await hub.subscribe(two, "jobs")
    await hub.subscribe(two, "payments")
    assert hub.connection_stats() == {"total": 2, "by_channel": {"jobs": 2, "payments": 1}}
    hub.detach(two)
    assert hub.connection_stats() == {"total": 1, "by_channel": {"jobs": 1}}


class FlakyLayer:
    """A channel layer whose subscriptions silently stop delivering, as
    channels-redis' could after a Redis restart, until it is flushed."""

    def __init__(self) -> None:
        self.inner = InMemoryChannelLayer(capacity=1000)
        self.broken = False
        self.flushes = 0

    async def new_channel(self, prefix: str = "specific.") -> str:
        return await self.inner.new_channel(prefix)

    async def receive(self, channel: str) -> dict:
        return await self.inner.receive(channel)

    async def group_add(self, group: str, channel: str) -> None:
        await self.inner.group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self.inner.group_discard(group, channel)

    async def group_send(self, group: str, message: dict) -> None:
        if not self.broken:
            await self.inner.group_send(group, message)

    async def flush(self) -> None:
        await self.inner.flush()
        self.broken = False
        self.flushes += 1


async def test_a_hub_that_stops_receiving_its_groups_joins_them_again(monkeypatch):
    monkeypatch.setattr(fanout, "PROBE_EVERY", 0.05)
    monkeypatch.setattr(fanout, "PROBE_GRACE", 0.05)
    layer = FlakyLayer()
    hub = Hub(layer)
    await hub.start()
    recorder = Recorder()
    await hub.subscribe(hub.attach(recorder), "jobs")
    layer.broken = True
    for _ in range(100):
        await asyncio.sleep(0.02)
        if layer.flushes:
            break
    assert layer.flushes == 1
    await asyncio.sleep(0.05)
    await layer.group_send(
        group_for("jobs"), {"type": PUBLICATION, "channel": "jobs", "frame": '{"type":"back"}'}
    )
    await asyncio.sleep(0.05)
    assert recorder.messages == [{"type": "websocket.send", "text": '{"type":"back"}'}]
    hub._task.cancel()
