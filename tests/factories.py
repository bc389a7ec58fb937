"""Factories for users and jobs (plain functions: no extra dependency)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from jobs.models import Job, User, UserType

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


def make_job(*, employer: User | None = None, **fields: Any) -> Job:
    fields.setdefault("title", f"Job {next(_counter)}")
    fields.setdefault("job_type", "development")
    fields.setdefault("pay_amount_usd", Decimal("5000.00"))
    fields.setdefault("expires_at", timezone.now() + timedelta(days=7))
    return Job.objects.create(employer=employer or make_employer(), **fields)


def make_superuser(**fields: Any) -> User:
    fields.setdefault("user_type", UserType.EMPLOYER)
    return make_user(is_staff=True, is_superuser=True, **fields)
