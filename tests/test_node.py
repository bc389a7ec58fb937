"""The node and its hub: one group membership per channel, one frame for all,
gapless delivery per process, and sockets that cannot hold anyone up."""

from __future__ import annotations

import asyncio
import collections
import time

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer
from redis.exceptions import ResponseError

from realtime import node as node_module
from realtime import redis_clients
from realtime.broker import (
    GROUP_ALL,
    Position,
    get_broker,
    group_for,
    layer_batch,
    layer_message,
)
from realtime.node import Node, get_node
from realtime.protocol import CloseCode, ErrorCode
from realtime.services import apublish
from realtime.wsframe import text_frame


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.messages: list[dict] = []
        self.fail = fail

    async def __call__(self, message: dict) -> None:
        if self.fail:
            raise ConnectionResetError("client went away")
        self.messages.append(message)

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages if m["type"] == "websocket.send"]


class StuckTransport:
    """A socket whose peer never reads: never writable again."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.aborted = False
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    @property
    def received(self) -> bytes:
        return b"".join(self.writes)

    def is_writable(self) -> bool:
        return self.writable.is_set()

    async def wait_writable(self) -> None:
        await self.writable.wait()

    def abort(self) -> None:
        self.aborted = True

    def buffered_bytes(self) -> int:
        return 0


class OpenTransport(StuckTransport):
    """A socket whose peer reads everything."""

    def __init__(self) -> None:
        super().__init__()
        self.writable.set()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def wait_until(predicate, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_failing_socket_is_dropped_from_every_channel_and_the_others_get_the_frame():
    node = await get_node()
    good_before, broken, good_after = Recorder(), Recorder(fail=True), Recorder()
    clients = [node.attach(send, None) for send in (good_before, broken, good_after)]
    for client in clients:
        await node.subscribe(client, "jobs")
        await node.subscribe(client, "announcements")
    node.hub.deliver("jobs", '{"type":"x"}')
    await wait_until(lambda: good_before.texts and good_after.texts)
    assert good_before.texts == good_after.texts == ['{"type":"x"}']
    await wait_until(lambda: clients[1].id not in node.hub.clients)
    assert node.hub.connection_stats() == {
        "total": 2,
        "by_channel": {"announcements": 2, "jobs": 2},
    }


async def test_the_process_joins_a_channel_group_once_whatever_its_subscribers():
    node = await get_node()
    layer = get_channel_layer()
    clients = [node.attach(Recorder(), None) for _ in range(50)]
    for client in clients:
        await node.subscribe(client, "jobs")
    assert list(layer.groups[group_for("jobs")]) == [node.channel_name]


async def test_the_process_leaves_the_group_when_its_last_subscriber_goes():
    node = await get_node()
    layer = get_channel_layer()
    first, second = node.attach(Recorder(), None), node.attach(Recorder(), None)
    await node.subscribe(first, "jobs")
    await node.subscribe(second, "jobs")
    node.unsubscribe(first, "jobs")
    await settle()
    assert group_for("jobs") in layer.groups
    node.detach(second)
    await settle()
    assert group_for("jobs") not in layer.groups
    assert node.hub.connection_stats() == {"total": 1, "by_channel": {}}


async def test_each_socket_gets_every_publication_once_and_in_order():
    node = await get_node()
    recorders = [Recorder() for _ in range(200)]
    for recorder in recorders:
        await node.subscribe(node.attach(recorder, None), "jobs")
    for seq in range(100):
        await apublish(type="tick", data={"seq": seq}, channel="jobs")
    await wait_until(lambda: all(len(r.texts) == 100 for r in recorders))
    for recorder in recorders:
        seqs = [int(t.split('"seq":')[1].split("}")[0]) for t in recorder.texts]
        assert seqs == list(range(100))


async def test_a_publication_is_serialized_once_for_all_its_subscribers():
    node = await get_node()
    recorders = [Recorder() for _ in range(3)]
    for recorder in recorders:
        await node.subscribe(node.attach(recorder, None), "jobs")
    await apublish(type="tick", data={}, channel="jobs")
    await wait_until(lambda: all(r.texts for r in recorders))
    first = recorders[0].texts[0]
    assert all(r.texts[0] is first for r in recorders)


async def test_connection_stats_count_sockets_and_channel_members():
    node = await get_node()
    one, two = node.attach(Recorder(), None), node.attach(Recorder(), None)
    await node.subscribe(one, "jobs")
    await node.subscribe(two, "jobs")
    await node.subscribe(two, "payments")
    assert node.hub.connection_stats() == {"total": 2, "by_channel": {"jobs": 2, "payments": 1}}
    node.detach(two)
    assert node.hub.connection_stats() == {"total": 1, "by_channel": {"jobs": 1}}


# --- sockets that stop reading ---------------------------------------------------------


async def test_a_socket_past_its_buffer_is_cut_off_as_slow_and_the_others_get_everything(
    settings,
):
    settings.REALTIME = {**settings.REALTIME, "MAX_SOCKET_BUFFER_BYTES": 10_000}
    node = await get_node()
    before = node.counters.slow_disconnects
    stuck_send, stuck = Recorder(), StuckTransport()
    slow = node.attach(stuck_send, stuck)
    healthy = OpenTransport()
    await node.subscribe(slow, "jobs")
    await node.subscribe(node.attach(Recorder(), healthy), "jobs")
    frame = '{"type":"x","data":"' + "y" * 1000 + '"}'
    for _ in range(30):
        node.hub.deliver("jobs", frame)
    await wait_until(lambda: healthy.received == text_frame(frame.encode()) * 30)
    assert len(healthy.writes) == 1  # delivered together: one write
    assert slow.id not in node.hub.clients
    assert node.counters.slow_disconnects == before + 1
    assert stuck_send.messages == []  # nothing could be written: not even the error
    stuck.writable.set()  # the peer reads again: the error and the close go out
    await wait_until(lambda: len(stuck_send.messages) == 2)
    error, close = stuck_send.messages
    assert f'"code":"{ErrorCode.SLOW_CONSUMER}"' in error["text"]
    assert close == {"type": "websocket.close", "code": CloseCode.SLOW_CONSUMER}


async def test_a_slow_socket_whose_close_cannot_be_written_is_aborted(settings, monkeypatch):
    monkeypatch.setattr("realtime.client.CLOSE_TIMEOUT", 0.1)
    settings.REALTIME = {**settings.REALTIME, "MAX_SOCKET_BUFFER_BYTES": 100}
    node = await get_node()
    stuck = StuckTransport()
    slow = node.attach(Recorder(), stuck)
    await node.subscribe(slow, "jobs")
    node.hub.deliver("jobs", "x" * 101)
    await wait_until(lambda: stuck.aborted)


# --- gapless per process --------------------------------------------------------------------


async def published(node: Node, channel: str, count: int) -> list[tuple[int, str]]:
    """Record `count` publications in the broker's history without sending them."""
    broker = get_broker()
    entries = []
    for n in range(count):
        offset = broker.offsets.get(channel, 0) + 1
        broker.offsets[channel] = offset
        frame = f'{{"type":"tick","data":{{"n":{n}}},"offset":{offset},"epoch":"{broker.epoch}"}}'
        broker.history.setdefault(channel, collections.deque()).append((offset, time.time(), frame))
        entries.append((offset, frame))
    return entries


