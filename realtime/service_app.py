"""
The service endpoints' own ASGI route, beside Django's handler.

Django's ASGI handler runs every request's sync parts (the request signals,
each MiddlewareMixin hook of sessions, CSRF, authentication, messages…) in a
thread made for that request: about twenty thread hops per request, most of
the cost of a small API call. `POST /broadcast`, called by every service for
every job and payment event, needs none of it: it authenticates with DRF (a
service key or a JWT), sets no cookie, renders no page and, with a service
key, touches no database.

`service_endpoint(view)` serves one async DRF view (realtime.async_views)
straight from the event loop: it reads the body (at most
DATA_UPLOAD_MAX_MEMORY_SIZE bytes, else 413 before parsing), builds Django's
ASGIRequest, checks the host against ALLOWED_HOSTS, awaits the view, adds the headers of Django's
SecurityMiddleware and sends the response. An unexpected error answers 500
JSON. Database work the view does goes through channels'
`database_sync_to_async`, which keeps connections tidy as the request
signals would.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.security import SecurityMiddleware

from .exceptions import error_body

logger = logging.getLogger(__name__)

View = Callable[..., Awaitable[HttpResponseBase]]


def _error(status: int, detail: str | None = None, code: str | None = None) -> JsonResponse:
    body = error_body(status)
    return JsonResponse(
        {"detail": detail or body["detail"], "code": code or body["code"]}, status=status
    )


def max_body_bytes() -> int:
    """The largest request body a service endpoint reads: Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE, as for the rest of the API."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 1024 * 1024


async def _read_body(receive: Any) -> bytes | None:
    """The whole body, or None when it is over max_body_bytes() or the client left."""
    limit = max_body_bytes()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _unused_get_response(request: HttpRequest) -> None:
    raise AssertionError("SecurityMiddleware is only asked for its response headers here.")


def service_endpoint(view: View) -> Callable[..., Awaitable[None]]:
    # Only its process_response is used: the headers it adds to every response.
    security = SecurityMiddleware(cast(Any, _unused_get_response))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await _read_body(receive)
        request: HttpRequest | None = None
        if body is None:
            response: HttpResponseBase = _error(
                413, f"The request body is over {max_body_bytes()} bytes.", "payload_too_large"
            )
        else:
            request = ASGIRequest(scope, io.BytesIO(body))
            try:
                request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it
                response = await view(request)
                render = getattr(response, "render", None)
                if render is not None and not getattr(response, "is_rendered", True):
                    response = render()
            except DisallowedHost:
                response = _error(400, "Invalid Host header.", "invalid_host")
            except Exception:
                logger.exception("%s %s failed", scope.get("method"), scope.get("path"))
                response = _error(500)
            response = security.process_response(request, cast(HttpResponse, response))
        await _send(response, send)

    return app


async def _send(response: HttpResponseBase, send: Any) -> None:
    headers = [(name.encode("ascii"), value.encode("latin1")) for name, value in response.items()]
    content = getattr(response, "content", b"")
    headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": content})
