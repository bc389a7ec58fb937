"""POST /broadcast, GET /health and GET /stats through DRF's test client."""

from __future__ import annotations

import logging
import threading

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from realtime import health

from .factories import make_employer, make_superuser
from .live import free_port
from .sockets import subscribed_socket

KEY = "service-key-one"


@pytest.fixture(autouse=True)
def _debug_on(settings):
    """The default development run: DEBUG on, no broadcast keys."""
    settings.DEBUG = True


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def keys(settings):
    settings.REALTIME = {**settings.REALTIME, "BROADCAST_API_KEYS": [KEY, "service-key-two"]}


def test_broadcast_accepts_the_seed_body_and_answers_202_with_an_id(client):
    response = client.post(
        "/broadcast",
        {"type": "test_message", "data": {"message": "Hello WebSocket!"}, "channel": "jobs"},
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["id"]
    assert response.json()["channel"] == "jobs"


@pytest.mark.parametrize("path", ["/broadcast", "/broadcast/"])
def test_broadcast_answers_with_and_without_trailing_slash(client, path):
    response = client.post(path, {"type": "x"}, format="json")
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "type"),
        ({"type": ""}, "type"),
        ({"type": "x" * 65}, "type"),
        ({"type": "has space"}, "type"),
        ({"type": "x", "data": None}, "data"),
        ({"type": "x", "data": [1, 2]}, "data"),
        ({"type": "x", "data": "text"}, "data"),
        ({"type": "x", "channel": "bad channel"}, "channel"),
        ({"type": "x", "channel": "c" * 81}, "channel"),
    ],
)
def test_invalid_broadcast_bodies_get_400_with_per_field_messages(client, body, field):
    response = client.post("/broadcast", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_broadcast_without_data_sends_an_empty_object(client):
    assert client.post("/broadcast", {"type": "x"}, format="json").status_code == 202


def test_broadcast_needs_a_key_when_keys_are_configured(client, keys):
    response = client.post("/broadcast", {"type": "x"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"


def test_broadcast_with_a_wrong_key_is_forbidden(client, keys):
    response = client.post(
        "/broadcast", {"type": "x"}, format="json", HTTP_AUTHORIZATION="Api-Key wrong"
    )
    assert response.status_code == 403


@pytest.mark.parametrize("key", [KEY, "service-key-two"])
def test_broadcast_with_any_configured_key_is_accepted(client, keys, key):
    response = client.post(
        "/broadcast", {"type": "x"}, format="json", HTTP_AUTHORIZATION=f"Api-Key {key}"
    )
    assert response.status_code == 202


def test_broadcast_without_keys_and_debug_off_is_503_saying_what_to_set(client, settings):
    settings.DEBUG = False
    response = client.post("/broadcast", {"type": "x"}, format="json")
    assert response.status_code == 503
    assert "BROADCAST_API_KEYS" in response.json()["detail"]


def test_broadcast_keys_never_reach_the_logs(client, keys, caplog):
    caplog.set_level(logging.DEBUG)
    for header in (f"Api-Key {KEY}", "Api-Key not-the-key", f"Api-Key {KEY} extra", KEY):
        client.post("/broadcast", {"type": "x"}, format="json", HTTP_AUTHORIZATION=header)
    assert KEY not in caplog.text
    assert "not-the-key" not in caplog.text


def test_broadcast_is_503_when_the_channel_layer_is_unreachable(client, settings):
    port = free_port()  # nothing listens there
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{port}/0"}]},
        }
    }
    response = client.post("/broadcast", {"type": "x"}, format="json")
    assert response.status_code == 503
    assert response.json()["detail"]
    assert response.json()["code"] == "channel_layer_unavailable"


def test_a_broadcast_redis_refuses_is_a_500_not_a_503_and_other_channels_still_work(
    client, redis_layer
):
    prefix, redis = redis_layer
    redis.set(f"{prefix}:stream:{{poisoned}}:meta", "x")  # WRONGTYPE for this channel
    refused = client.post("/broadcast", {"type": "x", "channel": "poisoned"}, format="json")
    assert refused.status_code == 500
    assert refused.json()["code"] == "publish_failed"
    assert "WRONGTYPE" not in refused.json()["detail"]  # Redis' words stay in the log
    accepted = client.post("/broadcast", {"type": "x", "channel": "jobs"}, format="json")
    assert accepted.status_code == 202


@pytest.mark.django_db  # /health checks the database
@pytest.mark.parametrize("path", ["/health", "/health/"])
def test_health_reports_the_seed_document(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "service": "websocket-server",
        "connections": {"total": 0, "by_channel": {}},
    }


def test_health_is_503_unhealthy_when_redis_does_not_answer(client, settings):
    settings.REDIS_URLS = [f"redis://127.0.0.1:{free_port()}/0"]
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert "Redis" in response.json()["reason"]


@pytest.mark.parametrize("path", ["/stats", "/stats/"])
def test_stats_reports_connections_and_message_counters(client, path):
    client.post("/broadcast", {"type": "x"}, format="json")
    response = client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["connections"] == {"total": 0, "by_channel": {}}
    assert body["messages"]["published"] >= 1
    assert set(body["messages"]) >= {"published", "delivered", "received", "errors_sent"}


# --- Who sees which channels on /health and /stats ----------------------------------------

ON_CHANNELS = {"jobs": 2, "announcements": 1, "news": 1, "user.7": 1, "job.3": 1, "payments": 1}


@pytest.fixture
def sockets_on_channels(monkeypatch):
    """This process holds sockets on public and private channels."""
    real = health.local_report

    def report() -> dict:
        return {**real(), "total": 7, "by_channel": dict(ON_CHANNELS)}

    monkeypatch.setattr(health, "local_report", report)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health", "/stats"])
def test_without_credentials_health_and_stats_show_totals_and_public_channels_only(
    client, settings, sockets_on_channels, path
):
    settings.REALTIME = {**settings.REALTIME, "PUBLIC_CHANNELS": ["jobs", "announcements", "news"]}
    body = client.get(path).json()
    assert body["connections"] == {
        "total": 7,
        "by_channel": {"jobs": 2, "announcements": 1, "news": 1},
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health", "/stats"])
@pytest.mark.parametrize("who", ["service key", "staff token"])
def test_a_service_key_or_a_staff_token_sees_every_channel(
    client, keys, sockets_on_channels, path, who
):
    if who == "service key":
        header = f"Api-Key {KEY}"
    else:
        header = f"Bearer {AccessToken.for_user(make_superuser())}"
    body = client.get(path, HTTP_AUTHORIZATION=header).json()
    assert body["connections"] == {"total": 7, "by_channel": ON_CHANNELS}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health", "/stats"])
def test_a_plain_users_token_sees_public_channels_only(client, sockets_on_channels, path):
    header = f"Bearer {AccessToken.for_user(make_employer())}"
    body = client.get(path, HTTP_AUTHORIZATION=header).json()
    assert body["connections"]["by_channel"] == {"jobs": 2, "announcements": 1}


# --- /health checks the database -------------------------------------------------------------


@pytest.mark.django_db
def test_health_is_503_naming_the_database_when_it_does_not_answer_in_time(
    client, settings, monkeypatch
):
    settings.REALTIME = {**settings.REALTIME, "HEALTH_TIMEOUT": 0.2}
    release = threading.Event()

    def hanging_database() -> None:
        release.wait(10)

    monkeypatch.setattr(health, "_probe_database", hanging_database)
    try:
        response = client.get("/health")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert "database did not answer within 0.2 seconds" in response.json()["reason"]


@pytest.mark.django_db
def test_broadcast_accepts_a_staff_users_jwt(client, keys):
    from rest_framework_simplejwt.tokens import AccessToken

    from .factories import make_superuser

    token = AccessToken.for_user(make_superuser())
    response = client.post(
        "/broadcast", {"type": "x"}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 202


@pytest.mark.django_db
def test_broadcast_refuses_a_non_staff_jwt_with_403(client, keys):
    from rest_framework_simplejwt.tokens import AccessToken

    from .factories import make_employer

    token = AccessToken.for_user(make_employer())
    response = client.post(
        "/broadcast", {"type": "x"}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 403


@pytest.mark.django_db  # a JWT is checked in a database thread
def test_broadcast_refuses_an_invalid_jwt_with_401(client, keys):
    response = client.post(
        "/broadcast", {"type": "x"}, format="json", HTTP_AUTHORIZATION="Bearer not.a.jwt"
    )
    assert response.status_code == 401


def test_broadcast_to_users_goes_to_their_personal_channels(client):
    response = client.post(
        "/broadcast", {"type": "x", "user_ids": [3, 4], "user_id": 2}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["channels"] == ["user.2", "user.3", "user.4"]


@pytest.mark.parametrize("body", [{"type": "x", "user_id": "me"}, {"type": "x", "user_ids": [0]}])
def test_broadcast_user_ids_must_be_positive_integers(client, body):
    assert client.post("/broadcast", body, format="json").status_code == 400


@pytest.mark.parametrize(
    "header",
    [
        f"Api-Key {KEY}",
        f"api-key {KEY}",
        f"Api-Key  {KEY}  ",
        f"Api-Key {KEY} trailing",
        f"Api-Key wrong{KEY}",
        KEY,
        f"Bearer {KEY}",
        f"Basic {KEY}",
    ],
)
@pytest.mark.django_db  # a JWT is checked in a database thread
def test_keys_never_appear_in_logs_at_any_level_whatever_the_header(client, keys, caplog, header):
    caplog.set_level(logging.DEBUG)
    client.post("/broadcast", {"type": "x"}, format="json", HTTP_AUTHORIZATION=header)
    assert KEY not in caplog.text


# --- the batch form and the event loop ---


async def next_messages(communicator, count: int) -> list[dict]:
    return [await communicator.receive_json_from() for _ in range(count)]


async def test_a_batch_answers_202_with_the_ids_in_order_and_publishes_in_that_order(keys):
    socket = await subscribed_socket("jobs")
    batch = [{"type": "tick", "data": {"n": n}, "channel": "jobs"} for n in range(5)]
    batch.append({"type": "personal", "user_id": 7})
    response = await sync_to_async(APIClient().post)(
        "/broadcast", batch, format="json", HTTP_AUTHORIZATION=f"Api-Key {KEY}"
    )
    assert response.status_code == 202
    accepted = response.json()
    assert [a["type"] for a in accepted] == ["tick"] * 5 + ["personal"]
    assert accepted[5]["channels"] == ["user.7"]
    received = await next_messages(socket, 5)
    assert [m["id"] for m in received] == [a["id"] for a in accepted[:5]]
    assert [m["data"]["n"] for m in received] == [0, 1, 2, 3, 4]
    assert [m["offset"] for m in received] == [1, 2, 3, 4, 5]
    await socket.disconnect()


@pytest.mark.parametrize(
    "batch",
    [
        [],
        [{"type": "ok"}] * 101,
        [{"type": "ok", "channel": "jobs"}, {"type": "bad type"}],
    ],
    ids=["empty", "over 100", "one invalid"],
)
def test_a_batch_is_all_or_nothing(client, keys, batch, monkeypatch):
    published = []
    monkeypatch.setattr("realtime.views.apublish_many", published.append)
    response = client.post("/broadcast", batch, format="json", HTTP_AUTHORIZATION=f"Api-Key {KEY}")
    assert response.status_code == 400
    assert published == []


def test_a_bad_item_of_a_batch_is_named_by_its_place(client, keys):
    batch = [{"type": "ok"}, {"type": "bad type"}]
    response = client.post("/broadcast", batch, format="json", HTTP_AUTHORIZATION=f"Api-Key {KEY}")
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == ["1"]  # the second item, by its index
    assert "type" in errors["1"]


def test_a_lone_surrogate_in_data_is_refused_with_400(client, keys):
    response = client.generic(
        "POST",
        "/broadcast",
        '{"type":"x","data":{"s":"\\ud800"}}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {KEY}",
    )
    assert response.status_code == 400
    assert "data" in response.json()


def test_a_service_key_broadcast_never_leaves_the_event_loop(client, keys, monkeypatch):
    def no_thread(*args, **kwargs):
        raise AssertionError("a thread hop in the broadcast view")

    monkeypatch.setattr("realtime.async_views.database_sync_to_async", no_thread)
    response = client.post(
        "/broadcast", {"type": "x"}, format="json", HTTP_AUTHORIZATION=f"Api-Key {KEY}"
    )
    assert response.status_code == 202
