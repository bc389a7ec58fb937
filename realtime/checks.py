"""`manage.py check --deploy`: what must not go to production as it is."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

from .conf import realtime_settings


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
