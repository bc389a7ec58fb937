"""
The transactional outbox: durable events, published after commit.

`outbox_enqueue` writes an event to the `OutboxMessage` table in the caller's
transaction, so the event exists if and only if the change it announces
committed. A relay then publishes it through the publishing service:

* it claims pending rows with a lease, in one conditional UPDATE, so any
  number of relays (threads, processes, machines) on one database never
  publish a row twice; a relay that dies leaves its rows to the others once
  the lease runs out;
* each row is published with its own `message_id` as the publication id, and
  the service delivers one id to a channel once: a relay that dies between
  publishing and marking does not deliver twice either;
* rows of one ordering key (one job) go out in id order: only the oldest
  pending row of a key is ever claimed, so a row that failed holds back the
  later rows of its key until it is published or marked `failed`;
* the channel layer or Redis being unreachable (LayerUnavailableError) is not the
  row's fault: the relay backs off and retries for as long as it takes,
  counting nothing; any other error (PublishFailedError: Redis answered with an
  error such as WRONGTYPE, or a bug; a row that cannot be published) counts
  an attempt of that row only, the relay goes on with the other rows, and
  after OUTBOX_MAX_ATTEMPTS (default 5) the row is marked `failed` with its
  error (the admin can send it back to pending);
* published rows are pruned after OUTBOX_RETENTION seconds, idempotency
  records of POST /broadcast after a day.

Each server process runs a relay in its event loop (`with_relay` wraps the
ASGI application and starts it on the first scope), woken by each commit in
that process and polling every OUTBOX_POLL_INTERVAL seconds for the rest.
`manage.py relay_outbox` runs one outside the server.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.db import OperationalError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from . import protocol
from .conf import realtime_settings
from .idempotency import IDEMPOTENCY_TTL
from .models import IdempotencyRecord, OutboxMessage, OutboxStatus
from .services import LayerUnavailableError, apublish

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How often a running relay prunes, in seconds.
PRUNE_EVERY = 60.0


class NotPublishableError(ValueError):
    """A row the publishing service cannot send, whatever the channel layer does."""


def outbox_enqueue(
    *, type: str, data: dict[str, Any], channels: Sequence[str], key: str
) -> OutboxMessage:
    """Save an event to publish once the current transaction commits (at
    once outside one), never for a rolled-back change. Events of one `key`
    are published in the order they were enqueued."""
    message = OutboxMessage.objects.create(type=type, data=data, channels=list(channels), key=key)
    transaction.on_commit(wake_relay)
    return message


# --- The database side of a relay (sync; each call is one short statement
# or a few, in autocommit) -----------------------------------------------------


def _retrying_locks(operation: Callable[[], T]) -> T:
    """Run `operation`, retrying for a while when SQLite says the database or
    a table is locked (a busy writer elsewhere); other databases wait for
    locks on their own."""
    deadline = time.monotonic() + 2
    for pause in itertools.chain([0.005, 0.01, 0.02, 0.05], itertools.repeat(0.1)):
        try:
            return operation()
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")


def claim(*, owner: str, limit: int, lease: float) -> list[OutboxMessage]:
    """Claim up to `limit` publishable rows for `owner` until `lease` seconds
    from now: pending, not claimed by another relay nor waiting to be retried,
    and the oldest pending row of their key. Returns them in id order."""

    def run() -> list[OutboxMessage]:
        now = timezone.now()
        free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
        earlier = OutboxMessage.objects.filter(
            status=OutboxStatus.PENDING, key=OuterRef("key"), id__lt=OuterRef("id")
        )
        candidates = list(
            OutboxMessage.objects.filter(status=OutboxStatus.PENDING)
            .filter(free)
            .exclude(Exists(earlier))
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        if not candidates:
            return []
        # The conditional UPDATE is the claim: of two relays racing for a
        # row, the second finds its lease taken and updates nothing.
        OutboxMessage.objects.filter(pk__in=candidates, status=OutboxStatus.PENDING).filter(
            free
        ).update(lease_owner=owner, lease_until=now + timedelta(seconds=lease))
        return list(
            OutboxMessage.objects.filter(
                pk__in=candidates, status=OutboxStatus.PENDING, lease_owner=owner
            ).order_by("id")
        )

    return _retrying_locks(run)


def mark_published(message: OutboxMessage) -> None:
    _retrying_locks(
        lambda: OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.PUBLISHED,
            published_at=timezone.now(),
            lease_owner="",
            lease_until=None,
        )
    )


def mark_attempt_failed(message: OutboxMessage, *, owner: str, error: str) -> OutboxStatus:
    """Count a failed attempt: the row waits before its next one, or is
    marked failed after OUTBOX_MAX_ATTEMPTS. Returns its new status."""
    attempts = message.attempts + 1
    if attempts >= realtime_settings.OUTBOX_MAX_ATTEMPTS:
        status, retry_at = OutboxStatus.FAILED, None
    else:
        status = OutboxStatus.PENDING
        retry_at = timezone.now() + timedelta(seconds=retry_delay(attempts))
    _retrying_locks(
        lambda: OutboxMessage.objects.filter(
            pk=message.pk, status=OutboxStatus.PENDING, lease_owner=owner
        ).update(
            status=status,
            attempts=attempts,
            last_error=error[:2000],
            lease_owner="",
            lease_until=retry_at,
        )
    )
    return status


def release(messages: Sequence[OutboxMessage], *, owner: str, error: str = "") -> None:
    """Give claimed rows back without counting an attempt (the channel layer
    is down, or the lease is too short to publish them in time)."""
    if not messages:
        return
    changes: dict[str, Any] = {"lease_owner": "", "lease_until": None}
    if error:
        changes["last_error"] = error[:2000]
    _retrying_locks(
        lambda: OutboxMessage.objects.filter(
            pk__in=[m.pk for m in messages], status=OutboxStatus.PENDING, lease_owner=owner
        ).update(**changes)
    )


def prune() -> tuple[int, int]:
    """Delete published rows older than OUTBOX_RETENTION and idempotency
    records older than a day. Returns how many of each."""
    now = timezone.now()
    retention = timedelta(seconds=realtime_settings.OUTBOX_RETENTION)
    old_messages = OutboxMessage.objects.filter(
        status=OutboxStatus.PUBLISHED, published_at__lt=now - retention
    )
    old_keys = IdempotencyRecord.objects.filter(created_at__lt=now - IDEMPOTENCY_TTL)
    return (
        _retrying_locks(lambda: _delete(old_messages)),
        _retrying_locks(lambda: _delete(old_keys)),
    )


def _delete(queryset: QuerySet[Any]) -> int:
    # Look first: a DELETE takes SQLite's write lock even when it deletes nothing.
    return queryset.delete()[0] if queryset.exists() else 0


def retry_delay(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: 0.5, 1, 2, … up to OUTBOX_RETRY_MAX."""
    return float(min(0.5 * 2 ** max(attempts - 1, 0), realtime_settings.OUTBOX_RETRY_MAX))


