"""
Sockets signed in by a session cookie end with their session.

A token carries its own expiry (the consumer closes the socket when it comes);
a session ends in the session store instead: at logout, or at its expiry date.
`SessionWatch` holds the session-authenticated sockets of this process and,
every REALTIME["SESSION_CHECK_INTERVAL"] seconds while it holds any, asks the
store in one batch which of their sessions still live; each socket whose
session is gone is told through its callback (the consumer answers
`unauthorized` and closes with 4001). A socket thus ends at most one interval
(plus one check) after its session.

Sessions are looked up through Django's session engine (SESSION_ENGINE): with
a database-backed store (`db`, `cached_db`) one query on its model for all
keys; with any other store, `SessionStore().exists(key)` per key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from importlib import import_module

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from .conf import realtime_settings

logger = logging.getLogger(__name__)

OnEnded = Callable[[], Awaitable[None]]
# Keys per query: below SQLite's limit on bound parameters.
BATCH = 500


def live_session_keys(keys: Iterable[str]) -> set[str]:
    """Which of `keys` name a session that exists and has not expired."""
    keys = list(keys)
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    model_of = getattr(store_class, "get_model_class", None)
    if model_of is None:
        return {key for key in keys if store_class().exists(key)}
    model = model_of()
    live: set[str] = set()
    now = timezone.now()
    for start in range(0, len(keys), BATCH):
        live.update(
            model.objects.filter(
                session_key__in=keys[start : start + BATCH], expire_date__gt=now
            ).values_list("session_key", flat=True)
        )
    return live


alive_session_keys = database_sync_to_async(live_session_keys)


class SessionWatch:
    """The session-authenticated sockets of this process, checked in batches."""

    def __init__(self) -> None:
        self.watched: dict[object, tuple[str, OnEnded]] = {}
        self.task: asyncio.Task[None] | None = None

    def watch(self, owner: object, session_key: str, on_ended: OnEnded) -> None:
        self.watched[owner] = (session_key, on_ended)
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self.run())

    def unwatch(self, owner: object) -> None:
        self.watched.pop(owner, None)

    async def run(self) -> None:
        while self.watched:
            await asyncio.sleep(realtime_settings.SESSION_CHECK_INTERVAL)
            try:
                await self.check()
            except Exception:
                logger.exception("Could not check the sessions of session-authenticated sockets")

    async def check(self) -> None:
        """One look at the store for every watched socket; end the sockets
        whose session is gone."""
        watched = dict(self.watched)
        if not watched:
            return
        live = await alive_session_keys({key for key, _ in watched.values()})
        ended = [
            on_ended
            for owner, (key, on_ended) in watched.items()
            if key not in live and self.watched.pop(owner, None) is not None
        ]
        if ended:
            logger.info("%d socket(s) outlived their session: closing them", len(ended))
            await asyncio.gather(*(on_ended() for on_ended in ended), return_exceptions=True)


session_watch = SessionWatch()
