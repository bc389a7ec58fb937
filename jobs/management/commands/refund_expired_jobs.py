import logging
import time

from django.core.management.base import BaseCommand, CommandParser

from jobs.services import refund_expired_jobs

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Refund every open job past its expiry (each refund publishes job_refunded)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="Keep running, sweeping every SECONDS seconds.",
        )

    def handle(self, *args: object, every: float | None = None, **options: object) -> None:
        while True:
            refunded = refund_expired_jobs()
            self.stdout.write(f"Refunded {len(refunded)} expired job(s).")
            for job in refunded:
                logger.info("Refunded expired job %s", job.pk)
            if not every:
                return
            time.sleep(every)
