from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from jobs.dashboard import DashboardView
from realtime.views import (
    AsyncApiDocumentApi,
    BroadcastApi,
    HealthApi,
    MetricsApi,
    PresenceApi,
    StatsApi,
)

urlpatterns = [
    # The seed's service endpoints answer with and without a trailing slash.
    re_path(r"^broadcast/?$", BroadcastApi.as_view(), name="broadcast"),
    re_path(r"^health/?$", HealthApi.as_view(), name="health"),
    re_path(r"^stats/?$", StatsApi.as_view(), name="stats"),
    re_path(r"^metrics/?$", MetricsApi.as_view(), name="metrics"),
    path("api/presence/<str:channel>/", PresenceApi.as_view(), name="presence"),
    # API descriptions: OpenAPI (HTTP), Swagger UI (local assets), AsyncAPI (the socket).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/asyncapi.json", AsyncApiDocumentApi.as_view(), name="asyncapi"),
    path("api/", include("jobs.urls")),
    path("admin/", admin.site.urls),
    path("", DashboardView.as_view(), name="dashboard"),
]
