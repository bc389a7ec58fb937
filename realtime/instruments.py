"""
What the hot paths record for /metrics, as cheaply as possible.

The per-process message counters live in `realtime.hub.Counters` (also
reported by /stats); this module keeps the few things they do not: closes by
close code, `error` messages by code, and the delivery latency histogram (one
observation per publication per process, when the node hands it to its
sockets; never one per socket). `realtime.metrics` reads all of it at scrape
time.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from prometheus_client import Histogram

# Seconds from publication (the layer message's `ts`) to the hand-off to this
# process' sockets: sub-millisecond in one process, a Redis round trip or two
# between processes.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Not registered anywhere: realtime.metrics' collector yields it at scrape time.
delivery_latency = Histogram(
    "paychain_realtime_delivery_latency_seconds",
    "Seconds from publish to the write to this process' sockets (once per publication).",
    buckets=LATENCY_BUCKETS,
    registry=None,
)

# Connections closed, by close code: the server's own closes (4001, 4008,
# 4009, 4013, 4029, 4503) when it decides them, the client's (1000, 1001,
# 1006, ...) when it goes.
disconnects: Counter[int] = Counter()
# `error` messages sent, by code (realtime.protocol.ErrorCode).
errors: Counter[str] = Counter()


def delivered(message: dict[str, Any]) -> None:
    """The node handed a layer message to its sockets: observe its latency
    from the `ts` it carries (realtime.broker.layer_message: seconds since the
    epoch; the processes of one deployment share a clock)."""
    sent = message.get("ts")
    if sent is not None:
        delivery_latency.observe(max(0.0, time.time() - sent))