async def test_a_publication_after_a_gap_is_preceded_by_the_missing_ones_from_history():
    node = await get_node()
    recorder = Recorder()
    await node.subscribe(node.attach(recorder, None), "jobs")
    entries = await published(node, "jobs", 5)
    layer = get_channel_layer()
    epoch = get_broker().epoch
    # Only the 2nd and the 5th arrive (a reconnect lost the others); then the 3rd, late.
    for offset in (2, 5, 3):
        await layer.group_send(
            group_for("jobs"),
            layer_message("jobs", entries[offset - 1][1], offset=offset, epoch=epoch),
        )
    await wait_until(lambda: len(recorder.texts) == 5)
    await settle()
    assert recorder.texts == [frame for _, frame in entries]
    assert node.delivered["jobs"] == Position(5, epoch)


async def test_a_batch_after_a_gap_is_preceded_by_the_missing_ones_from_history():
    node = await get_node()
    recorder = Recorder()
    await node.subscribe(node.attach(recorder, None), "jobs")
    entries = await published(node, "jobs", 5)
    epoch = get_broker().epoch
    # One layer message carries the 4th and the 5th; the 1st to the 3rd never came.
    batch = [(offset, epoch, entries[offset - 1][1]) for offset in (4, 5)]
    await get_channel_layer().group_send(group_for("jobs"), layer_batch("jobs", batch))
    await wait_until(lambda: len(recorder.texts) == 5)
    await settle()
    assert recorder.texts == [frame for _, frame in entries]
    assert node.delivered["jobs"] == Position(5, epoch)


async def test_concurrent_publications_to_a_channel_reach_each_socket_in_one_write(
    redis_layer, monkeypatch
):
    # Twelve publishers at once (twelve POST /broadcast in flight): one round
    # trip records them, one layer message carries them, one write per socket.
    node = await get_node()
    sends: list[str] = []
    group_send = node.layer.group_send

    async def counted_group_send(group: str, message: dict) -> None:
        sends.append(group)
        await group_send(group, message)

    monkeypatch.setattr(node.layer, "group_send", counted_group_send)
    try:
        sockets = [OpenTransport() for _ in range(3)]
        for transport in sockets:
            await node.subscribe(node.attach(Recorder(), transport), "jobs")
        await asyncio.gather(
            *(apublish(type="t", data={"n": n}, channel="jobs") for n in range(12))
        )
        await wait_until(lambda: all(b'"offset":12' in t.received for t in sockets))
        await settle()
        for transport in sockets:
            assert len(transport.writes) == 1
            offsets = [
                int(part.split(b",", 1)[0]) for part in transport.received.split(b'"offset":')[1:]
            ]
            assert offsets == list(range(1, 13))
        assert sends.count(group_for("jobs")) == 1
    finally:
        await node.stop()


