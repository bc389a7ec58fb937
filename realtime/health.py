"""What /health and /stats report."""

from __future__ import annotations

import dataclasses
import logging
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

from .conf import realtime_settings
from .fanout import connection_stats, counters

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _redis_client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def channel_layer_problem() -> str | None:
    """None when the channel layer answers; else why not."""
    if not settings.REDIS_URL:
        return None
    try:
        _redis_client(settings.REDIS_URL, realtime_settings.HEALTH_TIMEOUT).ping()
    except redis.RedisError as exc:
        return f"Redis does not answer: {exc.__class__.__name__}: {exc}"
    return None


def connections() -> dict[str, Any]:
    return connection_stats()


def message_counters() -> dict[str, int]:
    return dataclasses.asdict(counters)
