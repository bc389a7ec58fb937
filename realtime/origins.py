"""
Which browser origins may open `/ws`.

A handshake is accepted when it has no `Origin` (a service or an app, not a
browser), when its origin equals one of CORS_ALLOWED_ORIGINS (scheme, host and
port; `*` there, CORS_ALLOW_ALL_ORIGINS, means any), or when it is the
request's own origin: the host and port of its `Host` header (itself one of
ALLOWED_HOSTS), whatever the scheme. Nothing else: with `Host: localhost:8000`,
`http://localhost:1` and `https://localhost:9999` are refused (403).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


def normalized(origin: str) -> tuple[str, str, int] | None:
    """`HTTP://Example.com` -> ("http", "example.com", 80); None if not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in DEFAULT_PORTS:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme]


def is_listed(origin: tuple[str, str, int]) -> bool:
    if getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False):
        return True
    return any(normalized(allowed) == origin for allowed in settings.CORS_ALLOWED_ORIGINS)


def is_own(origin: tuple[str, str, int], host: str | None) -> bool:
    """Is `origin` the request's own: the host and port of `Host`, any scheme?
    A `Host` without a port stands for the default port of the origin's scheme."""
    if not host:
        return False
    domain, port = split_domain_port(host.lower())
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme, origin_host, origin_port = origin
    if origin_host.strip("[]") != domain.strip("[]"):
        return False
    wanted = int(port) if port else DEFAULT_PORTS[scheme]
    return origin_port == wanted


def origin_allowed(scope: Mapping[str, Any]) -> bool:
    raw = header(scope, b"origin")
    if raw is None:
        return True
    origin = normalized(raw)
    if origin is None:
        return False
    return is_listed(origin) or is_own(origin, header(scope, b"host"))


class OriginCheck:
    """ASGI middleware: refuses (403) a WebSocket handshake from an origin
    that `origin_allowed` does not accept."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
