"""What /health and /stats report: with Redis, the totals of every server
process sharing it (each reports its own counts, see realtime.registry);
without, this process' own. Channels other than the public ones are shown
to services and staff only (`visible_connections`)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from .conf import realtime_settings
from .node import local_report
from .redis_clients import Outage
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


# The database is probed in one thread of its own: a database that hangs
# holds that one thread (until the driver's connect timeout), not one per
# /health request, and /health stops waiting for it after HEALTH_TIMEOUT.
_database_prober = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health-database")
_probe_lock = threading.Lock()
_probe: Future[str | None] | None = None
_migrated = False  # once seen migrated, only reachability is checked
_database_outage = Outage(logger, "The database check of /health")


def _probe_database() -> str | None:
    global _migrated
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not _migrated:
            executor = MigrationExecutor(connection)
            missing = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if missing:
                return (
                    f"The database is not migrated: {len(missing)} migration(s) not applied "
                    "(run manage.py migrate)."
                )
            _migrated = True
    except Exception as exc:
        _database_outage.failed(exc)
        # The driver's message may name hosts and users: it goes to the log only.
        return f"The database does not answer ({exc.__class__.__name__})."
    finally:
        connection.close()
    _database_outage.succeeded()
    return None


def start_database_probe() -> Future[str | None]:
    """Probe the database (SELECT 1, and the migrations until they are all
    applied), or join the probe under way."""
    global _probe
    with _probe_lock:
        if _probe is None or _probe.done():
            _probe = _database_prober.submit(_probe_database)
        return _probe


def database_problem(probe: Future[str | None], *, deadline: float) -> str | None:
    """None when the database answered by `deadline` (time.monotonic());
    else why not."""
    try:
        return probe.result(timeout=max(deadline - time.monotonic(), 0))
    except FutureTimeout:
        return f"The database did not answer within {realtime_settings.HEALTH_TIMEOUT:g} seconds."


def problems() -> tuple[str | None, str | None]:
    """(Redis' problem, the database's problem), each None when it answers;
    checked at once, within HEALTH_TIMEOUT seconds together."""
    deadline = time.monotonic() + realtime_settings.HEALTH_TIMEOUT
    probe = start_database_probe()
    layer = channel_layer_problem()
    return layer, database_problem(probe, deadline=deadline)


def visible_connections(connections: dict[str, Any], *, every_channel: bool) -> dict[str, Any]:
    """`connections` as a caller may see them: the total, and the count of
    every channel for a service or staff, of public channels only for anyone
    else (who is on `user.<id>` or `job.<id>` is nobody else's business)."""
    if every_channel:
        return connections
    public = set(realtime_settings.PUBLIC_CHANNELS)
    return {
        "total": connections["total"],
        "by_channel": {
            channel: count
            for channel, count in connections["by_channel"].items()
            if channel in public
        },
    }


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
