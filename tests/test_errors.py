"""Errors of the HTTP API are `{"detail", "code"}` JSON, DEBUG on or off;
400s keep DRF's per-field shape; pages outside the API keep Django's."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import Throttled
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from realtime import exceptions, health
from realtime.views import PresenceApi

from .factories import make_worker

KEY = "service-key-one"


@pytest.fixture(params=[True, False], ids=["debug-on", "debug-off"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def client() -> APIClient:
    # An unhandled exception answers 500 instead of reaching the test.
    return APIClient(raise_request_exception=False)


@pytest.fixture
def keys(settings):
    settings.REALTIME = {**settings.REALTIME, "BROADCAST_API_KEYS": [KEY]}


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


@pytest.mark.parametrize("path", ["/api/no-such-thing/", "/api/no-such-thing", "/api/"])
def test_an_unknown_api_url_is_404_json(client, debug, path):
    assert_json_error(client.get(path), 404, "not_found")


@pytest.mark.django_db
def test_a_missing_object_of_the_api_is_404_json_with_a_code(client, debug):
    access = AccessToken.for_user(make_worker())
    response = client.get("/api/jobs/999999/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize("path", ["/health", "/stats", "/broadcast", "/api/auth/token/"])
def test_a_wrong_method_is_405_json_with_a_code(client, debug, keys, path):
    method = client.put if path != "/broadcast" else client.get
    response = method(path, HTTP_AUTHORIZATION=f"Api-Key {KEY}")
    assert_json_error(response, 405, "method_not_allowed")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/register/", "/api/jobs/"])
def test_a_body_over_a_mebibyte_is_413_json_before_it_is_parsed(client, debug, path):
    body = b'{"username": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = client.post(path, body, content_type="application/json")
    assert_json_error(response, 413, "payload_too_large")


@pytest.mark.django_db
def test_a_body_just_under_the_limit_is_parsed(client):
    body = b'{"username": "' + b"x" * (1024 * 1024 - 100) + b'", "password": "p"}'
    response = client.post("/api/auth/token/", body, content_type="application/json")
    assert response.status_code in (400, 401)


def test_an_unhandled_exception_on_an_api_path_is_500_json_never_a_debug_page(
    client, debug, keys, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(PresenceApi, "get", broken)
    monkeypatch.setattr(health, "cluster", broken)
    for path in ("/api/presence/job.1/", "/stats"):
        response = client.get(path, HTTP_AUTHORIZATION=f"Api-Key {KEY}")
        assert_json_error(response, 500, "server_error")
        assert response.json() == {"detail": "Server error.", "code": "server_error"}
        assert b"a bug" not in response.content
        assert b"Traceback" not in response.content


@pytest.mark.django_db
def test_a_400_keeps_drfs_per_field_shape(client, debug):
    response = client.post("/api/auth/register/", {}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "username" in body
    assert isinstance(body["username"], list)
    assert "code" not in body


def test_a_401_and_403_carry_drfs_code(client, keys):
    assert_json_error(client.get("/api/presence/job.1/"), 401, "not_authenticated")
    wrong = client.get("/api/presence/job.1/", HTTP_AUTHORIZATION="Api-Key not-the-key")
    assert_json_error(wrong, 403, "invalid_api_key")


def test_a_throttled_request_is_429_with_the_throttled_code():
    response = exceptions.exception_handler(Throttled(wait=3), {})
    assert response is not None
    assert response.status_code == 429
    assert response.data["code"] == "throttled"


@pytest.mark.parametrize("path", ["/no-such-page/", "/admin/no-such-thing/"])
def test_pages_outside_the_api_keep_djangos_behaviour(client, debug, path):
    response = client.get(path)
    assert response.status_code in (302, 404)
    assert not response["Content-Type"].startswith("application/json")
