"""Authenticated sockets, channel permissions, personal channels and abuse
limits, through WebsocketCommunicator."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from jobs import services
from paychain.asgi import application
from realtime import consumers
from realtime.node import get_node
from realtime.protocol import CloseCode, ErrorCode
from realtime.services import apublish

from .factories import make_employer, make_job, make_worker

pytestmark = pytest.mark.django_db(transaction=True)


def access_token(user, lifetime: timedelta | None = None) -> str:
    token = AccessToken.for_user(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


async def socket_for(token: str | None = None, headers=None) -> tuple[WebsocketCommunicator, dict]:
    path = "/ws" if token is None else f"/ws?token={token}"
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    return communicator, await communicator.receive_json_from()


async def assert_refused(communicator: WebsocketCommunicator, code: str, close_code: int) -> dict:
    """The socket gets an `error` with the reason, then the close code."""
    message = await communicator.receive_json_from()
    assert message["type"] == "error"
    assert message["data"]["code"] == code
    assert await communicator.receive_output() == {"type": "websocket.close", "code": close_code}
    return message


async def subscribe(communicator: WebsocketCommunicator, *channels: str) -> list[dict]:
    """Subscribe; return every reply up to and including `subscribed` (or the
    last error when nothing subscribed)."""
    await communicator.send_json_to({"type": "subscribe", "channels": list(channels)})
    replies = []
    while True:
        reply = await communicator.receive_json_from()
        replies.append(reply)
        if reply["type"] == "subscribed" or await communicator.receive_nothing(0.05):
            return replies


# --- 1. token on connect ---


async def test_a_valid_token_authenticates_the_socket():
    worker = await sync_to_async(make_worker)()
    communicator, hello = await socket_for(access_token(worker))
    assert hello["type"] == "connected"
    assert hello["data"]["user_id"] == worker.pk
    assert hello["data"]["user_type"] == "worker"
    await communicator.disconnect()


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.forged-signature"],
)
async def test_an_invalid_or_forged_token_is_refused_with_4001(token):
    communicator = WebsocketCommunicator(application, f"/ws?token={token}")
    assert (await communicator.connect())[0]
    message = await assert_refused(communicator, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)
    assert message["data"]["message"] == "Unauthorized"


async def test_an_expired_token_is_refused_with_4001():
    worker = await sync_to_async(make_worker)()
    token = access_token(worker, lifetime=timedelta(seconds=-5))
    communicator = WebsocketCommunicator(application, f"/ws?token={token}")
    assert (await communicator.connect())[0]
    await assert_refused(communicator, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_a_refresh_token_is_refused_with_4001():
    worker = await sync_to_async(make_worker)()
    refresh = str(await sync_to_async(RefreshToken.for_user)(worker))
    communicator = WebsocketCommunicator(application, f"/ws?token={refresh}")
    assert (await communicator.connect())[0]
    await assert_refused(communicator, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_a_token_of_a_deleted_user_is_refused():
    worker = await sync_to_async(make_worker)()
    token = access_token(worker)
    await sync_to_async(worker.delete)()
    communicator = WebsocketCommunicator(application, f"/ws?token={token}")
    assert (await communicator.connect())[0]
    await assert_refused(communicator, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_without_a_token_the_socket_is_anonymous():
    communicator, hello = await socket_for()
    assert "user_id" not in hello["data"]
    await communicator.disconnect()


async def test_when_anonymous_sockets_are_not_allowed_any_first_frame_but_auth_gets_4001(settings):
    settings.REALTIME = {**settings.REALTIME, "ALLOW_ANONYMOUS": False}
    communicator, hello = await socket_for()
    assert "user_id" not in hello["data"]
    await communicator.send_json_to({"type": "subscribe", "channels": ["jobs"]})
    await assert_refused(communicator, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_when_anonymous_sockets_are_not_allowed_an_auth_first_frame_signs_in(settings):
    settings.REALTIME = {**settings.REALTIME, "ALLOW_ANONYMOUS": False}
    worker = await sync_to_async(make_worker)()
    communicator, _ = await socket_for()
    await communicator.send_json_to({"type": "auth", "token": access_token(worker)})
    reply = await communicator.receive_json_from()
    assert (reply["type"], reply["data"]["user_id"]) == ("authenticated", worker.pk)
    assert (await subscribe(communicator, "jobs"))[-1]["type"] == "subscribed"
    await communicator.disconnect()


async def test_when_anonymous_sockets_are_not_allowed_silence_past_the_auth_timeout_gets_4001(
    settings,
):
    settings.REALTIME = {**settings.REALTIME, "ALLOW_ANONYMOUS": False, "AUTH_TIMEOUT": 0.2}
    communicator, _ = await socket_for()
    await assert_refused(communicator, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_a_session_cookie_authenticates_and_a_token_wins_over_it(client):
    employer = await sync_to_async(make_employer)()
    worker = await sync_to_async(make_worker)()
    await sync_to_async(client.force_login)(employer)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    by_cookie, hello = await socket_for(headers=[(b"cookie", cookie)])
    assert hello["data"]["user_id"] == employer.pk
    await by_cookie.disconnect()
    both, hello = await socket_for(access_token(worker), headers=[(b"cookie", cookie)])
    assert hello["data"]["user_id"] == worker.pk
    await both.disconnect()


# --- 2. personal channel ---


async def test_an_authenticated_socket_receives_its_personal_channel_at_once():
    worker = await sync_to_async(make_worker)()
    communicator, _ = await socket_for(access_token(worker))
    await apublish(type="notice", data={"n": 1}, channel=f"user.{worker.pk}")
    message = await communicator.receive_json_from()
    assert message["type"] == "notice"
    assert message["channel"] == f"user.{worker.pk}"
    await communicator.disconnect()


# --- 3. channel permissions ---


async def test_public_channels_are_open_to_anonymous_sockets():
    communicator, _ = await socket_for()
    replies = await subscribe(communicator, "jobs", "announcements")
    assert replies[-1]["data"]["channels"] == ["jobs", "announcements"]
    await communicator.disconnect()


async def test_extra_public_channels_come_from_settings(settings):
    settings.REALTIME = {**settings.REALTIME, "PUBLIC_CHANNELS": ["jobs", "status"]}
    communicator, _ = await socket_for()
    assert (await subscribe(communicator, "status"))[-1]["type"] == "subscribed"
    await communicator.disconnect()


async def test_payments_is_for_employers_only():
    employer = await sync_to_async(make_employer)()
    worker = await sync_to_async(make_worker)()
    as_employer, _ = await socket_for(access_token(employer))
    assert (await subscribe(as_employer, "payments"))[-1]["data"]["channels"] == ["payments"]
    for communicator in [(await socket_for(access_token(worker)))[0], (await socket_for())[0]]:
        (reply,) = await subscribe(communicator, "payments")
        assert reply["data"] == {
            **reply["data"],
            "code": ErrorCode.FORBIDDEN,
            "channel": "payments",
        }
        await communicator.disconnect()
    await as_employer.disconnect()


async def test_a_personal_channel_is_its_owner_only():
    owner = await sync_to_async(make_worker)()
    other = await sync_to_async(make_worker)()
    communicator, _ = await socket_for(access_token(other))
    (reply,) = await subscribe(communicator, f"user.{owner.pk}")
    assert reply["data"]["code"] == ErrorCode.FORBIDDEN
    await apublish(type="secret", data={}, channel=f"user.{owner.pk}")
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_a_job_channel_is_its_employer_and_worker_only():
    job = await sync_to_async(make_job)()
    worker = await sync_to_async(make_worker)()
    stranger = await sync_to_async(make_worker)()
    await sync_to_async(services.job_accept)(job=job, worker=worker)
    employer = await sync_to_async(lambda: job.employer)()
    channel = f"job.{job.pk}"
    for user in (employer, worker):
        communicator, _ = await socket_for(access_token(user))
        assert (await subscribe(communicator, channel))[-1]["data"]["channels"] == [channel]
        await communicator.disconnect()
    communicator, _ = await socket_for(access_token(stranger))
    (reply,) = await subscribe(communicator, channel)
    assert reply["data"]["code"] == ErrorCode.FORBIDDEN
    await communicator.disconnect()


async def test_unknown_channels_are_forbidden_but_the_rest_subscribe_and_it_stays_open():
    communicator, _ = await socket_for()
    replies = await subscribe(communicator, "bad name", "secret-room", "jobs")
    assert [r["data"].get("code") for r in replies[:-1]] == [
        ErrorCode.INVALID_CHANNEL,
        ErrorCode.FORBIDDEN,
    ]
    assert replies[-1]["data"]["channels"] == ["jobs"]
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.disconnect()


async def test_a_project_rule_can_extend_the_permissions(settings):
    settings.REALTIME = {**settings.REALTIME, "CHANNEL_RULE": "tests.rules.allow_rooms"}
    communicator, _ = await socket_for()
    replies = await subscribe(communicator, "room.lobby", "payments")
    assert replies[0]["data"]["code"] == ErrorCode.FORBIDDEN
    assert replies[-1]["data"]["channels"] == ["room.lobby"]
    await communicator.disconnect()


# --- 4. personal notifications ---


async def test_job_events_reach_the_personal_channels_with_the_same_id():
    job = await sync_to_async(make_job)()
    worker = await sync_to_async(make_worker)()
    employer = await sync_to_async(lambda: job.employer)()
    employer_socket, _ = await socket_for(access_token(employer))
    await subscribe(employer_socket, "jobs")
    worker_socket, _ = await socket_for(access_token(worker))

    def accept_then_complete() -> None:
        accepted = services.job_accept(job=job, worker=worker)
        services.job_complete(job=accepted, employer=employer)

    await sync_to_async(accept_then_complete)()
    copies = [await employer_socket.receive_json_from() for _ in range(4)]
    accepted = [c for c in copies if c["type"] == "job_accepted"]
    assert sorted(c["channel"] for c in accepted) == ["jobs", f"user.{employer.pk}"]
    assert accepted[0]["id"] == accepted[1]["id"]
    completed_for_worker = await worker_socket.receive_json_from()
    assert completed_for_worker["type"] == "job_completed"
    assert completed_for_worker["channel"] == f"user.{worker.pk}"
    paid = await worker_socket.receive_json_from()  # the payment notification (jobs.events)
    assert (paid["type"], paid["channel"]) == ("payment_released", f"user.{worker.pk}")
    assert await worker_socket.receive_nothing()
    await employer_socket.disconnect()
    await worker_socket.disconnect()


async def test_a_refund_reaches_the_employers_personal_channel():
    job = await sync_to_async(make_job)(expires_at=timezone.now() - timedelta(seconds=1))
    employer = await sync_to_async(lambda: job.employer)()
    communicator, _ = await socket_for(access_token(employer))
    await sync_to_async(call_command)("refund_expired_jobs", stdout=StringIO())
    message = await communicator.receive_json_from()
    assert message["type"] == "job_refunded"
    assert message["channel"] == f"user.{employer.pk}"
    await communicator.disconnect()


# --- 5. token expiry ---


async def test_the_socket_closes_with_4001_when_its_token_expires():
    worker = await sync_to_async(make_worker)()
    communicator, _ = await socket_for(access_token(worker, lifetime=timedelta(seconds=1)))
    message = await asyncio.wait_for(communicator.receive_json_from(timeout=3), 4)
    assert message["data"] == {
        **message["data"],
        "code": ErrorCode.TOKEN_EXPIRED,
        "message": "Token expired",
    }
    assert await communicator.receive_output() == {
        "type": "websocket.close",
        "code": CloseCode.UNAUTHORIZED,
    }


async def test_a_fresh_token_of_the_same_user_keeps_the_socket_open():
    worker = await sync_to_async(make_worker)()
    communicator, _ = await socket_for(access_token(worker, lifetime=timedelta(seconds=1)))
    await communicator.send_json_to({"type": "auth", "token": access_token(worker)})
    assert (await communicator.receive_json_from())["type"] == "authenticated"
    await asyncio.sleep(1.5)
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.disconnect()


async def test_auth_with_another_users_token_closes_with_4001():
    worker = await sync_to_async(make_worker)()
    other = await sync_to_async(make_worker)()
    communicator, _ = await socket_for(access_token(worker))
    await communicator.send_json_to({"type": "auth", "token": access_token(other)})
    await assert_refused(communicator, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_auth_with_an_invalid_token_closes_with_4001():
    communicator, _ = await socket_for()
    await communicator.send_json_to({"type": "auth", "token": "not-a-token"})
    await assert_refused(communicator, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_auth_on_an_anonymous_socket_authenticates_it():
    employer = await sync_to_async(make_employer)()
    communicator, _ = await socket_for()
    await communicator.send_json_to({"type": "auth", "token": access_token(employer)})
    reply = await communicator.receive_json_from()
    assert reply["data"] == {"user_id": employer.pk, "user_type": "employer"}
    assert (await subscribe(communicator, "payments"))[-1]["type"] == "subscribed"
    await apublish(type="notice", data={}, channel=f"user.{employer.pk}")
    assert (await communicator.receive_json_from())["type"] == "notice"
    await communicator.disconnect()


# --- 6. abuse limits ---


async def test_more_than_100_frames_in_10_seconds_closes_with_4008():
    communicator, _ = await socket_for()
    for _ in range(100):
        await communicator.send_json_to({"type": "ping"})
    for _ in range(100):
        assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.send_json_to({"type": "ping"})
    message = await assert_refused(communicator, ErrorCode.RATE_LIMITED, CloseCode.RATE_LIMITED)
    assert message["data"]["message"] == "Rate limit exceeded"


async def test_frames_spread_over_the_window_are_not_limited(settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_FRAMES": 5, "RATE_LIMIT_SECONDS": 0.5}
    communicator, _ = await socket_for()
    for _ in range(3):
        for _ in range(5):
            await communicator.send_json_to({"type": "ping"})
            assert (await communicator.receive_json_from())["type"] == "pong"
        await asyncio.sleep(0.6)
    await communicator.disconnect()


async def test_more_than_100_subscriptions_is_refused_and_the_earlier_ones_kept(settings):
    settings.REALTIME = {**settings.REALTIME, "CHANNEL_RULE": "tests.rules.allow_extras"}
    worker = await sync_to_async(make_worker)()
    communicator, _ = await socket_for(access_token(worker))
    replies = await subscribe(communicator, *[f"extra{n}" for n in range(100)])
    assert len(replies[-1]["data"]["channels"]) == 100  # the personal channel not counted
    (refused,) = await subscribe(communicator, "extra100", "extra101")
    assert refused["data"]["code"] == ErrorCode.TOO_MANY_SUBSCRIPTIONS
    await apublish(type="still", data={}, channel="extra0")
    assert (await communicator.receive_json_from())["type"] == "still"
    await apublish(type="never", data={}, channel="extra100")
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_the_newest_socket_over_the_per_user_limit_gets_4029(settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_SOCKETS_PER_USER": 2}
    worker = await sync_to_async(make_worker)()
    token = access_token(worker)
    first, _ = await socket_for(token)
    second, _ = await socket_for(token)
    third = WebsocketCommunicator(application, f"/ws?token={token}")
    assert (await third.connect())[0]
    message = await assert_refused(
        third, ErrorCode.TOO_MANY_CONNECTIONS, CloseCode.TOO_MANY_CONNECTIONS
    )
    assert message["data"]["message"] == "Too many connections"
    await first.disconnect()
    fourth, hello = await socket_for(token)
    assert hello["type"] == "connected"
    for communicator in (second, fourth):
        await communicator.disconnect()


# --- 7. origin ---


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        (b"http://localhost:5173", True),  # in CORS_ALLOWED_ORIGINS
        (b"http://LOCALHOST:5173/", True),
        (b"http://localhost:8000", True),  # the request's own (Host)
        (b"https://localhost:8000", True),
        (b"http://localhost:1", False),
        (b"https://localhost:9999", False),
        (b"https://localhost:5173", False),
        (b"http://localhost", False),
        (b"https://evil.example", False),
        (b"http://localhost.evil.example", False),
        (b"null", False),
    ],
)
async def test_socket_origins(origin, allowed):
    headers = [(b"host", b"localhost:8000")] + ([(b"origin", origin)] if origin else [])
    communicator = WebsocketCommunicator(application, "/ws", headers=headers)
    connected, _ = await communicator.connect()
    assert connected is allowed
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        (b"localhost", b"http://localhost", True),
        (b"localhost", b"https://localhost", True),
        (b"localhost", b"http://localhost:8000", False),
        (b"[::1]:8000", b"http://[::1]:8000", True),
        # Its own origin, but a host the project does not serve (DNS rebinding).
        (b"evil.example:8000", b"http://evil.example:8000", False),
    ],
)
async def test_the_own_origin_is_the_host_and_port_of_an_allowed_host(host, origin, allowed):
    headers = [(b"host", host), (b"origin", origin)]
    communicator = WebsocketCommunicator(application, "/ws", headers=headers)
    connected, _ = await communicator.connect()
    assert connected is allowed
    await communicator.disconnect()


async def test_star_in_cors_origins_allows_any_origin(settings):
    settings.CORS_ALLOW_ALL_ORIGINS = True
    communicator = WebsocketCommunicator(
        application, "/ws", headers=[(b"origin", b"https://any.example")]
    )
    assert (await communicator.connect())[0]
    await communicator.disconnect()


# --- 8. sockets per address ---


def from_address(peer: str, forwarded_for: str | None = None):
    """The application, as if the connection came from `peer`."""

    async def app(scope, receive, send):
        scope = {**scope, "client": (peer, 50000)}
        if forwarded_for is not None:
            scope["headers"] = [*scope["headers"], (b"x-forwarded-for", forwarded_for.encode())]
        return await application(scope, receive, send)

    return app


async def open_from(peer: str, forwarded_for: str | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(from_address(peer, forwarded_for), "/ws")
    assert (await communicator.connect())[0]
    return communicator


async def test_the_socket_over_the_per_address_limit_gets_4029(settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_SOCKETS_PER_IP": 2}
    first, second = await open_from("10.1.1.1"), await open_from("10.1.1.1")
    for communicator in (first, second):
        assert (await communicator.receive_json_from())["type"] == "connected"
    third = await open_from("10.1.1.1")
    message = await assert_refused(
        third, ErrorCode.TOO_MANY_CONNECTIONS, CloseCode.TOO_MANY_CONNECTIONS
    )
    assert message["data"]["message"] == "Too many connections from your address"
    other = await open_from("10.2.2.2")
    assert (await other.receive_json_from())["type"] == "connected"
    await first.disconnect()
    again = await open_from("10.1.1.1")
    assert (await again.receive_json_from())["type"] == "connected"
    for communicator in (second, other, again):
        await communicator.disconnect()


async def test_without_a_limit_an_address_may_open_many_sockets():
    sockets = [await open_from("10.1.1.1") for _ in range(30)]
    for communicator in sockets:
        assert (await communicator.receive_json_from())["type"] == "connected"
        await communicator.disconnect()


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_SOCKETS_PER_IP": 1}
    # Not a trusted proxy: the header is ignored, the peer is the client.
    first = await open_from("10.9.9.9", "1.1.1.1")
    assert (await first.receive_json_from())["type"] == "connected"
    refused = await open_from("10.9.9.9", "2.2.2.2")
    await assert_refused(refused, ErrorCode.TOO_MANY_CONNECTIONS, CloseCode.TOO_MANY_CONNECTIONS)
    await first.disconnect()

    settings.REALTIME = {**settings.REALTIME, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    one = await open_from("10.9.9.9", "1.1.1.1")
    two = await open_from("10.9.9.9", "2.2.2.2")
    for communicator in (one, two):
        assert (await communicator.receive_json_from())["type"] == "connected"
    # A client's own X-Forwarded-For entries are left of what the proxy adds.
    spoofed = await open_from("10.9.9.9", "2.2.2.2, 1.1.1.1")
    await assert_refused(spoofed, ErrorCode.TOO_MANY_CONNECTIONS, CloseCode.TOO_MANY_CONNECTIONS)
    for communicator in (one, two):
        await communicator.disconnect()


# --- 9. sessions ---


async def test_a_session_socket_ends_with_4001_when_its_session_is_logged_out(client, settings):
    settings.REALTIME = {**settings.REALTIME, "SESSION_CHECK_INTERVAL": 0.2}
    employer = await sync_to_async(make_employer)()
    await sync_to_async(client.force_login)(employer)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    by_cookie, hello = await socket_for(headers=[(b"cookie", cookie)])
    assert hello["data"]["user_id"] == employer.pk
    by_token, _ = await socket_for(access_token(employer))
    assert await by_cookie.receive_nothing(0.5)
    await sync_to_async(client.logout)()
    message = await assert_refused(by_cookie, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)
    assert message["data"]["message"] == "Unauthorized: the session ended"
    assert await by_token.receive_nothing(0.5)
    await by_token.disconnect()


async def test_a_session_socket_ends_when_its_session_expires(client, settings):
    settings.REALTIME = {**settings.REALTIME, "SESSION_CHECK_INTERVAL": 0.2}
    worker = await sync_to_async(make_worker)()
    await sync_to_async(client.force_login)(worker)
    key = client.cookies["sessionid"].value
    socket, _ = await socket_for(headers=[(b"cookie", f"sessionid={key}".encode())])
    await sync_to_async(Session.objects.filter(session_key=key).update)(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    await assert_refused(socket, ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED)


async def test_a_token_sent_in_auth_keeps_a_session_socket_past_its_session(client, settings):
    settings.REALTIME = {**settings.REALTIME, "SESSION_CHECK_INTERVAL": 0.2}
    worker = await sync_to_async(make_worker)()
    await sync_to_async(client.force_login)(worker)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    socket, _ = await socket_for(headers=[(b"cookie", cookie)])
    await socket.send_json_to({"type": "auth", "token": access_token(worker)})
    assert (await socket.receive_json_from())["type"] == "authenticated"
    await sync_to_async(client.logout)()
    assert await socket.receive_nothing(0.8)
    await socket.disconnect()


# --- sockets never outlive their connection ---


async def test_a_subscribe_naming_more_channels_than_the_limit_is_refused_whole_unlooked_up(
    settings, monkeypatch
):
    settings.REALTIME = {**settings.REALTIME, "MAX_SUBSCRIPTIONS": 100}
    lookups = []

    async def counted(user, channel):
        lookups.append(channel)
        return True

    monkeypatch.setattr(consumers, "acan_subscribe", counted)
    communicator, _ = await socket_for()
    replies = await subscribe(communicator, *[f"job.{n}" for n in range(1, 201)])
    assert [r["data"]["code"] for r in replies] == [ErrorCode.TOO_MANY_SUBSCRIPTIONS]
    assert lookups == []
    assert await communicator.receive_nothing()
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.disconnect()


async def test_a_lone_surrogate_is_invalid_json_and_the_socket_lives_on():
    communicator, _ = await socket_for()
    await communicator.send_to(text_data='{"type":"ping","data":{"s":"\\ud800"}}')
    reply = await communicator.receive_json_from()
    assert reply["data"]["code"] == ErrorCode.INVALID_JSON
    await communicator.send_to(text_data='{"type":"ping","data":{"s":"\\ud83d\\ude00"}}')
    assert (await communicator.receive_json_from())["data"] == {"s": "\U0001f600"}
    await communicator.disconnect()


async def test_a_consumer_that_crashes_releases_its_slot_presence_and_count(settings, monkeypatch):
    settings.REALTIME = {**settings.REALTIME, "MAX_SOCKETS_PER_USER": 1}
    worker = await sync_to_async(make_worker)()
    token = access_token(worker)

    async def crash(self, frame):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setitem(consumers.RealtimeConsumer.handlers, "ping", crash)
    node = await get_node()
    for _ in range(3):
        communicator, hello = await socket_for(token)
        assert hello["type"] == "connected"
        await communicator.send_json_to({"type": "ping"})
        with pytest.raises(RuntimeError):
            await communicator.wait()
        assert node.hub.connection_stats() == {"total": 0, "by_channel": {}}
        assert await node.presence.users(f"user.{worker.pk}") == []
