"""
DRF views that run on the event loop.

`AsyncAPIView` is DRF's APIView with an async `dispatch`: Django calls an
async view on the server's event loop, with no thread in between. DRF's
`initial` (authentication, permissions, throttles) is synchronous; it runs
inline unless `initial_needs_thread(request)` says it may use the database
(a JWT names a user to load), and then in a thread through channels'
`database_sync_to_async`, which closes stale connections around it. Handlers are
`async def`. Errors go through DRF's exception handling as usual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channels.db import database_sync_to_async
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class AsyncAPIView(APIView):
    def initial_needs_thread(self, request: Request) -> bool:
        """May authentication, permissions or throttles query the database?"""
        return True

    async def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        response: Response
        try:
            if self.initial_needs_thread(request):
                await database_sync_to_async(self.initial)(request, *args, **kwargs)
            else:
                self.initial(request, *args, **kwargs)
            method = request.method.lower() if request.method else ""
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                response = self.http_method_not_allowed(request, *args, **kwargs)
            else:
                response = await handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response


class FirstRendererNegotiation(DefaultContentNegotiation):
    """For a view with one renderer (JSON): answer with it whatever `Accept`
    says, without parsing the header; parsers are chosen as DRF does."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
