from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models, router, transaction
from django.utils import timezone

from .usernames import username_key


class UserType(models.TextChoices):
    EMPLOYER = "employer", "Employer"
    WORKER = "worker", "Worker"


USERNAME_KEY_MAX_LENGTH = 300


class UserManager(DjangoUserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        """The user whose name is the same name as `username` (see
        jobs.usernames): login with `WRK3` or `ｗｒｋ３` finds `wrk3`."""
        return self.get(username_key=username_key(username or ""))


class User(AbstractUser):
    """A PayChain user: an employer who posts and pays for jobs, or a worker."""

    user_type = models.CharField(max_length=16, choices=UserType.choices, default=UserType.WORKER)
    # The username as compared (jobs.usernames.username_key), set by save():
    # unique, so that `WRK3` or `ｗｒｋ３` cannot sit beside `wrk3`.
    username_key = models.CharField(max_length=USERNAME_KEY_MAX_LENGTH, unique=True, editable=False)

    objects: ClassVar[UserManager] = UserManager()

    def clean(self) -> None:
        super().clean()
        key = username_key(self.username)
        if len(key) > USERNAME_KEY_MAX_LENGTH:
            raise ValidationError({"username": "This username is too long."}, code="max_length")
        if type(self)._default_manager.filter(username_key=key).exclude(pk=self.pk).exists():
            raise ValidationError(
                {"username": "A user with that username already exists."}, code="unique"
            )

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.username_key = username_key(self.username)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, "username_key"}
        super().save(*args, **kwargs)

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


class JobType(models.TextChoices):
    """What kind of work a job is (the API's and the admin's `job_type`)."""

    DEVELOPMENT = "development", "Development"
    DESIGN = "design", "Design"
    WRITING = "writing", "Writing"
    MARKETING = "marketing", "Marketing"
    DATA = "data", "Data"
    SUPPORT = "support", "Support"
    OTHER = "other", "Other"


# The transitions a job may make. jobs.services is the one place that makes
# them; Job.save() refuses any other (see check_status_change).
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    JobStatus.OPEN: {JobStatus.ACCEPTED, JobStatus.REFUNDED},
    JobStatus.ACCEPTED: {JobStatus.COMPLETED},
    JobStatus.COMPLETED: set(),
    JobStatus.REFUNDED: set(),
}

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 20_000
PAY_MIN_USD = Decimal("0.01")
PAY_MAX_USD = Decimal("1000000.00")
DEFAULT_JOB_LIFETIME = timedelta(days=7)
MAX_JOB_LIFETIME = timedelta(days=90)


class JobTransitionError(Exception):
    """A state change the job's current status does not allow."""

    code = "invalid_transition"


def check_status_change(previous: str | None, new: str) -> None:
    """Refuse a status change that ALLOWED_TRANSITIONS does not allow.
    `previous` None is a new job, which starts open."""
    if previous is None:
        if new != JobStatus.OPEN:
            raise JobTransitionError(f"A new job starts open, not {new}.")
    elif new != previous and new not in ALLOWED_TRANSITIONS[previous]:
        raise JobTransitionError(f"A job that is {previous} cannot become {new}.")


def default_expiry() -> datetime:
    return timezone.now() + DEFAULT_JOB_LIFETIME


def validate_new_expiry(value: datetime) -> None:
    """A new job's expiry: in the future, at most MAX_JOB_LIFETIME ahead."""
    now = timezone.now()
    if value <= now:
        raise ValidationError("The expiry must be in the future.", code="expiry_in_past")
    if value > now + MAX_JOB_LIFETIME:
        raise ValidationError(
            f"The expiry may be at most {MAX_JOB_LIFETIME.days} days ahead.",
            code="expiry_too_far",
        )


class JobQuerySet(models.QuerySet["Job"]):
    def involving(self, user: Any) -> JobQuerySet:
        """Jobs the user posted or works on."""
        return self.filter(models.Q(employer_id=user.pk) | models.Q(worker_id=user.pk))

    def visible_to(self, user: Any) -> JobQuerySet:
        """Open jobs for every signed-in user; any other job only for its
        employer, its worker and staff."""
        if user.is_staff:
            return self
        return self.filter(
            models.Q(status=JobStatus.OPEN)
            | models.Q(employer_id=user.pk)
            | models.Q(worker_id=user.pk)
        )


class Job(models.Model):
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    description = models.TextField(
        blank=True,
        max_length=DESCRIPTION_MAX_LENGTH,
        validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH)],
    )
    job_type = models.CharField(max_length=32, choices=JobType.choices, db_index=True)
    pay_amount_usd = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(PAY_MIN_USD), MaxValueValidator(PAY_MAX_USD)],
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

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # What the states imply, held by the database too (queryset.update()
        # does not pass through save()).
        constraints = [
            models.CheckConstraint(
                condition=models.Q(pay_amount_usd__gt=0), name="job_pay_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(pay_amount_usd__lte=PAY_MAX_USD),
                name="job_pay_amount_at_most_max",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=[JobStatus.OPEN, JobStatus.REFUNDED], worker__isnull=True
                )
                | models.Q(
                    status__in=[JobStatus.ACCEPTED, JobStatus.COMPLETED], worker__isnull=False
                ),
                name="job_worker_only_once_accepted",
            ),
            models.CheckConstraint(
                condition=models.Q(status=JobStatus.COMPLETED, payment_released=True)
                | (~models.Q(status=JobStatus.COMPLETED) & models.Q(payment_released=False)),
                name="job_payment_released_when_completed",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, refusing a status change ALLOWED_TRANSITIONS forbids: the
        stored status is read (and its row locked) in the same transaction.
        Raises JobTransitionError. (`Job.objects.update()` does not pass
        here; the constraints above still hold for it.)"""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "status" not in update_fields:
            super().save(*args, **kwargs)
            return
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            stored = None
            if self.pk is not None:
                stored = (
                    type(self)
                    ._default_manager.using(using)
                    .select_for_update()
                    .filter(pk=self.pk)
                    .values_list("status", flat=True)
                    .first()
                )
            check_status_change(stored, self.status)
            super().save(*args, **kwargs)

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


# The chat's models live with the chat (jobs/chat/); the app's models module
# imports them so that Django registers them with the app.
from .chat.models import ChatMessage, ChatReadMark  # noqa: E402, F401
