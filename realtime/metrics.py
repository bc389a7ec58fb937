"""
GET /metrics: this process' numbers in the Prometheus text format.

Nothing is counted here. A prometheus_client Collector reads, at scrape time,
what the process keeps anyway: the node's report (connections, sockets per
channel, the message counters of realtime.hub.Counters), realtime.instruments
(closes and errors by code, the delivery latency histogram), the outbox table
and a Redis ping. The delivery path pays nothing for a metric nobody scrapes.

Labels never name a user or a job: subscriptions are reported for the public
channels only (REALTIME["PUBLIC_CHANNELS"]), errors by code, closes by code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from rest_framework.renderers import BaseRenderer

from . import instruments
from .conf import realtime_settings
from .health import channel_layer_problem
from .models import OutboxMessage, OutboxStatus
from .node import local_report
from .protocol import CloseCode, ErrorCode

logger = logging.getLogger(__name__)

PREFIX = "paychain_realtime"

# The counters of realtime.hub.Counters, as Prometheus counters.
MESSAGE_COUNTERS = {
    "published": ("publications", "Publications this process made (one per channel)."),
    "delivered": ("deliveries", "Messages this process handed to its sockets."),
    "received": ("frames_received", "Client frames this process received."),
    "slow_disconnects": ("slow_disconnects", "Sockets cut off as slow consumers."),
    "resyncs": ("resyncs", "Channels told to resync after publications were lost."),
}


def _codes(constants: type) -> list[str]:
    """The values of a class of protocol constants, as label values."""
    return sorted(
        str(value)
        for name, value in vars(constants).items()
        if name.isupper() and isinstance(value, (str, int))
    )


class RealtimeCollector(Collector):
    """Yields this process' metrics from the counters it already keeps."""

    def collect(self) -> Iterator[Metric]:
        report = local_report()
        yield GaugeMetricFamily(
            f"{PREFIX}_connections", "Open sockets on this process.", value=report["total"]
        )
        subscriptions = GaugeMetricFamily(
            f"{PREFIX}_subscriptions",
            "Sockets of this process subscribed to each public channel.",
            labels=["channel"],
        )
        by_channel = report["by_channel"]
        for channel in sorted(set(realtime_settings.PUBLIC_CHANNELS)):
            subscriptions.add_metric([channel], by_channel.get(channel, 0))
        yield subscriptions
        yield GaugeMetricFamily(
            f"{PREFIX}_channels",
            "Channels with at least one socket on this process.",
            value=len(by_channel),
        )
        messages = report["messages"]
        for key, (name, documentation) in MESSAGE_COUNTERS.items():
            yield CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=messages.get(key, 0))
        yield from self.by_code(
            f"{PREFIX}_disconnects",
            "Sockets closed, by close code: the server's (4xxx) and the clients' own.",
            _codes(CloseCode),
            {str(code): n for code, n in instruments.disconnects.items()},
        )
        yield from self.by_code(
            f"{PREFIX}_errors",
            "`error` messages sent to sockets, by code.",
            _codes(ErrorCode),
            dict(instruments.errors),
        )
        yield from instruments.delivery_latency.collect()
        yield from self.outbox()
        yield from self.redis()

    @staticmethod
    def by_code(
        name: str, documentation: str, known: list[str], counts: dict[str, int]
    ) -> Iterator[Metric]:
        family = CounterMetricFamily(name, documentation, labels=["code"])
        for code in sorted(set(known) | set(counts)):
            family.add_metric([code], counts.get(code, 0))
        yield family

    @staticmethod
    def outbox() -> Iterator[Metric]:
        """Rows of the outbox waiting to be published, and given up on."""
        try:
            counts = dict(
                OutboxMessage.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED])
                .values_list("status")
                .annotate(n=Count("pk"))
                .order_by()
            )
        except DatabaseError as exc:
            logger.warning("Counting the outbox for /metrics failed: %s", exc)
            return
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_pending",
            "Outbox rows waiting to be published.",
            value=counts.get(OutboxStatus.PENDING, 0),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_failed",
            "Outbox rows marked failed (the admin can retry them).",
            value=counts.get(OutboxStatus.FAILED, 0),
        )

    @staticmethod
    def redis() -> Iterator[Metric]:
        """1 while Redis answers a ping, 0 when it does not; absent without
        Redis (the in-memory channel layer)."""
        if not settings.REDIS_URLS:
            return
        yield GaugeMetricFamily(
            f"{PREFIX}_redis_up",
            "1 when Redis answers this process, else 0.",
            value=0 if channel_layer_problem() else 1,
        )


registry = CollectorRegistry()
registry.register(RealtimeCollector())
# CPU, memory, open files and start time of this process (Linux).
ProcessCollector(registry=registry)


def render() -> bytes:
    """The registry in the Prometheus text format (version 0.0.4)."""
    return generate_latest(registry)


# The media type of the Prometheus text format, version 0.0.4.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class TextRenderer(BaseRenderer):
    """Lets a scraper's `Accept: text/plain` through DRF's content
    negotiation; an error then answers its `{"detail", "code"}` as JSON text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()
