"""System checks: limits that must agree, and (`check --deploy`) what must not go
to production as it is."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import realtime_settings

# What a publication's frame holds besides its `data`: type, channel, id,
# timestamp, offset, epoch and the WebSocket header, with room to spare.
ENVELOPE_ALLOWANCE = 4096


@register()
def realtime_limit_checks(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Limits that would make an accepted publication undeliverable."""
    largest_frame = realtime_settings.MAX_PUBLICATION_BYTES + ENVELOPE_ALLOWANCE
    if largest_frame > realtime_settings.MAX_SOCKET_BUFFER_BYTES:
        return [
            Error(
                "A publication accepted at REALTIME_MAX_PUBLICATION_BYTES would not fit in one"
                " socket's buffer (REALTIME_MAX_SOCKET_BUFFER_BYTES): every subscriber would"
                " be cut off as slow.",
                hint=f"Keep MAX_SOCKET_BUFFER_BYTES at least MAX_PUBLICATION_BYTES"
                f" + {ENVELOPE_ALLOWANCE}.",
                id="realtime.E001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def realtime_deploy_checks(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    found: list[Warning] = []
    if settings.DEBUG:
        found.append(
            Warning(
                "DEBUG is on: errors show internals and POST /broadcast may be open.",
                hint="Set DJANGO_DEBUG=false.",
                id="realtime.W001",
            )
        )
    # Django's own marker of a key made for development.
    if settings.SECRET_KEY.startswith("django-insecure-"):
        found.append(
            Warning(
                "SECRET_KEY is the development default: anyone can forge access tokens.",
                hint="Set DJANGO_SECRET_KEY to a long random string.",
                id="realtime.W002",
            )
        )
    if not realtime_settings.BROADCAST_API_KEYS:
        found.append(
            Warning(
                "No broadcast keys: POST /broadcast is open (DEBUG on) or refused (DEBUG off).",
                hint="Set BROADCAST_API_KEYS to comma-separated service keys.",
                id="realtime.W003",
            )
        )
    if realtime_settings.ALLOW_ANONYMOUS:
        found.append(
            Warning(
                "Anonymous sockets are allowed (public channels only).",
                hint="Set REALTIME_ALLOW_ANONYMOUS=false if every client has an account.",
                id="realtime.W004",
            )
        )
    if "*" in settings.ALLOWED_HOSTS:
        found.append(
            Warning(
                "ALLOWED_HOSTS contains '*': any Host header, and any browser origin on it.",
                hint="List the real host names in DJANGO_ALLOWED_HOSTS.",
                id="realtime.W005",
            )
        )
    if getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False):
        found.append(
            Warning(
                "CORS_ALLOWED_ORIGINS is '*': every website may call the API and open sockets.",
                hint="List the frontend origins in CORS_ALLOWED_ORIGINS.",
                id="realtime.W006",
            )
        )
    return found
