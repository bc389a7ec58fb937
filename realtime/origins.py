"""
Which browser origins may open `/ws`.

A handshake with an `Origin` header is accepted when the origin is listed in
CORS_ALLOWED_ORIGINS (`*` there means any), or its host is one of
ALLOWED_HOSTS; refused (403) otherwise. A handshake with no `Origin` comes
from a service or an app, not a browser, and is accepted.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


def allowed_origin_patterns() -> list[str]:
    patterns = list(settings.ALLOWED_HOSTS)
    if getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False):
        patterns.append("*")
    patterns.extend(getattr(settings, "CORS_ALLOWED_ORIGINS", []))
    return patterns


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application: Any) -> None:
        self.application = application

    @property
    def allowed_origins(self) -> list[str]:  # type: ignore[override]
        # Read per handshake, so settings changes (and tests) take effect.
        return allowed_origin_patterns()

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return bool(self.validate_origin(parsed_origin))


def OriginCheck(application: Any) -> BrowserOriginValidator:  # noqa: N802 (Channels' naming)
    return BrowserOriginValidator(application)
