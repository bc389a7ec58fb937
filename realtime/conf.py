"""
The realtime server's settings, in one namespace.

Projects set any of these in `settings.REALTIME` (a dict); everything not set
there takes the default below. Read them through `realtime_settings.NAME`,
in the manner of DRF's `api_settings`.
"""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Largest client frame accepted, in bytes (UTF-8). Larger: error
    # `message_too_big`, then close 4013.
    "MAX_FRAME_BYTES": 64 * 1024,
    # Largest publication `data`, serialized as JSON, in bytes (UTF-8). Larger:
    # POST /broadcast answers 413 `payload_too_large`; nothing is published.
    "MAX_PUBLICATION_BYTES": 64 * 1024,
    # Service keys for POST /broadcast (`Authorization: Api-Key <key>`).
    # Empty: open while DEBUG is on, refused (503) when it is off.
    "BROADCAST_API_KEYS": [],
    # Seconds a channel-layer call (publish, join) may take before the request
    # that made it answers 503.
    "LAYER_TIMEOUT": 4.0,
    # Seconds the health probes (Redis and the database, at once) may take
    # before /health answers 503.
    "HEALTH_TIMEOUT": 3.0,
    # Paths where every error answers `{"detail", "code"}` JSON, never an
    # HTML page (realtime.exceptions); prefixes.
    "JSON_ERROR_PATHS": ["/api/", "/broadcast", "/health", "/stats"],
    # Prefix of every Redis key and pub/sub channel this project uses.
    "REDIS_PREFIX": "paychain",
    # Channels anyone may subscribe to, anonymous sockets included.
    "PUBLIC_CHANNELS": ["jobs", "announcements"],
    # Dotted path of a project rule `rule(user, channel) -> True | False | None`
    # consulted before the built-in channel permissions (realtime.permissions).
    "CHANNEL_RULE": None,
    # Sockets without a token (or session) are allowed.
    "ALLOW_ANONYMOUS": True,
    # With ALLOW_ANONYMOUS off, seconds a socket opened without credentials
    # has to send its first frame, `auth` with a token; anything else, or
    # nothing in time: `unauthorized`, then close 4001.
    "AUTH_TIMEOUT": 10.0,
    # More than RATE_LIMIT_FRAMES client frames in any RATE_LIMIT_SECONDS:
    # close 4008.
    "RATE_LIMIT_FRAMES": 100,
    "RATE_LIMIT_SECONDS": 10.0,
    # Subscriptions per socket, its personal channel not counted.
    "MAX_SUBSCRIPTIONS": 100,
    # Bytes waiting in the server for one socket (beyond what its transport
    # holds). Past it the socket is a slow consumer: `error` `slow_consumer`,
    # then close 4009 (dropped if that close cannot be written within 5 s).
    "MAX_SOCKET_BUFFER_BYTES": 1024 * 1024,
    # Keys that encrypt publications at rest in Redis: the channel layer's
    # messages and the history (realtime.crypto). Empty: no encryption.
    "ENCRYPTION_KEYS": [],
    # Open sockets per user, across every process sharing Redis; the newest
    # beyond it is closed with 4029.
    "MAX_SOCKETS_PER_USER": 20,
    # Open sockets per client address, in each server process; the next one
    # gets `too_many_connections` and close 4029. None or 0: no cap.
    "MAX_SOCKETS_PER_IP": None,
    # Proxies (addresses or networks, `10.0.0.0/8`) whose `X-Forwarded-For`
    # names the client (realtime.peers); empty: the peer is the client.
    "TRUSTED_PROXIES": [],
    # Seconds between checks that the sessions of session-authenticated
    # sockets still live (realtime.sessions): a socket ends at most about this
    # long after its session's logout or expiry.
    "SESSION_CHECK_INTERVAL": 15.0,
    # Thresholds of the cyclic garbage collector in server processes (see
    # realtime.startup.tune_process); None leaves Python's defaults. Each
    # generation-0 collection stops the loop for a time that grows with the
    # first number: 50,000 stopped it for 40-80 ms (POST /broadcast's p99 under
    # wrk: 75 ms; with 5,000: 16 ms, at the same CPU, and no more CPU per
    # delivery with 10,000 sockets).
    "GC_THRESHOLD": (5_000, 20, 20),
    # Publications kept per channel for recovery, and for how many seconds.
    "HISTORY_SIZE": 100,
    "HISTORY_TTL": 600,
    # Channels that keep presence (fnmatch patterns).
    "PRESENCE_CHANNELS": ["job.*", "user.*"],
    # The outbox of durable job events (realtime.outbox). Start its relay in
    # each server process, on the first connection or request.
    "RELAY_IN_PROCESS": True,
    # Seconds between the relay's polls of the outbox (it is also woken at
    # once by each commit in its own process).
    "OUTBOX_POLL_INTERVAL": 1.0,
    # Rows a relay claims at once, and for how many seconds its claim holds
    # (a relay that dies holding rows delays them this long; at least
    # LAYER_TIMEOUT + 5).
    "OUTBOX_BATCH_SIZE": 100,
    "OUTBOX_LEASE": 30.0,
    # Failed attempts (other than the channel layer being down) after which
    # a row is marked `failed`.
    "OUTBOX_MAX_ATTEMPTS": 5,
    # Longest wait, in seconds, between attempts: the backoff while the
    # channel layer is down, and before retrying a failed row.
    "OUTBOX_RETRY_MAX": 5.0,
    # Seconds published rows are kept before they are pruned.
    "OUTBOX_RETENTION": 3600,
}


class RealtimeSettings:
    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid REALTIME setting: {name!r}")
        if name not in self._cache:
            user = getattr(settings, "REALTIME", {}) or {}
            self._cache[name] = user.get(name, DEFAULTS[name])
        return self._cache[name]

    def reload(self) -> None:
        self._cache.clear()


realtime_settings = RealtimeSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "REALTIME":
        realtime_settings.reload()


setting_changed.connect(_reload)
