"""Sign-in over HTTP: token lifetimes, rotation and logout, throttling of
sign-in and registration, usernames that are the same name, and hostile input
that must not become a 500."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from jobs.models import User
from jobs.serializers import RegisterSerializer

from .factories import PASSWORD, make_worker
from .live import ROOT, LiveServer, base_env, free_port

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "a-long-passphrase-9"


@pytest.fixture(autouse=True)
def own_cache(settings) -> None:
    """Each test counts its requests in a cache of its own."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-auth-{uuid.uuid4().hex}",
        }
    }


@pytest.fixture
def rates(settings) -> Callable[..., None]:
    """Set the throttle rates of this test: rates(login="3/min")."""

    def set_rates(**scopes: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                **scopes,
            },
        }

    return set_rates


def login(username: str, password: str = PASSWORD, address: str = "127.0.0.1", **extra):
    return APIClient().post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=address,
        **extra,
    )


def register(username: str, address: str = "127.0.0.1"):
    return APIClient().post(
        "/api/auth/register/",
        {"username": username, "password": STRONG_PASSWORD, "user_type": "worker"},
        format="json",
        REMOTE_ADDR=address,
    )


def refresh(token: str):
    return APIClient().post("/api/auth/token/refresh/", {"refresh": token}, format="json")


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "throttled"
    assert "detail" in response.json()
    assert int(response["Retry-After"]) > 0


