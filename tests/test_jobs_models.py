"""The Job model holds its states: no save, by any path, makes a change
ALLOWED_TRANSITIONS forbids, and the database refuses states that cannot be."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from jobs import services
from jobs.models import ALLOWED_TRANSITIONS, Job, JobStatus, JobTransitionError

from .factories import make_employer, make_job, make_worker

pytestmark = pytest.mark.django_db

FORBIDDEN = [
    (before, after)
    for before in JobStatus.values
    for after in JobStatus.values
    if after != before and after not in ALLOWED_TRANSITIONS[before]
]


@pytest.mark.parametrize(("before", "after"), FORBIDDEN)
def test_save_refuses_a_forbidden_status_change(before, after):
    job = make_job(status=before)
    job.status = after
    with pytest.raises(JobTransitionError):
        job.save()
    assert Job.objects.get(pk=job.pk).status == before


def test_save_refuses_to_reopen_a_completed_job_even_with_its_escrow_cleared():
    job = make_job(status=JobStatus.COMPLETED)
    job.status, job.worker, job.payment_released = JobStatus.OPEN, None, False
    with pytest.raises(JobTransitionError, match="completed cannot become open"):
        job.save()


def test_a_stale_copy_cannot_write_back_an_old_status():
    job = make_job()
    stale = Job.objects.get(pk=job.pk)
    services.job_accept(job=job, worker=make_worker())
    stale.title = "Renamed"
    with pytest.raises(JobTransitionError):
        stale.save()
    assert Job.objects.get(pk=job.pk).status == JobStatus.ACCEPTED


def test_saving_other_fields_only_leaves_the_stored_state_alone():
    job = make_job()
    stale = Job.objects.get(pk=job.pk)
    services.job_accept(job=job, worker=make_worker())
    stale.title = "Renamed"
    stale.save(update_fields=["title"])
    stored = Job.objects.get(pk=job.pk)
    assert (stored.title, stored.status) == ("Renamed", JobStatus.ACCEPTED)


def test_a_new_job_starts_open():
    with pytest.raises(JobTransitionError, match="starts open"):
        Job.objects.create(
            employer=make_employer(),
            title="t",
            job_type="design",
            pay_amount_usd=10,
            status=JobStatus.COMPLETED,
            worker=make_worker(),
            payment_released=True,
        )
    assert not Job.objects.exists()


def test_allowed_changes_still_save():
    job = make_job(status=JobStatus.ACCEPTED)
    job.status, job.payment_released = JobStatus.COMPLETED, True
    job.save()
    assert Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED


@pytest.mark.parametrize(
    "changes",
    [
        {"payment_released": True},
        {"status": JobStatus.ACCEPTED},  # accepted without a worker
        {"status": JobStatus.COMPLETED},  # completed without a worker or payment
        {"pay_amount_usd": 1_000_001},
    ],
)
def test_queryset_update_cannot_store_an_impossible_state(changes):
    job = make_job()
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(**changes)
    assert Job.objects.get(pk=job.pk).status == JobStatus.OPEN
