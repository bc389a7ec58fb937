"""realtime.batching: concurrent callers share a round trip, each gets its own
results and errors, callers that give up send nothing, and the wait is bounded."""

from __future__ import annotations

import asyncio

import pytest

from realtime.batching import Batcher, BatcherFullError


class Far:
    """The far side of a round trip: records each call; answers each item
    with its double, or with a ValueError for negative items."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def send(self, items: list[int]) -> list[int | BaseException]:
        self.calls.append(list(items))
        await self.release.wait()
        return [ValueError(item) if item < 0 else item * 2 for item in items]


async def test_one_caller_alone_gets_one_round_trip():
    far = Far()
    batcher = Batcher(far.send, limit=100)
    assert await batcher.put([1, 2]) == [2, 4]
    assert far.calls == [[1, 2]]


async def test_callers_that_arrive_together_share_one_round_trip_in_order():
    far = Far()
    batcher = Batcher(far.send, limit=100)
    results = await asyncio.gather(*(batcher.put([n, n + 100]) for n in range(16)))
    assert results == [[2 * n, 2 * (n + 100)] for n in range(16)]
    assert len(far.calls) == 1


async def test_callers_that_arrive_during_a_round_trip_share_the_next():
    far = Far()
    far.release.clear()
    batcher = Batcher(far.send, limit=100)
    first = asyncio.create_task(batcher.put([1]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.put([n])) for n in range(2, 6)]
    await asyncio.sleep(0)
    far.release.set()
    assert await first == [2]
    assert [await task for task in later] == [[4], [6], [8], [10]]
    assert far.calls == [[1], [2, 3, 4, 5]]


async def test_an_error_for_one_item_goes_to_its_caller_only():
    far = Far()
    batcher = Batcher(far.send, limit=100)
    good, bad = await asyncio.gather(batcher.put([1]), batcher.put([-1, 3]))
    assert good == [2]
    assert isinstance(bad[0], ValueError)
    assert bad[1] == 6


async def test_a_failed_round_trip_fails_every_caller_in_it_and_the_next_one_works():
    calls = 0

    async def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("gone")
        return items

    batcher = Batcher(flaky, limit=100)
    results = await asyncio.gather(batcher.put([1]), batcher.put([2]), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert await batcher.put([3]) == [3]


async def test_a_caller_that_gives_up_before_the_round_trip_sends_nothing():
    far = Far()
    far.release.clear()
    batcher = Batcher(far.send, limit=100)
    first = asyncio.create_task(batcher.put([1]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    quitter = asyncio.create_task(batcher.put([7]))
    await asyncio.sleep(0)
    quitter.cancel()
    stayer = asyncio.create_task(batcher.put([8]))
    await asyncio.sleep(0)
    far.release.set()
    assert await first == [2]
    assert await stayer == [16]
    assert far.calls == [[1], [8]]


async def test_past_the_limit_a_caller_is_refused_at_once():
    far = Far()
    far.release.clear()
    batcher = Batcher(far.send, limit=3)
    first = asyncio.create_task(batcher.put([1]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    waiting = asyncio.create_task(batcher.put([2, 3, 4]))
    await asyncio.sleep(0)
    with pytest.raises(BatcherFullError):
        await batcher.put([5])
    far.release.set()
    assert await first == [2]
    assert await waiting == [4, 6, 8]
    assert await batcher.put([5]) == [10]
