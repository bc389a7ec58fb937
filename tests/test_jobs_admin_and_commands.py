"""The jobs admin and the management commands."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from jobs.management.commands import refund_expired_jobs as refund_command
from jobs.models import Job, JobStatus, User

from .factories import make_job, make_superuser

pytestmark = pytest.mark.django_db


def test_refund_expired_jobs_refunds_only_open_expired_jobs():
    expired = make_job(expires_at=timezone.now() - timedelta(minutes=5))
    fresh = make_job()
    out = StringIO()
    call_command("refund_expired_jobs", stdout=out)
    assert "Refunded 1 expired job" in out.getvalue()
    assert Job.objects.get(pk=expired.pk).status == JobStatus.REFUNDED
    assert Job.objects.get(pk=fresh.pk).status == JobStatus.OPEN


def test_refund_expired_jobs_every_keeps_sweeping(monkeypatch):
    sweeps = []

    def sleep(seconds: float) -> None:
        sweeps.append(seconds)
        if len(sweeps) == 1:
            make_job(expires_at=timezone.now() - timedelta(seconds=1))
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(refund_command.time, "sleep", sleep)
    out = StringIO()
    with pytest.raises(KeyboardInterrupt):
        call_command("refund_expired_jobs", "--every", "2", stdout=out)
    assert sweeps == [2.0, 2.0]
    assert out.getvalue().splitlines() == [
        "Refunded 0 expired job(s).",
        "Refunded 1 expired job(s).",
    ]


def test_createsuperuser_noinput_uses_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-passphrase")
    call_command(
        "createsuperuser",
        "--noinput",
        "--username",
        "root",
        "--email",
        "root@example.com",
        stdout=StringIO(),
    )
    user = User.objects.get(username="root")
    assert user.is_superuser
    assert user.check_password("a-long-admin-passphrase")


def test_seed_demo_creates_users_and_jobs_once():
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())
    assert User.objects.filter(user_type="employer").count() == 2
    assert Job.objects.count() == 3


def test_admin_job_list_shows_status_type_pay_people_and_expiry(client):
    client.force_login(make_superuser())
    job = make_job(title="Logo redesign", job_type="design")
    page = client.get("/admin/jobs/job/").content.decode()
    for text in ("Logo redesign", "design", "5000", job.employer.username, "Open"):
        assert text in page
    for column in (
        "column-status",
        "column-job_type",
        "column-pay_amount_usd",
        "column-employer",
        "column-worker",
        "column-expires_at",
    ):
        assert column in page


def test_admin_job_list_filters_by_status_and_type_and_searches_titles(client):
    client.force_login(make_superuser())
    make_job(title="Logo redesign", job_type="design")
    make_job(title="API work", job_type="development", status=JobStatus.REFUNDED)
    assert "API work" not in client.get("/admin/jobs/job/?status__exact=open").content.decode()
    assert "Logo" not in client.get("/admin/jobs/job/?job_type=development").content.decode()
    assert "API work" not in client.get("/admin/jobs/job/?q=logo").content.decode()
    assert "Logo redesign" in client.get("/admin/jobs/job/?q=logo").content.decode()


def test_admin_job_timestamps_are_read_only(client):
    client.force_login(make_superuser())
    job = make_job()
    page = client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert 'name="created_at"' not in page
    assert "Created at" in page


def test_admin_user_type_is_editable(client):
    client.force_login(make_superuser())
    user = make_superuser(username="other")
    page = client.get(f"/admin/jobs/user/{user.pk}/change/").content.decode()
    assert 'name="user_type"' in page
