"""
Log filters: one warning per Redis outage instead of a traceback a second.

channels-redis' pub/sub layer logs every failed read of its receive task with
a traceback, once a second while Redis is away. `RedisOutageFilter`, set on
the `channels_redis` logger (paychain.settings.LOGGING), lets the first such
record through as one line, counts the rest, and says how many were
swallowed when a record of another kind (or none for a while) shows Redis
is back. Records that are not about an unreachable Redis pass untouched.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# A failure this long after the previous one starts a new outage.
QUIET_SECONDS = 30.0


class RedisOutageFilter(logging.Filter):
    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.swallowed = 0
        self.last = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, UNREACHABLE):
            return True
        now = time.monotonic()
        new_outage = now - self.last > QUIET_SECONDS
        self.last = now
        if not new_outage:
            self.swallowed += 1
            return False
        before, self.swallowed = self.swallowed, 0
        record.msg = "%s: Redis unreachable (%s: %s)%s"
        record.args = (
            record.getMessage(),
            exc.__class__.__name__,
            exc,
            f"; {before} similar failure(s) of the previous outage not logged" if before else "",
        )
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
