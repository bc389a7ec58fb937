"""How many chat messages a user stored lately: at most RATE_LIMIT in any
RATE_WINDOW seconds, counted across processes and the REST endpoint.

Counted in Django's cache (Redis when REDIS_URL is set, so every process
shares the count; else this process' memory), one counter per user and
second, each living a little longer than the window: the count of the last
RATE_WINDOW seconds is their sum (to the second: a message may wait up to a
second longer than the window before it stops counting). A message is counted before it is stored
(`reserve`), and given back when it is not (`release`), so two processes
storing at once cannot both slip past the limit."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

RATE_LIMIT = 10
RATE_WINDOW = 10  # seconds


def _key(user_id: int, second: int) -> str:
    return f"chat-rate:{user_id}:{second}"


def reserve(user_id: int) -> str | None:
    """Count one message of the user; the counter's key, or None (nothing
    counted) when that would be over the limit."""
    now = int(time.time())
    key = _key(user_id, now)
    cache.add(key, 0, timeout=RATE_WINDOW + 2)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=RATE_WINDOW + 2)
    # The seconds that overlap the last RATE_WINDOW seconds, this one included:
    # a whole window is always covered, so no RATE_WINDOW seconds hold more.
    recent = cache.get_many([_key(user_id, now - n) for n in range(RATE_WINDOW + 1)])
    if sum(int(count) for count in recent.values()) > RATE_LIMIT:
        release(key)
        return None
    return key


def release(key: str) -> None:
    """Give back a message counted by `reserve` that was not stored."""
    try:
        cache.decr(key)
    except ValueError:
        pass  # expired meanwhile: nothing left to give back
