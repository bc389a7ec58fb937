"""
Who may subscribe to which channel: the rules, in one place.

* public channels (`jobs`, `announcements`, and REALTIME["PUBLIC_CHANNELS"]):
  everyone, anonymous sockets included;
* `payments`: employers;
* `user.<id>`: that user only (their personal channel);
* `job.<id>`: that job's employer and its worker;
* anything else: nobody, unless the project's own rule function
  (REALTIME["CHANNEL_RULE"], a dotted path) allows it.

A project rule is called as `rule(user, channel)` and returns True (allow),
False (refuse) or None (no opinion: the built-in rules decide). It runs in a
thread and may use the ORM.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.utils.module_loading import import_string

from .conf import realtime_settings

USER_CHANNEL_RE = re.compile(r"user\.(\d{1,18})")
JOB_CHANNEL_RE = re.compile(r"job\.(\d{1,18})")
EMPLOYERS_ONLY = frozenset({"payments"})


def personal_channel(user_id: int) -> str:
    return f"user.{user_id}"


def _project_rule() -> Callable[[Any, str], bool | None] | None:
    path = realtime_settings.CHANNEL_RULE
    return import_string(path) if path else None


def can_subscribe(user: Any, channel: str) -> bool:
    """The rules above, synchronously (may query the database)."""
    user = user or AnonymousUser()
    rule = _project_rule()
    if rule is not None:
        verdict = rule(user, channel)
        if verdict is not None:
            return bool(verdict)
    if channel in realtime_settings.PUBLIC_CHANNELS:
        return True
    if not user.is_authenticated:
        return False
    if channel in EMPLOYERS_ONLY:
        return getattr(user, "user_type", None) == "employer"
    match = USER_CHANNEL_RE.fullmatch(channel)
    if match:
        return int(match.group(1)) == user.pk
    match = JOB_CHANNEL_RE.fullmatch(channel)
    if match:
        from jobs.models import Job

        return (
            Job.objects.filter(pk=int(match.group(1)))
            .filter(Q(employer_id=user.pk) | Q(worker_id=user.pk))
            .exists()
        )
    return False


def _needs_database(channel: str) -> bool:
    return JOB_CHANNEL_RE.fullmatch(channel) is not None or bool(realtime_settings.CHANNEL_RULE)


async def acan_subscribe(user: Any, channel: str) -> bool:
    """`can_subscribe` for consumers: hops to a thread only when a rule needs
    the database."""
    if _needs_database(channel):
        return bool(await database_sync_to_async(can_subscribe)(user, channel))
    return can_subscribe(user, channel)
