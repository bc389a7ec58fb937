"""What /health and /stats report: with Redis, the totals of every server
process sharing it (each reports its own counts, see realtime.registry);
without, this process' own."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from django.conf import settings

from .conf import realtime_settings
from .node import local_report
from .redis_clients import sync_client as _redis
from .registry import processes_key, sum_process_reports

logger = logging.getLogger(__name__)


def channel_layer_problem() -> str | None:
    """None when the channel layer answers; else why not."""
    if not settings.REDIS_URLS:
        return None
    try:
        _redis().ping()
    except redis.RedisError as exc:
        return f"Redis does not answer: {exc.__class__.__name__}: {exc}"
    return None


def local() -> dict[str, Any]:
    report = local_report()
    return {
        "connections": {"total": report["total"], "by_channel": report["by_channel"]},
        "messages": report["messages"],
        "processes": 1,
    }


def cluster() -> dict[str, Any]:
    """Connections and message counters of every live process."""
    if not settings.REDIS_URLS:
        return local()
    try:
        reports = _redis().hvals(processes_key(realtime_settings.REDIS_PREFIX))
    except redis.RedisError as exc:
        logger.warning("Reading the processes' counts failed: %s", exc)
        return local()
    totals = sum_process_reports(reports, now=time.time())
    return totals if totals["processes"] else local()
