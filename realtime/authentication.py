"""
Who may call the broadcast API.

`Authorization: Api-Key <key>` with a key from BROADCAST_API_KEYS. Keys are
compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .conf import realtime_settings

KEYWORD = "Api-Key"


@dataclass(frozen=True)
class ServiceClient:
    """The caller of a request authenticated with a service key."""

    key_index: int
    is_authenticated: bool = True
    is_staff: bool = False

    @property
    def pk(self) -> str:
        return f"service-key-{self.key_index}"


class BroadcastNotConfigured(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = (
        "POST /broadcast is closed: set BROADCAST_API_KEYS (comma-separated service keys) "
        "or, for local development only, DJANGO_DEBUG=true."
    )
    default_code = "broadcast_not_configured"


def authorization_header(request: Any) -> bytes:
    """The `Authorization` header as bytes, as DRF's get_authorization_header
    gives it, read from META: DRF's reads `request.headers`, which builds a
    dict of every header of the request (a measurable part of POST
    /broadcast) when nothing else needs it."""
    value = request.META.get("HTTP_AUTHORIZATION", b"")
    return value.encode("latin-1") if isinstance(value, str) else value


def match_key(candidate: str) -> int | None:
    """Index of the configured key equal to `candidate`, in constant time."""
    found = None
    given = candidate.encode()
    for index, key in enumerate(realtime_settings.BROADCAST_API_KEYS):
        if hmac.compare_digest(given, key.encode()):
            found = index
    return found


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ServiceClient, None] | None:
        parts = authorization_header(request).split()
        if not parts or parts[0].decode("latin1").lower() != KEYWORD.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Api-Key header: expected 'Api-Key <key>'.", code="invalid_api_key"
            )
        try:
            candidate = parts[1].decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.PermissionDenied("Invalid API key.", code="invalid_api_key") from None
        index = match_key(candidate)
        if index is None:
            raise exceptions.PermissionDenied("Invalid API key.", code="invalid_api_key")
        return ServiceClient(key_index=index), None

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


NOT_AUTHENTICATED = (
    "Send 'Authorization: Api-Key <key>' with a key from BROADCAST_API_KEYS, "
    "or a staff user's 'Authorization: Bearer <access token>'."
)


class IsServiceOrStaff(BasePermission):
    """A service key or a staff user's JWT; a non-staff user gets 403, no
    credentials 401."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if self.identified(request):
            return True
        raise exceptions.NotAuthenticated(NOT_AUTHENTICATED)

    @staticmethod
    def identified(request: Request) -> bool:
        """True for a service or a staff user, False for no credentials."""
        user = request.user
        if isinstance(user, ServiceClient):
            return True
        if user is not None and user.is_authenticated:
            if user.is_staff:
                return True
            raise exceptions.PermissionDenied("Only services (Api-Key) and staff users.")
        return False


class CanBroadcast(IsServiceOrStaff):
    """As IsServiceOrStaff; without credentials: anyone while no keys are
    configured and DEBUG is on, nobody (503, saying what to configure) when
    DEBUG is off."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if self.identified(request):
            return True
        if not realtime_settings.BROADCAST_API_KEYS:
            if settings.DEBUG:
                return True
            raise BroadcastNotConfigured()
        raise exceptions.NotAuthenticated(NOT_AUTHENTICATED)
