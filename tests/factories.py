"""Factories for users and jobs (plain functions: no extra dependency)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from jobs.models import Job, JobStatus, User, UserType
from jobs.services import job_transition

PASSWORD = "correct-horse-battery-staple"
_counter = itertools.count(1)


def make_user(*, user_type: str = UserType.WORKER, **fields: Any) -> User:
    n = next(_counter)
    fields.setdefault("username", f"{user_type}{n}")
    password = fields.pop("password", PASSWORD)
    user = User(user_type=user_type, **fields)
    user.set_password(password)
    user.save()
    return user


def make_employer(**fields: Any) -> User:
    return make_user(user_type=UserType.EMPLOYER, **fields)


def make_worker(**fields: Any) -> User:
    return make_user(user_type=UserType.WORKER, **fields)


def make_job(
    *,
    employer: User | None = None,
    status: str = JobStatus.OPEN,
    worker: User | None = None,
    **fields: Any,
) -> Job:
    """A job, created open and moved to `status` by the allowed transitions
    (`worker`, or a new one, accepts it on the way to accepted or completed)."""
    fields.setdefault("title", f"Job {next(_counter)}")
    fields.setdefault("job_type", "development")
    fields.setdefault("pay_amount_usd", Decimal("5000.00"))
    fields.setdefault("expires_at", timezone.now() + timedelta(days=7))
    job = Job.objects.create(employer=employer or make_employer(), **fields)
    if status in (JobStatus.ACCEPTED, JobStatus.COMPLETED):
        job = job_transition(job=job, to=JobStatus.ACCEPTED, worker=worker or make_worker())
    if status == JobStatus.COMPLETED:
        job = job_transition(job=job, to=JobStatus.COMPLETED, payment_released=True)
    if status == JobStatus.REFUNDED:
        job = job_transition(job=job, to=JobStatus.REFUNDED)
    return job


def make_superuser(**fields: Any) -> User:
    fields.setdefault("user_type", UserType.EMPLOYER)
    return make_user(is_staff=True, is_superuser=True, **fields)