def check_publishable(message: OutboxMessage) -> None:
    """Refuse a row the publishing service could only fail on: a malformed
    type or channel, data that is not an object."""
    if not isinstance(message.type, str) or not protocol.MESSAGE_TYPE_RE.fullmatch(message.type):
        raise NotPublishableError(f"Invalid message type {message.type!r}.")
    if not isinstance(message.data, dict):
        raise NotPublishableError("The data is not a JSON object.")
    if not isinstance(message.channels, list):
        raise NotPublishableError("The channels are not a list.")
    for channel in message.channels:
        if not protocol.is_valid_channel(channel):
            raise NotPublishableError(f"Invalid channel name {channel!r}.")


# --- The relay --------------------------------------------------------------------


@dataclass
class RelayResult:
    claimed: int = 0
    published: int = 0
    failed: int = 0  # attempts that failed, the channel layer being down not counted
    layer_error: str = ""  # set when the channel layer was down

    @property
    def layer_down(self) -> bool:
        return bool(self.layer_error)

    def add(self, other: RelayResult) -> None:
        self.claimed += other.claimed
        self.published += other.published
        self.failed += other.failed
        self.layer_error = other.layer_error


def _in_thread(function: Callable[..., T]) -> Callable[..., Any]:
    # Channels' default: the process' one thread for sync code outside a
    # request, with Django's connection housekeeping around each call.
    return database_sync_to_async(function)