def settings_in_a_new_process(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    """Evaluate `expression` on django.conf.settings in a fresh process started
    with `env`: what the environment sets is read at start."""
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({expression}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base_env(DJANGO_SETTINGS_MODULE="paychain.settings", DJANGO_DEBUG="true", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- token lifetimes, rotation, logout ------------------------------------------


def test_access_tokens_last_15_minutes_and_refresh_tokens_a_day_by_default():
    tokens = login(make_worker().username).json()
    access, refresh_token = AccessToken(tokens["access"]), RefreshToken(tokens["refresh"])
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh_token["exp"] - refresh_token["iat"] == 24 * 60 * 60


def test_token_lifetimes_and_throttle_rates_come_from_the_environment():
    result = settings_in_a_new_process(
        {
            "JWT_ACCESS_MINUTES": "7",
            "JWT_REFRESH_DAYS": "3",
            "THROTTLE_LOGIN_RATE": "5/min",
            "THROTTLE_REGISTER_RATE": "2/hour",
        },
        "[settings.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'].total_seconds(), "
        "settings.SIMPLE_JWT['REFRESH_TOKEN_LIFETIME'].total_seconds(), "
        "settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']]",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        7 * 60,
        3 * 86400,
        {"login": "5/min", "register": "2/hour"},
    ]


def test_a_throttle_rate_not_in_drf_format_stops_the_start():
    result = settings_in_a_new_process({"THROTTLE_LOGIN_RATE": "ten a minute"}, "1")
    assert result.returncode != 0
    assert "THROTTLE_LOGIN_RATE" in result.stderr


def test_a_refresh_rotates_and_the_used_refresh_token_is_refused_after():
    tokens = login(make_worker().username).json()
    first = refresh(tokens["refresh"])
    assert first.status_code == 200
    assert set(first.json()) == {"access", "refresh"}
    assert first.json()["refresh"] != tokens["refresh"]
    again = refresh(tokens["refresh"])
    assert again.status_code == 401
    assert refresh(first.json()["refresh"]).status_code == 200


def test_logout_blacklists_the_refresh_token():
    tokens = login(make_worker().username).json()
    response = APIClient().post("/api/auth/logout/", {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 200
    refused = refresh(tokens["refresh"])
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_not_valid"


def test_logout_with_an_invalid_token_gets_401_and_without_one_400():
    client = APIClient()
    assert client.post("/api/auth/logout/", {"refresh": "x.y.z"}, format="json").status_code == 401
    response = client.post("/api/auth/logout/", {}, format="json")
    assert response.status_code == 400
    assert "refresh" in response.json()


def test_a_deleted_users_refresh_token_gets_401():
    user = make_worker()
    tokens = login(user.username).json()
    user.delete()
    response = refresh(tokens["refresh"])
    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


# --- throttling ---------------------------------------------------------------------


def test_wrong_passwords_for_one_user_from_many_addresses_are_throttled_then_the_right_one(rates):
    rates(login="3/min")
    user = make_worker()
    for n in range(3):
        assert login(user.username, "wrong", address=f"10.0.0.{n}").status_code == 401
    assert_throttled(login(user.username, "wrong", address="10.0.0.9"))
    assert_throttled(login(user.username, address="10.0.0.10"))


def test_case_and_width_variants_of_a_username_share_its_throttle(rates):
    rates(login="3/min")
    make_worker(username="wrk3")
    for n, variant in enumerate(["WRK3", "ｗｒｋ３", "Wrk3"]):
        assert login(variant, "wrong", address=f"10.0.1.{n}").status_code == 401
    assert_throttled(login("wrk3", address="10.0.1.9"))


def test_one_address_is_throttled_across_usernames(rates):
    rates(login="3/min")
    for n in range(3):
        assert login(f"nobody{n}", "wrong", address="10.0.2.1").status_code == 401
    assert_throttled(login("somebody-else", "wrong", address="10.0.2.1"))
    assert login(make_worker().username, address="10.0.2.2").status_code == 200


def test_a_forwarded_for_header_does_not_escape_the_address_throttle(rates):
    rates(login="2/min")
    for n in range(2):
        login(f"nobody{n}", "wrong", address="10.0.3.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    response = login("nobody9", "wrong", address="10.0.3.1", HTTP_X_FORWARDED_FOR="192.0.2.9")
    assert_throttled(response)


def test_registration_is_throttled_per_address(rates):
    rates(register="2/hour")
    assert register("first", address="10.0.4.1").status_code == 201
    assert register("second", address="10.0.4.1").status_code == 201
    assert_throttled(register("third", address="10.0.4.1"))
    assert register("third", address="10.0.4.2").status_code == 201


def test_login_throttles_leave_other_endpoints_alone(rates):
    rates(login="1/min")
    user = make_worker()
    tokens = login(user.username).json()
    assert_throttled(login(user.username))
    for _ in range(3):
        response = refresh(tokens["refresh"])
        assert response.status_code == 200
        tokens = response.json()


def test_sign_in_goes_on_when_the_throttles_redis_is_away(settings, rates, caplog):
    rates(login="1/min")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    user = make_worker()
    assert login(user.username).status_code == 200
    assert login(user.username).status_code == 200
    assert "the cache is away" in caplog.text


# --- hostile input -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/register/"])
def test_a_json_body_nested_5000_deep_gets_400(path):
    body = "[" * 5000 + "]" * 5000
    response = APIClient().generic("POST", path, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "nested too deeply" in response.json()["detail"]


def test_a_username_nested_5000_deep_gets_400():
    body = '{"username": ' + "[" * 5000 + "]" * 5000 + ', "password": "x"}'
    response = APIClient().generic(
        "POST", "/api/auth/token/", body, content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_lone_surrogate_in_the_credentials_gets_400(field):
    credentials = {"username": "wrk3", "password": STRONG_PASSWORD, field: "a\ud800"}
    for path in ("/api/auth/token/", "/api/auth/register/"):
        body = json.dumps({**credentials, "user_type": "worker"})
        response = APIClient().generic("POST", path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.content)


# --- usernames -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["wrk３", "WRK3", "ｗｒｋ3", "Wrk3"])
def test_a_username_that_is_the_same_name_as_a_users_gets_400(variant):
    assert register("wrk3").status_code == 201
    response = register(variant)
    assert response.status_code == 400
    assert response.json()["username"] == ["A user with that username already exists."]
    assert User.objects.count() == 1


def test_a_fullwidth_username_is_stored_in_its_normal_form():
    response = register("ｗｒｋ３")
    assert response.status_code == 201
    assert response.json()["username"] == "wrk3"
    assert User.objects.get().username == "wrk3"


def test_a_username_mixing_scripts_gets_400():
    response = register("p\u0430ychain")  # a Cyrillic "а" among Latin letters
    assert response.status_code == 400
    assert "username" in response.json()


@pytest.mark.parametrize("name", ["алиса", "José", "山田たろう", "user.name+tag@x"])
def test_usernames_of_one_script_are_welcome(name):
    assert register(name).status_code == 201


@pytest.mark.parametrize("variant", ["WRK3", "ｗｒｋ３", "wrk3"])
def test_login_takes_any_form_of_the_name(variant):
    user = make_worker(username="wrk3")
    response = login(variant)
    assert response.status_code == 200
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


def test_the_same_name_registered_at_the_same_moment_gets_400(monkeypatch):
    """The check before the insert passes for both; the unique key refuses the
    second insert, and that is a 400 too."""
    checked = RegisterSerializer.validate

    def validate_then_lose_the_race(self, attrs):
        attrs = checked(self, attrs)
        make_worker(username="WRK3")
        return attrs

    monkeypatch.setattr(RegisterSerializer, "validate", validate_then_lose_the_race)
    response = register("wrk3")
    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.get().username == "WRK3"


def test_the_database_holds_one_user_per_name():
    make_worker(username="wrk3")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_worker(username="WRK3")


def test_the_admin_form_validation_refuses_the_same_name():
    make_worker(username="wrk3")
    with pytest.raises(ValidationError) as refused:
        User(username="Wrk3", password="x").full_clean()
    assert "username" in refused.value.message_dict


# --- live --------------------------------------------------------------------------------


@pytest.mark.live
def test_sign_in_is_throttled_across_processes_on_the_production_command(
    server_factory: Callable[..., LiveServer],
):
    """Two processes sharing Redis count one user's attempts together."""
    first = server_factory(THROTTLE_LOGIN_RATE="3/min")
    second = server_factory(THROTTLE_LOGIN_RATE="3/min")
    credentials = {"username": f"u{uuid.uuid4().hex[:10]}", "password": STRONG_PASSWORD}
    created = first.post("/api/auth/register/", json={**credentials, "user_type": "worker"})
    assert created.status_code == 201, created.text
    wrong = {**credentials, "password": "wrong"}
    answers: list[httpx.Response] = [
        server.post("/api/auth/token/", json=wrong) for server in (first, second, first)
    ]
    assert [answer.status_code for answer in answers] == [401, 401, 401]
    throttled = second.post("/api/auth/token/", json=credentials)
    assert throttled.status_code == 429, throttled.text
    assert throttled.headers["content-type"].startswith("application/json")
    assert throttled.json()["code"] == "throttled"
    assert int(throttled.headers["retry-after"]) > 0
