"""GET /metrics: this process' numbers in the Prometheus text format."""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from realtime.models import OutboxMessage, OutboxStatus
from realtime.services import apublish

from .factories import make_superuser, make_worker
from .sockets import open_socket, subscribed_socket

KEY = "metrics-service-key"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.REALTIME = {
        **settings.REALTIME,
        "BROADCAST_API_KEYS": [KEY],
        "RELAY_IN_PROCESS": False,
    }


def scrape() -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The text of /metrics (with the service key) and its samples by (name, labels)."""
    response = APIClient().get("/metrics", HTTP_AUTHORIZATION=f"Api-Key {KEY}")
    assert response.status_code == 200, response.content
    text = response.content.decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


ascrape = sync_to_async(scrape)


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_a_service_key_or_a_staff_jwt():
    client = APIClient()
    assert client.get("/metrics").status_code == 401
    wrong_key = client.get("/metrics", HTTP_AUTHORIZATION="Api-Key nope")
    assert wrong_key.status_code == 403
    worker = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(make_worker())}"
    )
    assert worker.status_code == 403
    assert worker.json()["code"] == "permission_denied"
    staff = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(make_superuser())}"
    )
    assert staff.status_code == 200
    keyed = client.get("/metrics/", HTTP_AUTHORIZATION=f"Api-Key {KEY}")
    assert keyed.status_code == 200


def test_metrics_are_the_prometheus_text_format_a_scraper_asks_for():
    response = APIClient().get(
        "/metrics",
        HTTP_AUTHORIZATION=f"Api-Key {KEY}",
        # What Prometheus 2 and 3 send.
        HTTP_ACCEPT="application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,"
        "*/*;q=0.1",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "paychain_realtime_connections",
        "paychain_realtime_subscriptions",
        "paychain_realtime_publications",
        "paychain_realtime_deliveries",
        "paychain_realtime_delivery_latency_seconds",
        "paychain_realtime_disconnects",
        "paychain_realtime_errors",
        "paychain_realtime_outbox_pending",
        "paychain_realtime_outbox_failed",
    } <= names
    text = response.content.decode()
    assert "# TYPE paychain_realtime_publications_total counter" in text
    assert "# TYPE paychain_realtime_delivery_latency_seconds histogram" in text


async def test_a_session_shows_in_connections_subscriptions_deliveries_errors_and_closes():
    _, before = await ascrape()
    watcher = await subscribed_socket("jobs")
    await watcher.send_to(text_data="not json")
    assert (await watcher.receive_json_from())["data"]["code"] == "invalid_json"
    _, during = await ascrape()
    assert value(during, "paychain_realtime_connections") == 1
    assert value(during, "paychain_realtime_subscriptions", channel="jobs") == 1
    assert value(during, "paychain_realtime_subscriptions", channel="announcements") == 0
    errors = "paychain_realtime_errors_total"
    assert (
        value(during, errors, code="invalid_json") == value(before, errors, code="invalid_json") + 1
    )
    # Every known code is there from the start, at 0 until it happens.
    assert (errors, (("code", "slow_consumer"),)) in during
    await watcher.disconnect()
    _, after = await ascrape()
    assert value(after, "paychain_realtime_connections") == 0
    closes = "paychain_realtime_disconnects_total"
    assert value(after, closes, code="1000") == value(before, closes, code="1000") + 1


async def test_the_server_s_own_closes_are_counted_by_their_code(settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_FRAME_BYTES": 100}
    _, before = await ascrape()
    socket, _ = await open_socket()
    await socket.send_to(text_data='{"type":"ping","data":{"pad":"' + "x" * 200 + '"}}')
    assert (await socket.receive_json_from())["data"]["code"] == "message_too_big"
    assert (await socket.receive_output())["code"] == 4013
    await socket.disconnect(code=4013)
    _, after = await ascrape()
    closes = "paychain_realtime_disconnects_total"
    # Counted once: when the server decided it, not again when the socket went.
    assert value(after, closes, code="4013") == value(before, closes, code="4013") + 1
    errors = "paychain_realtime_errors_total"
    assert value(after, errors, code="message_too_big") == (
        value(before, errors, code="message_too_big") + 1
    )


async def test_latency_is_observed_once_per_publication_however_many_sockets_take_it():
    sockets = [await subscribed_socket("jobs") for _ in range(3)]
    _, before = await ascrape()
    await apublish(type="tick", data={"n": 1}, channel="jobs")
    for socket in sockets:
        assert (await socket.receive_json_from())["type"] == "tick"
    _, after = await ascrape()
    count = "paychain_realtime_delivery_latency_seconds_count"
    assert value(after, count) == value(before, count) + 1
    assert value(after, "paychain_realtime_deliveries_total") == (
        value(before, "paychain_realtime_deliveries_total") + 3
    )
    assert value(after, "paychain_realtime_publications_total") == (
        value(before, "paychain_realtime_publications_total") + 1
    )
    for socket in sockets:
        await socket.disconnect()


async def test_no_label_names_a_user_or_a_job():
    user = await sync_to_async(make_worker)()
    socket, hello = await open_socket(f"/ws?token={AccessToken.for_user(user)}")
    assert hello["data"]["user_id"] == user.pk
    await socket.send_json_to({"type": "subscribe", "channels": ["jobs"]})
    await socket.receive_json_from()
    text, samples = await ascrape()
    assert value(samples, "paychain_realtime_channels") == 2  # user.<id> and jobs
    assert "user." not in text
    assert "job." not in text
    await socket.disconnect()


def test_outbox_rows_waiting_and_failed_are_gauges():
    _, before = scrape()
    OutboxMessage.objects.create(type="t", key="k", channels=["jobs"])
    OutboxMessage.objects.create(type="t", key="k", channels=["jobs"], status=OutboxStatus.FAILED)
    _, after = scrape()
    assert value(after, "paychain_realtime_outbox_pending") == (
        value(before, "paychain_realtime_outbox_pending") + 1
    )
    assert value(after, "paychain_realtime_outbox_failed") == (
        value(before, "paychain_realtime_outbox_failed") + 1
    )


def test_redis_up_says_whether_redis_answers(settings, redis_url):
    _, samples = scrape()
    assert ("paychain_realtime_redis_up", ()) not in samples  # no Redis: the in-memory layer
    settings.REDIS_URLS = [redis_url]
    _, samples = scrape()
    assert value(samples, "paychain_realtime_redis_up") == 1
    settings.REDIS_URLS = ["redis://127.0.0.1:1/0"]  # nothing listens there
    _, samples = scrape()
    assert samples[("paychain_realtime_redis_up", ())] == 0


@pytest.mark.parametrize("server_kind", ["uvicorn"])
def test_a_live_server_is_scraped_with_its_service_key(server_factory):
    server = server_factory(BROADCAST_API_KEYS=KEY)
    assert httpx.get(server.url + "/metrics").status_code == 401
    response = httpx.get(server.url + "/metrics", headers={"Authorization": f"Api-Key {KEY}"})
    assert response.status_code == 200
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.labels
    }
    assert samples["paychain_realtime_redis_up"] == 1
    assert samples["paychain_realtime_connections"] == 0
    assert "process_resident_memory_bytes" in samples
