"""
Idempotent broadcasts: POST /broadcast with an `Idempotency-Key` header.

The first request with a key records (caller, key) with the hash of its body
and a message id, then publishes with that id. Another request with the same
key from the same caller within a day:

* with the same body, answers with the same id and delivers nothing again:
  it publishes again with the recorded id only while the first has not
  succeeded (in flight, or died), and the publishing service delivers one id
  to a channel once;
* with another body, is refused (422 `idempotency_key_reused`).

A publish that fails (503) removes its record, so the key does not block a
retry. Records older than a day are ignored here and pruned by the outbox
relay (realtime.outbox.prune).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions, status

from . import protocol
from .models import IdempotencyRecord
from .services import Publication, PublishError, publish

HEADER = "Idempotency-Key"
# The same header in a request's META.
META_KEY = "HTTP_" + HEADER.upper().replace("-", "_")
# As long as the publishing service remembers a message id.
IDEMPOTENCY_TTL = timedelta(hours=24)
KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


class InvalidIdempotencyKey(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Idempotency-Key must be 1 to 255 visible ASCII characters."
    default_code = "invalid_idempotency_key"

    def __init__(self) -> None:
        super().__init__({"detail": self.default_detail, "code": self.default_code})


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = (
        "This Idempotency-Key was already used with a different body; "
        "use a new key for a new message."
    )
    default_code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__({"detail": self.default_detail, "code": self.default_code})


def clean_key(value: str | None) -> str | None:
    """The header's key, None without the header; InvalidIdempotencyKey when malformed."""
    if value is None:
        return None
    if not KEY_RE.fullmatch(value):
        raise InvalidIdempotencyKey()
    return value


def caller_of(user: Any) -> str:
    """Whose keys these are: a service key (by its index in
    BROADCAST_API_KEYS), a user, or anonymous (DEBUG without keys)."""
    key_index = getattr(user, "key_index", None)
    if key_index is not None:
        return f"service-key-{key_index}"
    if user is not None and user.is_authenticated:
        return f"user-{user.pk}"
    return "anonymous"


def body_hash(*, type: str, data: dict[str, Any], channels: Sequence[str]) -> str:
    """The same message, however its JSON was spelled, has the same hash."""
    canonical = json.dumps(
        {"type": type, "data": data, "channels": list(channels)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _record_for(*, caller: str, key: str, digest: str) -> tuple[IdempotencyRecord, bool]:
    """The live record of (caller, key), created with a new message id when
    there is none. Of two concurrent first requests, one creates it and the
    other reads it."""
    for _ in range(10):
        cutoff = timezone.now() - IDEMPOTENCY_TTL
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    caller=caller,
                    key=key,
                    body_hash=digest,
                    message_id=protocol.new_message_id(),
                )
            return record, True
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
            if existing is None:
                continue  # its publish failed and it was removed: try again
            if existing.created_at < cutoff:
                IdempotencyRecord.objects.filter(pk=existing.pk, created_at__lt=cutoff).delete()
                continue
            return existing, False
    raise RuntimeError(f"Idempotency key {key!r} of {caller} keeps changing under this request.")


def broadcast_once(
    *, caller: str, key: str, type: str, data: dict[str, Any], channels: Sequence[str]
) -> Publication:
    """Publish at most once per (caller, key) within a day. Raises
    IdempotencyKeyReused, or PublishError (the record then is gone)."""
    digest = body_hash(type=type, data=data, channels=channels)
    record, created = _record_for(caller=caller, key=key, digest=digest)
    if record.body_hash != digest:
        raise IdempotencyKeyReused()
    if record.published_at is not None:
        return Publication(id=record.message_id, type=type, channels=tuple(channels))
    try:
        publication = publish(type=type, data=data, channels=channels, message_id=record.message_id)
    except PublishError:
        if created:
            IdempotencyRecord.objects.filter(pk=record.pk, published_at__isnull=True).delete()
        raise
    IdempotencyRecord.objects.filter(pk=record.pk, published_at__isnull=True).update(
        published_at=timezone.now()
    )
    return publication
