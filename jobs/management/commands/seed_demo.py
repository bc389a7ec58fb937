from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from jobs.models import Job, User, UserType

DEMO_PASSWORD = "paychain-demo-2025"
DEMO_USERS = [
    ("alice", UserType.EMPLOYER),
    ("carol", UserType.EMPLOYER),
    ("bob", UserType.WORKER),
    ("dave", UserType.WORKER),
]
DEMO_JOBS = [
    ("Full Stack Developer", "development", Decimal("5000")),
    ("Logo redesign", "design", Decimal("750")),
    ("Blog post series", "writing", Decimal("400")),
]


class Command(BaseCommand):
    help = (
        f"Create demo users (password {DEMO_PASSWORD}) and a few open jobs, once. "
        "For local development only."
    )

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        users = {}
        for username, user_type in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"user_type": user_type}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            users[username] = user
        if Job.objects.exists():
            self.stdout.write("Demo data already present.")
            return
        for title, job_type, pay in DEMO_JOBS:
            Job.objects.create(
                title=title,
                job_type=job_type,
                pay_amount_usd=pay,
                employer=users["alice"],
                expires_at=timezone.now() + timedelta(days=7),
            )
        self.stdout.write(
            "Demo users alice, carol (employers), bob, dave (workers), "
            f"password {DEMO_PASSWORD!r}; {len(DEMO_JOBS)} open jobs."
        )
