"""The OpenAPI document (/api/schema/), Swagger UI (/api/docs/) with its own
assets, and the API's answers checked against the document."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from . import contracts
from .factories import PASSWORD, make_employer, make_job, make_superuser, make_worker

KEY = "schema-service-key"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.REALTIME = {
        **settings.REALTIME,
        "BROADCAST_API_KEYS": [KEY],
        "RELAY_IN_PROCESS": False,
    }


def service() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {KEY}")
    return client


def as_user(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def test_the_schema_validates_with_no_warning(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))


def test_the_schema_is_served_and_covers_every_http_endpoint():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {
        "/broadcast/",
        "/health/",
        "/stats/",
        "/metrics/",
        "/api/presence/{channel}/",
        "/api/asyncapi.json",
        "/api/auth/register/",
        "/api/auth/token/",
        "/api/auth/token/refresh/",
        "/api/jobs/",
        "/api/jobs/{id}/",
        "/api/jobs/{id}/accept/",
        "/api/jobs/{id}/complete/",
        "/api/jobs/{id}/refund/",
    } <= set(document["paths"])
    assert document["components"]["securitySchemes"]["apiKeyAuth"]["name"] == "Authorization"
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/broadcast", {202, 400, 401, 403, 503}),
        ("get", "/health", {200, 503}),
        ("get", "/stats", {200}),
        ("get", "/metrics", {200, 401, 403}),
        ("get", "/api/presence/job.1/", {200, 400, 401, 403, 404}),
        ("post", "/api/jobs/", {201, 400, 401, 403}),
        ("post", "/api/jobs/1/accept/", {200, 401, 403, 404}),
    ],
)
def test_each_endpoint_documents_its_error_answers(method, path, statuses):
    assert statuses <= contracts.documented_statuses(path, method)


def test_swagger_ui_is_served_from_our_own_static_files():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    assert "https://" not in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def strictly(client: APIClient, method: str, path: str, status: int, **kwargs) -> dict | list:
    """Call the API; the answer must have `status` and match the document."""
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.content
    contracts.check_api_response(method, path, response, strict=True)
    return (
        response.json() if response.get("Content-Type", "").startswith("application/json") else {}
    )


def test_the_realtime_endpoints_answer_as_documented():
    anyone = APIClient()
    strictly(
        service(), "post", "/broadcast", 202, data={"type": "t", "channel": "jobs"}, format="json"
    )
    batch = [{"type": "a", "channel": "jobs"}, {"type": "b", "user_ids": [1, 2]}]
    strictly(service(), "post", "/broadcast", 202, data=batch, format="json")
    strictly(service(), "post", "/broadcast", 400, data={"type": "bad type"}, format="json")
    strictly(service(), "post", "/broadcast", 400, data=[{"type": "ok"}, {}], format="json")
    strictly(anyone, "post", "/broadcast", 401, data={"type": "t"}, format="json")
    strictly(as_user(make_worker()), "post", "/broadcast", 403, data={"type": "t"}, format="json")
    strictly(anyone, "get", "/health", 200)
    strictly(service(), "get", "/stats", 200)
    strictly(service(), "get", "/api/presence/job.1/", 200)
    strictly(service(), "get", "/api/presence/jobs/", 404)
    strictly(service(), "get", "/api/presence/bad!/", 400)
    strictly(anyone, "get", "/api/presence/job.1/", 401)
    strictly(anyone, "get", "/metrics", 401)
    strictly(as_user(make_superuser()), "get", "/api/asyncapi.json", 200)


def test_the_jobs_and_auth_endpoints_answer_as_documented():
    anyone = APIClient()
    strictly(
        anyone,
        "post",
        "/api/auth/register/",
        201,
        data={"username": "newcomer", "password": PASSWORD, "user_type": "worker"},
        format="json",
    )
    strictly(anyone, "post", "/api/auth/register/", 400, data={}, format="json")
    tokens = strictly(
        anyone,
        "post",
        "/api/auth/token/",
        200,
        data={"username": "newcomer", "password": PASSWORD},
        format="json",
    )
    strictly(
        anyone,
        "post",
        "/api/auth/token/refresh/",
        200,
        data={"refresh": tokens["refresh"]},
        format="json",
    )
    employer, worker = make_employer(), make_worker()
    job = strictly(
        as_user(employer),
        "post",
        "/api/jobs/",
        201,
        data={"title": "Site", "job_type": "development", "pay_amount_usd": "100"},
        format="json",
    )
    strictly(
        as_user(worker),
        "post",
        "/api/jobs/",
        403,
        data={"title": "x", "job_type": "development", "pay_amount_usd": "1"},
        format="json",
    )
    strictly(as_user(employer), "post", "/api/jobs/", 400, data={"title": ""}, format="json")
    strictly(as_user(worker), "get", "/api/jobs/", 200)
    strictly(as_user(worker), "get", f"/api/jobs/{job['id']}/", 200)
    strictly(as_user(worker), "get", "/api/jobs/999999/", 404)
    strictly(anyone, "get", "/api/jobs/", 401)
    strictly(as_user(worker), "post", f"/api/jobs/{job['id']}/accept/", 200)
    strictly(as_user(worker), "post", f"/api/jobs/{job['id']}/complete/", 403)
    done = make_job(status="completed")
    strictly(as_user(done.employer), "post", f"/api/jobs/{done.pk}/complete/", 409)
