"""The jobs REST API: registration, tokens, and each state change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.models import Job, JobStatus, User

from .factories import PASSWORD, make_employer, make_job, make_worker

pytestmark = pytest.mark.django_db


def client_for(user: User) -> APIClient:
    client = APIClient()
    response = client.post(
        "/api/auth/token/", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client


def test_register_creates_a_user_of_the_given_type():
    response = APIClient().post(
        "/api/auth/register/",
        {"username": "erin", "password": "a-long-passphrase-9", "user_type": "employer"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["user_type"] == "employer"
    assert "password" not in response.json()
    assert User.objects.get(username="erin").check_password("a-long-passphrase-9")


@pytest.mark.parametrize("password", ["short", "12345678901", "password123"])
def test_register_rejects_weak_passwords(password):
    response = APIClient().post(
        "/api/auth/register/",
        {"username": "erin", "password": password, "user_type": "worker"},
        format="json",
    )
    assert response.status_code == 400
    assert "password" in response.json()


def test_register_rejects_an_unknown_user_type():
    response = APIClient().post(
        "/api/auth/register/",
        {"username": "erin", "password": "a-long-passphrase-9", "user_type": "admin"},
        format="json",
    )
    assert response.status_code == 400
    assert "user_type" in response.json()


def test_token_pair_and_refresh():
    make_worker(username="walt")
    client = APIClient()
    tokens = client.post(
        "/api/auth/token/", {"username": "walt", "password": PASSWORD}, format="json"
    ).json()
    assert set(tokens) == {"access", "refresh"}
    refreshed = client.post(
        "/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200
    assert "access" in refreshed.json()


def test_jobs_need_authentication():
    assert APIClient().get("/api/jobs/").status_code == 401


def test_employer_creates_a_job_with_default_expiry_of_seven_days():
    response = client_for(make_employer()).post(
        "/api/jobs/",
        {"title": "Web Development", "job_type": "development", "pay_amount_usd": "5000"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"]
    assert body["status"] == "open"
    job = Job.objects.get(pk=body["id"])
    assert abs(job.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


def test_employer_may_set_the_expiry():
    expires = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    response = client_for(make_employer()).post(
        "/api/jobs/",
        {
            "title": "Logo",
            "job_type": "design",
            "pay_amount_usd": "10.50",
            "expires_at": expires.isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201
    assert Job.objects.get(pk=response.json()["id"]).expires_at == expires


def test_workers_cannot_create_jobs():
    response = client_for(make_worker()).post(
        "/api/jobs/",
        {"title": "x", "job_type": "design", "pay_amount_usd": "10"},
        format="json",
    )
    assert response.status_code == 403


@pytest.mark.parametrize("amount", ["0", "-5", "0.00"])
def test_pay_amount_must_be_positive(amount):
    response = client_for(make_employer()).post(
        "/api/jobs/",
        {"title": "x", "job_type": "design", "pay_amount_usd": amount},
        format="json",
    )
    assert response.status_code == 400
    assert "pay_amount_usd" in response.json()


def test_list_and_retrieve():
    job = make_job()
    client = client_for(make_worker())
    assert [j["id"] for j in client.get("/api/jobs/").json()] == [job.pk]
    assert client.get(f"/api/jobs/{job.pk}/").json()["title"] == job.title


def test_worker_accepts_an_open_job():
    job = make_job()
    worker = make_worker()
    response = client_for(worker).post(f"/api/jobs/{job.pk}/accept/")
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert response.json()["worker"] == worker.pk


def test_employers_cannot_accept_jobs():
    job = make_job()
    assert client_for(make_employer()).post(f"/api/jobs/{job.pk}/accept/").status_code == 403


def test_accepting_an_accepted_job_is_409():
    job = make_job()
    client_for(make_worker()).post(f"/api/jobs/{job.pk}/accept/")
    response = client_for(make_worker()).post(f"/api/jobs/{job.pk}/accept/")
    assert response.status_code == 409
    assert "accepted" in response.json()["detail"]


def test_employer_completes_an_accepted_job_and_releases_payment():
    job = make_job()
    client_for(make_worker()).post(f"/api/jobs/{job.pk}/accept/")
    response = client_for(job.employer).post(f"/api/jobs/{job.pk}/complete/")
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.json()["payment_released"] is True


def test_only_the_jobs_employer_completes_it():
    job = make_job()
    client_for(make_worker()).post(f"/api/jobs/{job.pk}/accept/")
    assert client_for(make_employer()).post(f"/api/jobs/{job.pk}/complete/").status_code == 403


def test_completing_an_open_job_is_409():
    job = make_job()
    assert client_for(job.employer).post(f"/api/jobs/{job.pk}/complete/").status_code == 409


def test_refunding_an_open_job_not_yet_expired_is_409():
    job = make_job()
    response = client_for(job.employer).post(f"/api/jobs/{job.pk}/refund/")
    assert response.status_code == 409
    assert "expire" in response.json()["detail"]


def test_employer_refunds_an_expired_job():
    job = make_job(expires_at=timezone.now() - timedelta(minutes=1))
    response = client_for(job.employer).post(f"/api/jobs/{job.pk}/refund/")
    assert response.status_code == 200
    assert response.json()["status"] == JobStatus.REFUNDED


def test_only_the_jobs_employer_refunds_it():
    job = make_job(expires_at=timezone.now() - timedelta(minutes=1))
    assert client_for(make_employer()).post(f"/api/jobs/{job.pk}/refund/").status_code == 403


def test_an_expired_job_cannot_be_accepted():
    job = make_job(expires_at=timezone.now() - timedelta(minutes=1))
    assert client_for(make_worker()).post(f"/api/jobs/{job.pk}/accept/").status_code == 409
