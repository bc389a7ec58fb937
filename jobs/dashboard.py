"""The dashboard at `/`: one page that signs in over the REST API and shows
the marketplace live through the JavaScript client (`clients/js`). Everything
it does runs in the browser (jobs/static/jobs/dashboard/), so this view only
serves the page, with a Content-Security-Policy that allows no inline script
and no origin but this one."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.generic import TemplateView

from .models import JobType

# 'self' covers ws:// and wss:// to this host in current browsers.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Where paychain/settings.py serves clients/js/src (STATICFILES_DIRS prefix).
CLIENT_MODULE = "paychain-realtime/index.js"


class DashboardView(TemplateView):
    template_name = "jobs/dashboard.html"
    extra_context = {"client_module": CLIENT_MODULE, "job_types": JobType.choices}

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response["Referrer-Policy"] = "same-origin"
        return response
