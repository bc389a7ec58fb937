"""The jobs REST API: registration, tokens, each state change, validation,
pagination, filters and who sees which job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.models import Job, JobStatus, JobType, User

from .factories import PASSWORD, make_employer, make_job, make_superuser, make_worker

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
    assert [j["id"] for j in client.get("/api/jobs/").json()["results"]] == [job.pk]
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


# --- Validation -------------------------------------------------------------


def post_job(user: User, **fields: object):
    body = {"title": "Logo", "job_type": "design", "pay_amount_usd": "10", **fields}
    return client_for(user).post("/api/jobs/", body, format="json")


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
def test_title_is_1_to_200_characters(title):
    response = post_job(make_employer(), title=title)
    assert response.status_code == 400
    assert "title" in response.json()


def test_a_title_of_200_characters_and_a_description_of_20000_are_accepted():
    response = post_job(make_employer(), title="x" * 200, description="d" * 20_000)
    assert response.status_code == 201, response.content


def test_description_is_at_most_20000_characters():
    response = post_job(make_employer(), description="d" * 20_001)
    assert response.status_code == 400
    assert "description" in response.json()


@pytest.mark.parametrize("job_type", [choice.value for choice in JobType])
def test_every_documented_job_type_is_accepted(job_type):
    response = post_job(make_employer(), job_type=job_type)
    assert response.status_code == 201, response.content
    assert response.json()["job_type"] == job_type


def test_development_and_design_are_job_types():
    assert {"development", "design"} <= set(JobType.values)


@pytest.mark.parametrize("job_type", ["basket-weaving", "", "DESIGN"])
def test_an_unknown_job_type_is_400(job_type):
    response = post_job(make_employer(), job_type=job_type)
    assert response.status_code == 400
    assert "job_type" in response.json()


@pytest.mark.parametrize(
    "amount",
    ["NaN", "nan", "sNaN", "1e400", "Infinity", "-Infinity", "inf", "1000000.01", "10.001", "abc"],
)
def test_pay_amount_must_be_a_finite_amount_in_range_with_two_decimals(amount):
    response = post_job(make_employer(), pay_amount_usd=amount)
    assert response.status_code == 400
    assert "pay_amount_usd" in response.json()


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1e-400"])
def test_pay_amount_json_numbers_that_overflow_are_400(literal):
    body = f'{{"title": "Logo", "job_type": "design", "pay_amount_usd": {literal}}}'
    response = client_for(make_employer()).post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 400
    assert "pay_amount_usd" in response.json()


@pytest.mark.parametrize("amount", ["0.01", "1000000", "1000000.00", "12.5"])
def test_pay_amount_bounds_are_accepted(amount):
    response = post_job(make_employer(), pay_amount_usd=amount)
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "ahead", [timedelta(minutes=-1), timedelta(days=-30), timedelta(days=90, minutes=1)]
)
def test_expiry_must_be_in_the_future_and_at_most_90_days_ahead(ahead):
    response = post_job(make_employer(), expires_at=(timezone.now() + ahead).isoformat())
    assert response.status_code == 400
    assert "expires_at" in response.json()


def test_an_expiry_89_days_ahead_is_accepted():
    expires = timezone.now() + timedelta(days=89)
    assert post_job(make_employer(), expires_at=expires.isoformat()).status_code == 201


# --- Pagination and filters ----------------------------------------------------


def test_the_list_is_paginated_20_a_page_by_default():
    employer = make_employer()
    jobs = [make_job(employer=employer) for _ in range(23)]
    client = client_for(make_worker())
    first = client.get("/api/jobs/").json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 23
    assert first["previous"] is None
    assert [j["id"] for j in first["results"]] == [job.pk for job in reversed(jobs)][:20]
    second = client.get(first["next"]).json()
    assert [j["id"] for j in second["results"]] == [job.pk for job in reversed(jobs)][20:]
    assert second["next"] is None
    assert second["previous"]


def test_page_size_chooses_the_size_of_a_page_up_to_100():
    employer = make_employer()
    for _ in range(7):
        make_job(employer=employer)
    client = client_for(make_worker())
    body = client.get("/api/jobs/?page_size=5").json()
    assert (body["count"], len(body["results"])) == (7, 5)
    assert "page_size=5" in body["next"]
    assert len(client.get("/api/jobs/?page_size=100").json()["results"]) == 7


@pytest.mark.parametrize(
    "query",
    [
        "page_size=101",
        "page_size=0",
        "page_size=many",
        "page=0",
        "page=first",
        "status=closed",
        "job_type=basket-weaving",
        "mine=perhaps",
    ],
)
def test_invalid_list_queries_are_400_naming_the_parameter(query):
    response = client_for(make_worker()).get(f"/api/jobs/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_a_page_past_the_last_is_404():
    make_job()
    assert client_for(make_worker()).get("/api/jobs/?page=2").status_code == 404


def test_filter_by_status_and_job_type():
    employer = make_employer()
    design = make_job(employer=employer, job_type="design")
    make_job(employer=employer, job_type="development")
    accepted = make_job(employer=employer, job_type="design", status=JobStatus.ACCEPTED)
    client = client_for(employer)

    def ids(query: str) -> set[int]:
        response = client.get(f"/api/jobs/?{query}")
        assert response.status_code == 200, response.content
        return {job["id"] for job in response.json()["results"]}

    assert ids("status=accepted") == {accepted.pk}
    assert ids("job_type=design") == {design.pk, accepted.pk}
    assert ids("job_type=design&status=open") == {design.pk}
    assert len(ids("status=&job_type=")) == 3  # an empty filter is no filter


def test_mine_lists_the_jobs_i_posted_or_work_on():
    worker = make_worker()
    employer = make_employer()
    posted = make_job(employer=employer)
    working_on = make_job(status=JobStatus.ACCEPTED, worker=worker)
    make_job()  # someone else's open job

    def ids(user: User, query: str) -> set[int]:
        return {j["id"] for j in client_for(user).get(f"/api/jobs/?{query}").json()["results"]}

    assert ids(employer, "mine=true") == {posted.pk}
    assert ids(worker, "mine=true") == {working_on.pk}
    assert len(ids(worker, "mine=false")) == 3  # the open jobs and the one it works on


# --- Visibility ----------------------------------------------------------------


def test_jobs_that_are_not_open_are_listed_only_for_their_people_and_staff():
    worker = make_worker()
    job = make_job(status=JobStatus.ACCEPTED, worker=worker)
    done = make_job(employer=job.employer, status=JobStatus.COMPLETED)
    refunded = make_job(status=JobStatus.REFUNDED)
    open_job = make_job()

    def listed(user: User) -> set[int]:
        return {j["id"] for j in client_for(user).get("/api/jobs/").json()["results"]}

    assert listed(make_worker()) == {open_job.pk}
    assert listed(make_employer()) == {open_job.pk}
    assert listed(worker) == {open_job.pk, job.pk}
    assert listed(job.employer) == {open_job.pk, job.pk, done.pk}
    assert listed(refunded.employer) == {open_job.pk, refunded.pk}
    assert listed(make_superuser()) == {open_job.pk, job.pk, done.pk, refunded.pk}


def test_retrieving_someone_elses_job_that_is_not_open_is_404():
    worker = make_worker()
    job = make_job(status=JobStatus.ACCEPTED, worker=worker)
    assert client_for(make_worker()).get(f"/api/jobs/{job.pk}/").status_code == 404
    assert client_for(make_employer()).get(f"/api/jobs/{job.pk}/").status_code == 404
    assert client_for(worker).get(f"/api/jobs/{job.pk}/").status_code == 200
    assert client_for(job.employer).get(f"/api/jobs/{job.pk}/").status_code == 200
    assert client_for(make_superuser()).get(f"/api/jobs/{job.pk}/").status_code == 200


def test_a_worker_who_loses_the_accept_race_gets_409_not_404():
    job = make_job(status=JobStatus.ACCEPTED)  # accepted by another worker
    loser = make_worker()
    assert client_for(loser).get(f"/api/jobs/{job.pk}/").status_code == 404
    response = client_for(loser).post(f"/api/jobs/{job.pk}/accept/")
    assert response.status_code == 409
    assert "accepted" in response.json()["detail"]
