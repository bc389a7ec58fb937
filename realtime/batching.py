"""
Group commit: the items of concurrent callers share one round trip.

A `Batcher` runs `send(items) -> results` (one result per item, in order;
a result may be an exception, which goes to that item's caller only) for
everything put while the previous round trip was on the wire. One caller
alone waits for one round trip, as without it; sixteen concurrent callers
(sixteen `POST /broadcast` in flight) share one instead of sixteen.

Bounded: at most `limit` items wait; a `put` beyond it raises
`BatcherFullError` (a ConnectionError: the far side is not keeping up). A caller
that gives up (its task cancelled, a timeout) takes its items out: they are
not sent later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


# What a caller waits on: its items' results.
Waiter = asyncio.Future[list[Result | BaseException]]


class BatcherFullError(ConnectionError):
    """More items wait than the batcher's limit."""


class Batcher(Generic[Item, Result]):
    def __init__(
        self, send: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]], limit: int
    ) -> None:
        self._send = send
        self._limit = limit
        self._waiting: list[tuple[Sequence[Item], Waiter[Result]]] = []
        self._count = 0
        self._task: asyncio.Task[None] | None = None

    async def put(self, items: Sequence[Item]) -> list[Result | BaseException]:
        """The results of `items`, in order, after the round trip they joined."""
        if self._count + len(items) > self._limit:
            raise BatcherFullError(f"{self._count} items already wait for the next round trip.")
        future: Waiter[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        self._count += len(items)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch = [(items, f) for items, f in self._waiting if not f.done()]
                self._waiting, self._count = [], 0
                if batch:
                    await self._round_trip(batch)
        finally:
            self._task = None
            for _, future in self._waiting:  # left only when cancelled
                future.cancel()
            self._waiting, self._count = [], 0

    async def _round_trip(self, batch: list[tuple[Sequence[Item], Waiter[Result]]]) -> None:
        try:
            results = list(await self._send([item for items, _ in batch for item in items]))
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): so are its callers
            for _, future in batch:
                future.cancel()
            raise
        start = 0
        for items, future in batch:
            if not future.done():
                future.set_result(results[start : start + len(items)])
            start += len(items)
