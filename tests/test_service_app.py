"""POST /broadcast through the ASGI application: its own route beside Django's
handler, straight from the event loop."""

from __future__ import annotations

import httpx
import pytest

from paychain.asgi import application
from realtime.service_app import max_body_bytes

KEY = "service-key-one"


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.REALTIME = {**settings.REALTIME, "BROADCAST_API_KEYS": [KEY]}


def asgi_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://localhost"
    )


async def post(body, **headers) -> httpx.Response:
    async with asgi_client() as client:
        return await client.post(
            "/broadcast", json=body, headers={"Authorization": f"Api-Key {KEY}", **headers}
        )


async def test_a_broadcast_is_accepted_with_djangos_security_headers():
    response = await post({"type": "x", "channel": "jobs"})
    assert response.status_code == 202
    assert response.json()["channels"] == ["jobs"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-length"] == str(len(response.content))


async def test_validation_errors_are_drfs_per_field_400():
    response = await post({"type": "has space"})
    assert response.status_code == 400
    assert "type" in response.json()


async def test_a_body_over_a_mebibyte_is_413_json_before_it_is_parsed():
    async with asgi_client() as client:
        response = await client.post(
            "/broadcast",
            content=b"[" + b" " * max_body_bytes() + b"]",
            headers={"Authorization": f"Api-Key {KEY}", "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_a_host_outside_allowed_hosts_is_400():
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://evil.example"
    ) as client:
        response = await client.post(
            "/broadcast", json={"type": "x"}, headers={"Authorization": f"Api-Key {KEY}"}
        )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_host"


async def test_an_unexpected_error_is_500_json_and_logged(monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("realtime.views.apublish_many", broken)
    response = await post({"type": "x"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Server error.", "code": "server_error"}
    assert "a bug" in caplog.text


@pytest.mark.django_db  # /health checks the database
async def test_the_rest_of_the_site_still_goes_through_django():
    async with asgi_client() as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


async def test_a_broadcast_answers_json_whatever_accept_asks_for():
    response = await post({"type": "x", "channel": "jobs"}, Accept="text/html")
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    assert response.json()["channels"] == ["jobs"]
