"""What /health and /stats report: with Redis, the totals of every server
process sharing it (each reports its own counts, see realtime.registry);
without, this process' own."""

from __future__ import annotations

import dataclasses
import logging
import time
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

from .conf import realtime_settings
from .fanout import connection_stats, counters
from .registry import processes_key, sum_process_reports

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _redis_client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def _redis() -> redis.Redis:
    return _redis_client(settings.REDIS_URL, realtime_settings.HEALTH_TIMEOUT)


def channel_layer_problem() -> str | None:
    """None when the channel layer answers; else why not."""
    if not settings.REDIS_URL:
        return None
    try:
        _redis().ping()
    except redis.RedisError as exc:
        return f"Redis does not answer: {exc.__class__.__name__}: {exc}"
    return None


def local() -> dict[str, Any]:
    return {
        "connections": connection_stats(),
        "messages": dataclasses.asdict(counters),
        "processes": 1,
    }


def cluster() -> dict[str, Any]:
    """Connections and message counters of every live process."""
    if not settings.REDIS_URL:
        return local()
    try:
        reports = _redis().hvals(processes_key(realtime_settings.REDIS_PREFIX))
    except redis.RedisError as exc:
        logger.warning("Reading the processes' counts failed: %s", exc)
        return local()
    totals = sum_process_reports(reports, now=time.time())
    return totals if totals["processes"] else local()