class Relay:
    """Publishes outbox rows. One relay handles one batch at a time; run as
    many relays as you like."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"{socket.gethostname()[:50]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claims = itertools.count(1)

    async def relay_batch(self) -> RelayResult:
        """Claim one batch and publish it."""
        owner = f"{self.name}#{next(self._claims)}"
        # Long enough to publish at least one row (a publish may take LAYER_TIMEOUT).
        lease = max(realtime_settings.OUTBOX_LEASE, realtime_settings.LAYER_TIMEOUT + 5)
        claimed_at = time.monotonic()
        batch = await _in_thread(claim)(
            owner=owner, limit=realtime_settings.OUTBOX_BATCH_SIZE, lease=lease
        )
        result = RelayResult(claimed=len(batch))
        for index, message in enumerate(batch):
            # Publish only while the lease surely outlasts the publish, so
            # that no other relay takes a row of the same key meanwhile.
            remaining = lease - (time.monotonic() - claimed_at)
            if remaining < realtime_settings.LAYER_TIMEOUT + 1:
                await _in_thread(release)(batch[index:], owner=owner)
                break
            try:
                check_publishable(message)
                await apublish(
                    type=message.type,
                    data=message.data,
                    channels=message.channels,
                    message_id=str(message.message_id),
                )
            except LayerUnavailableError as exc:
                result.layer_error = str(exc)
                await _in_thread(release)(
                    batch[index:], owner=owner, error=f"LayerUnavailableError: {exc}"
                )
                break
            except Exception as exc:
                result.failed += 1
                error = f"{exc.__class__.__name__}: {exc}"
                status = await _in_thread(mark_attempt_failed)(message, owner=owner, error=error)
                if status == OutboxStatus.FAILED:
                    logger.error(
                        "Outbox message %s (%r, %s) failed %s times and is marked failed: %s",
                        message.pk,
                        message.type,
                        message.key,
                        message.attempts + 1,
                        error,
                    )
                else:
                    logger.warning(
                        "Outbox message %s (%r, %s) failed (attempt %s), will retry: %s",
                        message.pk,
                        message.type,
                        message.key,
                        message.attempts + 1,
                        error,
                    )
                continue
            await _in_thread(mark_published)(message)
            result.published += 1
        return result

    async def drain(self) -> RelayResult:
        """Publish batches until nothing is left to claim now, or the
        channel layer is down."""
        total = RelayResult()
        while True:
            result = await self.relay_batch()
            total.add(result)
            if result.layer_down or not result.claimed:
                return total

    async def run(self, wake: asyncio.Event) -> None:
        """Relay forever: at once when `wake` is set, otherwise every
        OUTBOX_POLL_INTERVAL seconds; back off while the channel layer is
        down; prune now and then. Survives database and layer outages."""
        logger.info("Outbox relay %s started", self.name)
        backoff = 0.0
        database_failing = False
        next_prune = 0.0
        while True:
            wake.clear()
            try:
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY
                    pruned, keys = await _in_thread(prune)()
                    if pruned or keys:
                        logger.info(
                            "Pruned %s published outbox message(s), %s idempotency key(s)",
                            pruned,
                            keys,
                        )
                result = await self.relay_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not database_failing:
                    logger.warning("Outbox relay cannot reach the database: %s", exc)
                database_failing = True
                await asyncio.sleep(realtime_settings.OUTBOX_POLL_INTERVAL)
                continue
            if database_failing:
                logger.info("Outbox relay reaches the database again")
                database_failing = False
            if result.layer_down:
                if not backoff:
                    logger.warning(
                        "Channel layer unavailable; outbox messages wait, retrying: %s",
                        result.layer_error,
                    )
                backoff = min(max(backoff * 2, 0.5), realtime_settings.OUTBOX_RETRY_MAX)
                await asyncio.sleep(backoff)
                continue
            if backoff:
                logger.info("Channel layer is back; outbox relay resumes")
                backoff = 0.0
            if result.claimed:
                continue  # more may be waiting
            try:
                async with asyncio.timeout(realtime_settings.OUTBOX_POLL_INTERVAL):
                    await wake.wait()
            except TimeoutError:
                pass


# --- The relay inside a server process -----------------------------------------------


@dataclass
class _Running:
    loop: asyncio.AbstractEventLoop
    task: asyncio.Task[None]
    wake: asyncio.Event


_running: _Running | None = None


def start_relay() -> None:
    """Start this process' relay in the running event loop, unless it runs
    there already."""
    global _running
    loop = asyncio.get_running_loop()
    running = _running
    if running is not None and running.loop is loop and not running.task.done():
        return
    wake = asyncio.Event()
    task = loop.create_task(Relay().run(wake), name="outbox-relay")
    _running = _Running(loop=loop, task=task, wake=wake)


def wake_relay() -> None:
    """Tell this process' relay (if it runs) that rows were committed.
    Callable from any thread."""
    running = _running
    if running is None or running.loop.is_closed() or running.task.done():
        return
    try:
        running.loop.call_soon_threadsafe(running.wake.set)
    except RuntimeError:
        pass  # the loop closed meanwhile


def with_relay(application: Any) -> Any:
    """Wrap the ASGI application: the first scope of any kind (daphne sends
    no lifespan) starts the process' relay in the server's event loop, unless
    REALTIME["RELAY_IN_PROCESS"] is off."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if realtime_settings.RELAY_IN_PROCESS:
            start_relay()
        return await application(scope, receive, send)

    return app
