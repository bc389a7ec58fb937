"""Who may subscribe to a job's channel `job.<id>`: its employer and its
worker. Registered with realtime.permissions by the app's ready()."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q

from .models import Job

JOB_CHANNEL_PATTERN = r"job\.(\d{1,18})"


def is_job_participant(user: Any, match: re.Match[str]) -> bool:
    return (
        Job.objects.filter(pk=int(match.group(1)))
        .filter(Q(employer_id=user.pk) | Q(worker_id=user.pk))
        .exists()
    )
