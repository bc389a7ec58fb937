"""
Typing indicators: ephemeral, throttled, and stopped by themselves.

A participant's `typing` frame reaches the other sockets on the job's channel
as `typing` {user_id, state}: not a publication (no offset, never in history;
see realtime.services.apublish_ephemeral). The server forwards at most one
`typing` per user and job each THROTTLE_SECONDS, across processes (a key in
Django's cache, Redis when REDIS_URL is set); `stopped` is always forwarded.
It sends `stopped` by itself when the user's next message is stored, or
STOP_AFTER seconds after the last `typing` frame it received from them,
throttled ones included. That timer is this process' (one per user and job,
on the process that received the frame).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.cache import cache

from realtime.protocol import ServerType
from realtime.services import apublish_ephemeral

from .events import job_channel

logger = logging.getLogger(__name__)

TYPING = "typing"
STOPPED = "stopped"
STATES = (TYPING, STOPPED)
THROTTLE_SECONDS = 1
STOP_AFTER = 5.0


async def forward(*, user_id: int, job_id: int, state: str) -> None:
    """`typing` {user_id, state} to the job's channel, but the user's own sockets."""
    await apublish_ephemeral(
        type=ServerType.TYPING,
        data={"user_id": user_id, "state": state},
        channel=job_channel(job_id),
        skip_user=user_id,
    )


class TypingIndicators:
    """This process' typing timers, one per (user, job) that is typing."""

    def __init__(self) -> None:
        self._timers: dict[tuple[int, int], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def received(self, *, user_id: int, job_id: int, state: str) -> None:
        """A `typing` frame of the user on the job's chat."""
        if state == STOPPED:
            self._disarm(user_id, job_id)
            await forward(user_id=user_id, job_id=job_id, state=STOPPED)
            return
        self._arm(user_id, job_id)
        if await cache.aadd(f"chat-typing:{user_id}:{job_id}", 1, timeout=THROTTLE_SECONDS):
            await forward(user_id=user_id, job_id=job_id, state=TYPING)

    async def message_sent(self, *, user_id: int, job_id: int) -> None:
        """The user's message was stored: they stopped typing."""
        if self._disarm(user_id, job_id):
            await forward(user_id=user_id, job_id=job_id, state=STOPPED)

    def typing(self, user_id: int, job_id: int) -> bool:
        return (user_id, job_id) in self._timers

    def _arm(self, user_id: int, job_id: int) -> None:
        self._disarm(user_id, job_id)
        loop = asyncio.get_running_loop()
        self._timers[(user_id, job_id)] = loop.call_later(
            STOP_AFTER, self._expired, user_id, job_id
        )

    def _disarm(self, user_id: int, job_id: int) -> bool:
        timer = self._timers.pop((user_id, job_id), None)
        if timer is None:
            return False
        timer.cancel()
        return True

    def _expired(self, user_id: int, job_id: int) -> None:
        self._timers.pop((user_id, job_id), None)
        task = asyncio.get_running_loop().create_task(self._stop(user_id, job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop(self, user_id: int, job_id: int) -> None:
        try:
            await forward(user_id=user_id, job_id=job_id, state=STOPPED)
        except Exception as exc:
            logger.warning("Sending the automatic 'stopped' of user %s failed: %s", user_id, exc)


indicators = TypingIndicators()
