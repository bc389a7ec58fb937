from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


class UserType(models.TextChoices):
    EMPLOYER = "employer", "Employer"
    WORKER = "worker", "Worker"


class User(AbstractUser):
    """A PayChain user: an employer who posts and pays for jobs, or a worker."""

    user_type = models.CharField(max_length=16, choices=UserType.choices, default=UserType.WORKER)

    @property
    def is_employer(self) -> bool:
        return self.user_type == UserType.EMPLOYER

    @property
    def is_worker(self) -> bool:
        return self.user_type == UserType.WORKER


class JobStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    COMPLETED = "completed", "Completed"
    REFUNDED = "refunded", "Refunded"


# The transitions a job may make; jobs.services is the one place that makes them.
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    JobStatus.OPEN: {JobStatus.ACCEPTED, JobStatus.REFUNDED},
    JobStatus.ACCEPTED: {JobStatus.COMPLETED},
    JobStatus.COMPLETED: set(),
    JobStatus.REFUNDED: set(),
}

DEFAULT_JOB_LIFETIME = timedelta(days=7)


def default_expiry():
    return timezone.now() + DEFAULT_JOB_LIFETIME


class Job(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    job_type = models.SlugField(max_length=50, help_text="e.g. development, design, writing")
    pay_amount_usd = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.OPEN, db_index=True
    )
    employer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="posted_jobs")
    worker = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="accepted_jobs", null=True, blank=True
    )
    expires_at = models.DateTimeField(default=default_expiry)
    payment_released = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(pay_amount_usd__gt=0), name="job_pay_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
