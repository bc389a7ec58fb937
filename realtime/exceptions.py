"""
JSON errors wherever the API answers.

Every error of the HTTP API is `{"detail": ..., "code": ...}`, as DRF's own
exceptions are, with a stable `code` to match on; a 400 of a serializer
keeps DRF's per-field shape (`{"field": ["message"]}`).

* `exception_handler` (REST_FRAMEWORK["EXCEPTION_HANDLER"]) is DRF's, adding
  the `code` of the exception to the `{"detail": ...}` bodies DRF makes
  (401, 403, 404, 405, 415, 429, ...).
* `json_api_errors` (a middleware) covers what answers before or outside a
  DRF view, on the paths of REALTIME["JSON_ERROR_PATHS"]: a body over
  DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 `payload_too_large` before
  anything reads it, and an error page Django made (an unknown URL's 404, a
  500 of an unhandled exception, their DEBUG pages included) becomes JSON. A
  debug page never reaches an API client; Django still logs the exception.
  Other paths (the admin) keep Django's pages.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.decorators import sync_and_async_middleware
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .conf import realtime_settings

# The body and code of an error page Django made, by status.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad request.", "bad_request"),
    401: ("Authentication credentials were not provided.", "not_authenticated"),
    403: ("You do not have permission to perform this action.", "permission_denied"),
    404: ("Not found.", "not_found"),
    405: ("Method not allowed.", "method_not_allowed"),
    413: ("The request body is too large.", "payload_too_large"),
    429: ("Request was throttled.", "throttled"),
    500: ("Server error.", "server_error"),
}


def error_body(status: int) -> dict[str, str]:
    """`{"detail", "code"}` for an HTTP error status."""
    if status in ERRORS:
        detail, code = ERRORS[status]
        return {"detail": detail, "code": code}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"detail": f"{phrase}.", "code": phrase.lower().replace(" ", "_").replace("-", "_")}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with the exception's `code` beside a lone `detail`."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: Django answers 500 (made JSON below)
    data = response.data
    if isinstance(data, dict) and "code" not in data:
        detail = data.get("detail")
        code = getattr(detail, "code", None)
        if isinstance(detail, str) and code is not None:
            data["code"] = code
    return response


def is_api_path(path: str) -> bool:
    return path.startswith(tuple(realtime_settings.JSON_ERROR_PATHS))


def too_large(request: HttpRequest) -> JsonResponse | None:
    """413 for a body that says it is over DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if limit is None or length <= limit:
        return None
    return JsonResponse(
        {"detail": f"The request body is over {limit} bytes.", "code": "payload_too_large"},
        status=413,
    )


def as_json(response: HttpResponseBase) -> HttpResponseBase:
    """An error page Django made, as `{"detail", "code"}` JSON, in place (the
    headers other middleware added, CORS and `Allow` among them, stay)."""
    if (
        response.status_code < 400
        or isinstance(response, Response)  # DRF rendered it as the client asked
        or response.streaming
        or response.get("Content-Type", "").startswith("application/json")
    ):
        return response
    content = json.dumps(error_body(response.status_code)).encode()
    response.content = content  # type: ignore[attr-defined]
    response["Content-Type"] = "application/json"
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(content))
    return response


Handler = Callable[[HttpRequest], Any]


@sync_and_async_middleware
def json_api_errors(get_response: Handler) -> Handler:
    """The middleware: place it right after CorsMiddleware, so that it sees
    the error pages of everything inside it and CORS headers go on its own."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            if not is_api_path(request.path):
                return await get_response(request)
            refused = too_large(request)
            if refused is not None:
                return refused
            response: Awaitable[HttpResponseBase] = get_response(request)
            return as_json(await response)

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        if not is_api_path(request.path):
            return get_response(request)  # type: ignore[no-any-return]
        return too_large(request) or as_json(get_response(request))

    return middleware
