"""The HTTP API over real HTTP, under uvicorn (production) and daphne: what
/health and /stats show to whom, JSON errors, and /health's database check."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest

from .live import LiveServer, free_port, wait_for
from .wsclient import connect, subscribe

pytestmark = pytest.mark.live

KEY = "live-service-key"


def register(server: LiveServer, username: str, user_type: str = "worker") -> tuple[int, str]:
    """A new user's id and access token."""
    credentials = {"username": username, "password": "a-long-passphrase-9"}
    registered = server.post("/api/auth/register/", json={**credentials, "user_type": user_type})
    assert registered.status_code == 201, registered.text
    access = server.post("/api/auth/token/", json=credentials).json()["access"]
    return registered.json()["id"], access


def make_staff(server: LiveServer, username: str) -> None:
    path = server.env["DATABASE_URL"].removeprefix("sqlite:///")
    with closing(sqlite3.connect(path, timeout=10)) as db, db:
        db.execute("UPDATE jobs_user SET is_staff = 1 WHERE username = ?", [username])


def channels_seen(server: LiveServer, path: str, headers: dict[str, str]) -> dict[str, int]:
    response = server.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["connections"]["by_channel"]


def assert_json_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


# --- Private stays private -------------------------------------------------------------


async def test_health_and_stats_show_private_channels_to_services_and_staff_only(
    server_factory,
):
    server = server_factory(BROADCAST_API_KEYS=KEY)
    user_id, access = register(server, "wendy")
    register(server, "sam")
    make_staff(server, "sam")
    _, staff_access = register(server, "sam2")  # not staff: a plain user's token
    staff = server.post(
        "/api/auth/token/", json={"username": "sam", "password": "a-long-passphrase-9"}
    ).json()["access"]
    personal, _ = await connect(f"{server.ws_url}?token={access}")  # on user.<id> at once
    anonymous, _ = await connect(server.ws_url)
    await subscribe(anonymous, "jobs")
    private = f"user.{user_id}"
    service = {"Authorization": f"Api-Key {KEY}"}
    try:
        for path in ("/health", "/stats"):
            # The process reports its counts to Redis now and then: wait for them.
            wait_for(
                lambda p=path: private in channels_seen(server, p, service),
                10,
                what=f"{private} in {path}",
            )
            assert channels_seen(server, path, service) == {"jobs": 1, private: 1}
            assert channels_seen(server, path, {"Authorization": f"Bearer {staff}"}) == {
                "jobs": 1,
                private: 1,
            }
            for anyone in ({}, {"Authorization": f"Bearer {staff_access}"}):
                response = server.get(path, headers=anyone)
                assert response.json()["connections"] == {"total": 2, "by_channel": {"jobs": 1}}
                assert "user." not in response.text
    finally:
        await personal.close()
        await anonymous.close()


# --- JSON errors --------------------------------------------------------------------------


@pytest.mark.parametrize("debug", ["true", "false"])
def test_api_errors_are_json_under_both_servers_with_debug_on_and_off(server_factory, debug):
    server = server_factory(DJANGO_DEBUG=debug, BROADCAST_API_KEYS=KEY)
    assert_json_error(server.get("/api/no-such-thing/"), 404, "not_found")
    assert_json_error(server.get("/api/no-such-thing"), 404, "not_found")
    assert_json_error(server.post("/health"), 405, "method_not_allowed")
    service = {"Authorization": f"Api-Key {KEY}"}
    assert_json_error(server.get("/broadcast", headers=service), 405, "method_not_allowed")
    too_big = b'{"username": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    for path in ("/api/auth/token/", "/api/jobs/", "/broadcast"):
        response = server.post(
            path,
            content=too_big,
            headers={"Content-Type": "application/json", "Authorization": f"Api-Key {KEY}"},
        )
        assert_json_error(response, 413, "payload_too_large")
    bad = server.post("/api/auth/register/", json={"username": ""})
    assert bad.status_code == 400
    assert "username" in bad.json()  # per-field, as DRF makes it
    # Outside the API, Django's own pages.
    page = server.get("/no-such-page/")
    assert page.status_code == 404
    assert not page.headers["content-type"].startswith("application/json")


@pytest.fixture
def unmigrated_database(tmp_path) -> str:
    """A SQLite file with no tables: reachable, and every API call fails on it."""
    path = tmp_path / "fresh.sqlite3"
    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("debug", ["true", "false"])
def test_an_unhandled_error_on_the_api_is_500_json_never_a_debug_page(
    server_factory, unmigrated_database, debug
):
    server = server_factory(
        DATABASE_URL=unmigrated_database,
        DJANGO_DEBUG=debug,
        BROADCAST_API_KEYS=KEY,
        REALTIME_RELAY_IN_PROCESS="false",
    )
    response = server.post(
        "/api/auth/register/",
        json={"username": "nora", "password": "a-long-passphrase-9", "user_type": "worker"},
    )
    assert_json_error(response, 500, "server_error")
    assert response.json() == {"detail": "Server error.", "code": "server_error"}
    assert "no such table" not in response.text
    assert "no such table" in server.log()  # the operator still learns why


# --- /health checks the database ------------------------------------------------------


def test_health_is_503_naming_the_database_when_it_is_not_migrated(
    server_factory, unmigrated_database
):
    server = server_factory(DATABASE_URL=unmigrated_database, REALTIME_RELAY_IN_PROCESS="false")
    response = server.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert "database" in response.json()["reason"]
    assert "migrat" in response.json()["reason"]


@pytest.fixture
def silent_database_port() -> Iterator[int]:
    """A port that accepts connections and never answers, as a database
    host that hangs does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(100)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("answer", ["refused", "silent"])
def test_health_is_503_naming_the_database_within_3_seconds_when_it_does_not_answer(
    server_factory, silent_database_port, answer
):
    port = silent_database_port if answer == "silent" else free_port()
    server = server_factory(
        DATABASE_URL=f"postgres://paychain@127.0.0.1:{port}/paychain",
        REALTIME_RELAY_IN_PROCESS="false",
    )
    for _ in range(2):  # the second while the first probe may still hang
        # The item's deadline: the answer comes within 3 seconds (and a little).
        response = server.get("/health", timeout=4.5)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert "database" in body["reason"]
        assert "paychain@" not in body["reason"]
    assert server.get("/stats").status_code == 200  # the rest still answers
