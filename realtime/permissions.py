"""
Who may subscribe to which channel: the rules, in one place.

* public channels (`jobs`, `announcements`, and REALTIME["PUBLIC_CHANNELS"]):
  everyone, anonymous sockets included;
* `payments`: employers;
* `user.<id>`: that user only (their personal channel);
* channels of a registered pattern (`register_channel_rule`): what that
  app's rule says; the jobs app registers `job.<id>` (that job's employer and
  its worker), so this module knows no marketplace;
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
from django.utils.module_loading import import_string

from .conf import realtime_settings

USER_CHANNEL_RE = re.compile(r"user\.(\d{1,18})")
EMPLOYERS_ONLY = frozenset({"payments"})

# (pattern, rule(user, match) -> bool, needs the database), registered by apps.
ChannelRule = Callable[[Any, "re.Match[str]"], bool]
_rules: list[tuple[re.Pattern[str], ChannelRule, bool]] = []


def register_channel_rule(pattern: str, rule: ChannelRule, *, needs_database: bool = True) -> None:
    """Let an app decide who may subscribe to the channels that fully match
    `pattern` (a regular expression) among authenticated users. The rule is
    called as `rule(user, match)`; with `needs_database` it runs in a thread."""
    compiled = re.compile(pattern)
    _rules[:] = [r for r in _rules if r[0].pattern != compiled.pattern]
    _rules.append((compiled, rule, needs_database))


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
    for pattern, app_rule, _ in _rules:
        found = pattern.fullmatch(channel)
        if found:
            return bool(app_rule(user, found))
    return False


def _needs_database(channel: str) -> bool:
    if realtime_settings.CHANNEL_RULE:
        return True
    return any(needs and pattern.fullmatch(channel) for pattern, _, needs in _rules)


async def acan_subscribe(user: Any, channel: str) -> bool:
    """`can_subscribe` for consumers: hops to a thread only when a rule needs
    the database."""
    if _needs_database(channel):
        return bool(await database_sync_to_async(can_subscribe)(user, channel))
    return can_subscribe(user, channel)
