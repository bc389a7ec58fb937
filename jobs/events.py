"""What each job change announces: the event type and its data."""

from __future__ import annotations

from typing import Any

from realtime.permissions import personal_channel
from realtime.protocol import PublicationType

from .models import Job, JobStatus

JOBS_CHANNEL = "jobs"

JOB_CREATED = "job_created"
JOB_ACCEPTED = "job_accepted"
JOB_COMPLETED = "job_completed"
JOB_REFUNDED = "job_refunded"


def job_event_channels(event_type: str, job: Job) -> list[str]:
    """Where an event goes: `jobs`, and the personal channels of those it
    concerns."""
    people: list[int | None] = []
    if event_type in (JOB_ACCEPTED, JOB_REFUNDED):
        people = [job.employer_id]
    elif event_type == JOB_COMPLETED:
        people = [job.employer_id, job.worker_id]
    return [JOBS_CHANNEL, *(personal_channel(pk) for pk in people if pk is not None)]


def job_event(
    job: Job, *, created: bool, previous_status: str | None
) -> tuple[str, dict[str, Any]] | None:
    """The event a saved job announces, or None when the save changed no status."""
    if created:
        return JOB_CREATED, {
            "job_id": job.pk,
            "title": job.title,
            "pay_amount_usd": float(job.pay_amount_usd),
            "job_type": job.job_type,
            "employer_id": job.employer_id,
            "status": job.status,
            "expires_at": job.expires_at.isoformat(),
        }
    if job.status == previous_status:
        return None
    if job.status == JobStatus.ACCEPTED:
        return JOB_ACCEPTED, {
            "job_id": job.pk,
            "worker_id": job.worker_id,
            "employer_id": job.employer_id,
        }
    if job.status == JobStatus.COMPLETED:
        return JOB_COMPLETED, {
            "job_id": job.pk,
            "payment_released": True,
            "employer_id": job.employer_id,
            "worker_id": job.worker_id,
            "pay_amount_usd": float(job.pay_amount_usd),
        }
    if job.status == JobStatus.REFUNDED:
        return JOB_REFUNDED, {
            "job_id": job.pk,
            "reason": "expired",
            "employer_id": job.employer_id,
            "pay_amount_usd": float(job.pay_amount_usd),
        }
    return None


def payment_events(
    job: Job, *, created: bool, previous_status: str | None
) -> list[tuple[str, dict[str, Any], list[str]]]:
    """The payment notifications a saved job announces, to the personal
    channels of those paid or refunded: (type, data, channels) each."""
    if created or job.status == previous_status:
        return []
    amount = float(job.pay_amount_usd)
    if job.status == JobStatus.COMPLETED:
        people = [job.worker_id, job.employer_id]
        return [
            (
                PublicationType.PAYMENT_RELEASED,
                {
                    "job_id": job.pk,
                    "amount_usd": amount,
                    "worker_id": job.worker_id,
                    "employer_id": job.employer_id,
                },
                [personal_channel(pk) for pk in people if pk is not None],
            )
        ]
    if job.status == JobStatus.REFUNDED:
        return [
            (
                PublicationType.PAYMENT_REFUNDED,
                {"job_id": job.pk, "amount_usd": amount},
                [personal_channel(job.employer_id)],
            )
        ]
    return []
