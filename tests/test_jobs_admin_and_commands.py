"""The jobs admin and the management commands."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from jobs import services
from jobs.management.commands import refund_expired_jobs as refund_command
from jobs.models import Job, JobStatus, User
from realtime.models import OutboxMessage

from .factories import make_job, make_superuser, make_worker

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


# --- Escrow-safe admin -----------------------------------------------------------


def run_action(client, action: str, *jobs: Job):
    return client.post(
        "/admin/jobs/job/",
        {"action": action, "_selected_action": [str(job.pk) for job in jobs]},
        follow=True,
    )


def change_form(job: Job, **changes: str) -> dict[str, str]:
    form = {
        "title": job.title,
        "description": job.description,
        "job_type": job.job_type,
        "expires_at_0": job.expires_at.strftime("%Y-%m-%d"),
        "expires_at_1": job.expires_at.strftime("%H:%M:%S"),
    }
    return {**form, **changes}


def test_admin_job_state_and_escrow_fields_are_read_only(client):
    client.force_login(make_superuser())
    job = make_job(status=JobStatus.ACCEPTED)
    page = client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    for field in ("status", "worker", "payment_released", "employer", "pay_amount_usd"):
        assert f'name="{field}"' not in page
    assert 'name="title"' in page
    assert "Accepted" in page


def test_admin_add_form_sets_the_employer_and_pay_but_not_the_state(client):
    client.force_login(make_superuser())
    page = client.get("/admin/jobs/job/add/").content.decode()
    assert 'name="employer"' in page
    assert 'name="pay_amount_usd"' in page
    for field in ("status", "worker", "payment_released"):
        assert f'name="{field}"' not in page


def test_admin_cannot_reopen_a_completed_paid_job(client):
    client.force_login(make_superuser())
    job = make_job(status=JobStatus.COMPLETED)
    form = change_form(job, status="open", worker="", payment_released="", pay_amount_usd="1")
    response = client.post(f"/admin/jobs/job/{job.pk}/change/", form)
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.payment_released, job.pay_amount_usd) == ("completed", True, 5000)
    assert job.worker_id is not None


def test_admin_edit_of_a_stale_form_keeps_the_state_set_meanwhile(client):
    client.force_login(make_superuser())
    job = make_job()
    form = change_form(job, title="Renamed")
    worker = make_worker()
    services.job_accept(job=job, worker=worker)
    assert client.post(f"/admin/jobs/job/{job.pk}/change/", form).status_code == 302
    job.refresh_from_db()
    assert (job.title, job.status, job.worker_id) == ("Renamed", "accepted", worker.pk)


def test_admin_complete_action_releases_the_payment_and_announces_it(client):
    client.force_login(make_superuser())
    job = make_job(status=JobStatus.ACCEPTED)
    response = run_action(client, "complete_jobs", job)
    assert response.status_code == 200
    assert "1 job(s) completed." in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.payment_released) == (JobStatus.COMPLETED, True)
    event = OutboxMessage.objects.filter(type="job_completed").get()
    assert event.key == f"job:{job.pk}"


def test_admin_refund_action_refunds_an_expired_job_and_announces_it(client):
    client.force_login(make_superuser())
    job = make_job(expires_at=timezone.now() - timedelta(minutes=1))
    response = run_action(client, "refund_jobs", job)
    assert "1 job(s) refunded." in response.content.decode()
    assert Job.objects.get(pk=job.pk).status == JobStatus.REFUNDED
    assert OutboxMessage.objects.filter(type="job_refunded", key=f"job:{job.pk}").exists()


def test_admin_actions_refuse_what_the_api_refuses_with_a_message_not_a_500(client):
    client.force_login(make_superuser())
    fresh = make_job()
    done = make_job(status=JobStatus.COMPLETED)
    accepted = make_job(status=JobStatus.ACCEPTED)
    refused = run_action(client, "refund_jobs", fresh, done, accepted)
    assert refused.status_code == 200
    page = refused.content.decode()
    assert f"Job #{fresh.pk}: An open job can be refunded only once it has expired" in page
    assert f"Job #{done.pk}: A job that is completed cannot become refunded." in page
    assert f"Job #{accepted.pk}: A job that is accepted cannot become refunded." in page
    not_accepted = run_action(client, "complete_jobs", fresh)
    assert "A job that is open cannot become completed." in not_accepted.content.decode()
    assert [job.status for job in Job.objects.order_by("pk")] == ["open", "completed", "accepted"]
    assert (
        not OutboxMessage.objects.filter(type__in=["job_refunded", "job_completed"])
        .exclude(key=f"job:{done.pk}")
        .exists()
    )


def test_admin_deletes_open_jobs_only(client):
    client.force_login(make_superuser())
    open_job = make_job()
    paid = make_job(status=JobStatus.COMPLETED)
    assert client.get(f"/admin/jobs/job/{paid.pk}/delete/").status_code == 403
    assert client.post(f"/admin/jobs/job/{paid.pk}/delete/", {"post": "yes"}).status_code == 403
    refused = client.post(
        "/admin/jobs/job/",
        {"action": "delete_selected", "_selected_action": [open_job.pk, paid.pk], "post": "yes"},
    )
    assert refused.status_code == 403
    assert Job.objects.count() == 2
    client.post(
        "/admin/jobs/job/",
        {"action": "delete_selected", "_selected_action": [open_job.pk], "post": "yes"},
    )
    assert list(Job.objects.values_list("pk", flat=True)) == [paid.pk]
