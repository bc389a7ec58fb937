"""
The marketplace's state changes, in one place.

Every change of a job's status goes through `job_transition`, which refuses
what ALLOWED_TRANSITIONS does not allow (and Job.save() refuses it on any
other path, with the same JobTransitionError). Events are not published here: the
signals in jobs.signals see every saved change (API, admin, ORM alike) and
hand it to the publishing service after the transaction commits.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from .models import Job, JobStatus, JobTransitionError, User, check_status_change

__all__ = [
    "JobPermissionError",
    "JobTransitionError",
    "job_accept",
    "job_complete",
    "job_create",
    "job_refund",
    "job_transition",
    "refund_expired_jobs",
]


class JobPermissionError(Exception):
    """The user may not make this change to this job."""


def job_transition(*, job: Job, to: str, **changes: object) -> Job:
    """Move `job` to status `to`, saving `changes` with it. The row is locked
    and re-read, so two concurrent transitions cannot both succeed."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if to == locked.status:
            raise JobTransitionError(f"A job that is {locked.status} cannot become {to}.")
        check_status_change(locked.status, to)
        locked.status = to
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save()
    return locked


def job_create(
    *,
    employer: User,
    title: str,
    job_type: str,
    pay_amount_usd: Decimal,
    description: str = "",
    expires_at: datetime | None = None,
) -> Job:
    if not employer.is_employer:
        raise JobPermissionError("Only employers can post jobs.")
    job = Job(
        employer=employer,
        title=title,
        description=description,
        job_type=job_type,
        pay_amount_usd=pay_amount_usd,
    )
    if expires_at is not None:
        job.expires_at = expires_at
    job.full_clean()
    with transaction.atomic():  # the job and its outbox event commit together
        job.save()
    return job


def job_accept(*, job: Job, worker: User) -> Job:
    if not worker.is_worker:
        raise JobPermissionError("Only workers can accept jobs.")
    if job.employer_id == worker.pk:
        raise JobPermissionError("You cannot accept your own job.")
    if job.status == JobStatus.OPEN and job.is_expired:
        raise JobTransitionError("This job has expired and can no longer be accepted.")
    return job_transition(job=job, to=JobStatus.ACCEPTED, worker=worker)


def job_complete(*, job: Job, employer: User | None = None) -> Job:
    """The employer confirms the work: the job completes and its escrowed
    payment is released to the worker. `employer` None is the operator (the
    admin's action)."""
    if employer is not None and job.employer_id != employer.pk:
        raise JobPermissionError("Only the job's employer can complete it.")
    return job_transition(job=job, to=JobStatus.COMPLETED, payment_released=True)


def job_refund(*, job: Job, employer: User | None = None) -> Job:
    """Return an expired open job's funds to its employer. `employer` None is
    the system (the expiry sweep)."""
    if employer is not None and job.employer_id != employer.pk:
        raise JobPermissionError("Only the job's employer can refund it.")
    if job.status == JobStatus.OPEN and not job.is_expired:
        raise JobTransitionError(
            "An open job can be refunded only once it has expired "
            f"(it expires at {job.expires_at.isoformat()})."
        )
    return job_transition(job=job, to=JobStatus.REFUNDED)


def refund_expired_jobs(*, now: datetime | None = None) -> list[Job]:
    """Refund every open job past its expiry. Returns the refunded jobs."""
    now = now or timezone.now()
    refunded = []
    for job in Job.objects.filter(status=JobStatus.OPEN, expires_at__lte=now).order_by("pk"):
        try:
            refunded.append(job_refund(job=job))
        except JobTransitionError:
            continue  # changed by someone else meanwhile
    return refunded