async def test_a_gap_the_history_cannot_fill_sends_resync_and_delivery_goes_on(settings):
    settings.REALTIME = {**settings.REALTIME, "HISTORY_SIZE": 2}
    node = await get_node()
    before = node.counters.resyncs
    recorder = Recorder()
    await node.subscribe(node.attach(recorder, None), "jobs")
    for n in range(6):
        await get_broker().publish("jobs", f'{{"type":"t","data":{{"n":{n}}}', dedupe_key=None)
        if n == 0:
            await wait_until(lambda: len(recorder.texts) == 1)
            node_layer = node.layer
            await node_layer.group_discard(group_for("jobs"), node.channel_name)  # lose 2..5
    await node.layer.group_add(group_for("jobs"), node.channel_name)
    await get_broker().publish("jobs", '{"type":"t","data":{"n":6}', dedupe_key=None)
    await wait_until(lambda: len(recorder.texts) >= 2)
    await settle()
    resync = recorder.texts[1]
    assert '"type":"resync"' in resync
    assert '"channel":"jobs"' in resync
    assert '"offset":6' in resync
    assert '"n":6' in recorder.texts[2]
    assert node.counters.resyncs == before + 1


async def test_a_new_epoch_is_replayed_from_its_own_history():
    node = await get_node()
    recorder = Recorder()
    await node.subscribe(node.attach(recorder, None), "jobs")
    await apublish(type="t", data={"n": 0}, channel="jobs")
    await wait_until(lambda: len(recorder.texts) == 1)
    broker = get_broker()
    broker.epoch, broker.offsets, broker.history = "fresh", {}, {}  # the stream was lost
    entries = await published(node, "jobs", 3)
    await node.layer.group_send(
        group_for("jobs"), layer_message("jobs", entries[2][1], offset=3, epoch="fresh")
    )
    await wait_until(lambda: len(recorder.texts) == 4)
    assert recorder.texts[1:] == [frame for _, frame in entries]


async def test_the_position_check_delivers_what_never_arrived_at_the_tail(monkeypatch):
    monkeypatch.setattr(node_module, "POSITION_CHECK_EVERY", 0.05)
    layer = FlakyLayer()  # not the in-memory layer: the node checks positions
    node = Node(layer)  # type: ignore[arg-type]
    node.broker = get_broker()
    await node.start()
    recorder = Recorder()
    await node.subscribe(node.attach(recorder, None), "jobs")
    entries = await published(node, "jobs", 3)  # recorded, but the sends were lost
    await wait_until(lambda: len(recorder.texts) == 3)
    assert recorder.texts == [frame for _, frame in entries]
    await node.stop()


async def test_publications_to_all_clients_reach_every_socket():
    node = await get_node()
    recorders = [Recorder() for _ in range(3)]
    for recorder in recorders:
        node.attach(recorder, None)
    await node.layer.group_send(GROUP_ALL, layer_message(None, '{"type":"all"}'))
    await wait_until(lambda: all(r.texts == ['{"type":"all"}'] for r in recorders))


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


async def test_a_node_that_stops_receiving_its_groups_joins_them_again(monkeypatch):
    monkeypatch.setattr(node_module, "PROBE_EVERY", 0.05)
    monkeypatch.setattr(node_module, "PROBE_GRACE", 0.05)
    layer = FlakyLayer()
    node = Node(layer)  # type: ignore[arg-type]
    await node.start()
    recorder = Recorder()
    await node.subscribe(node.attach(recorder, None), "jobs")
    layer.broken = True
    await wait_until(lambda: layer.flushes > 0)
    assert layer.flushes == 1
    await asyncio.sleep(0.05)
    await layer.group_send(GROUP_ALL, layer_message(None, '{"type":"back"}'))
    await wait_until(lambda: recorder.texts == ['{"type":"back"}'])
    await node.stop()


async def test_a_round_trip_of_many_records_fails_only_the_refused_one(settings, redis_layer):
    # 150 records in one round trip: two script calls; the 120th goes to a
    # channel whose offset key holds a string, so Redis refuses it alone.
    settings.REALTIME = {**settings.REALTIME, "HISTORY_SIZE": 200}
    prefix, redis = redis_layer
    redis.set(f"{prefix}:stream:{{poisoned}}:meta", "x")
    broker = get_broker()
    records = [("jobs", f'{{"type":"t","data":{{"n":{n}}}', None) for n in range(150)]
    records[119] = ("poisoned", '{"type":"t","data":{}', None)
    try:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await broker.publish_many(records)
        snapshot = await broker.snapshot("jobs", after=0)
    finally:
        await redis_clients.close_clients()
    assert [offset for offset, _ in snapshot.entries] == list(range(1, 150))
    numbers = [int(frame.split('"n":')[1].split("}")[0]) for _, frame in snapshot.entries]
    assert numbers == [n for n in range(150) if n != 119]
