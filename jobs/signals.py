"""Connect the Job model to the publishing service, and nothing more.

Every saved job (API, admin, ORM, management command) passes here; its event
(and, when it completes or is refunded, the payment notification) is written
to the outbox in the same transaction, and the outbox relay
publishes it once the transaction commits (never for a rolled-back change,
and not lost while the channel layer is down): see realtime.outbox.
"""

from typing import Any

from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from realtime.outbox import outbox_enqueue

from .events import job_event, job_event_channels, payment_events
from .models import Job


@receiver(post_init, sender=Job)
def remember_loaded_status(sender: type[Job], instance: Job, **kwargs: Any) -> None:
    instance._saved_status = instance.status if instance.pk else None  # type: ignore[attr-defined]


@receiver(post_save, sender=Job)
def announce_job_change(sender: type[Job], instance: Job, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return  # fixtures being loaded
    previous = instance._saved_status  # type: ignore[attr-defined]
    event = job_event(instance, created=created, previous_status=previous)
    instance._saved_status = instance.status  # type: ignore[attr-defined]
    if event is not None:
        event_type, data = event
        outbox_enqueue(
            type=event_type,
            data=data,
            channels=job_event_channels(event_type, instance),
            key=f"job:{instance.pk}",
        )
    for event_type, data, channels in payment_events(
        instance, created=created, previous_status=previous
    ):
        outbox_enqueue(type=event_type, data=data, channels=channels, key=f"job:{instance.pk}")
