from django.contrib import admin
from django.urls import include, path, re_path

from realtime.views import BroadcastApi, HealthApi, PresenceApi, StatsApi

urlpatterns = [
    # The seed's service endpoints answer with and without a trailing slash.
    re_path(r"^broadcast/?$", BroadcastApi.as_view(), name="broadcast"),
    re_path(r"^health/?$", HealthApi.as_view(), name="health"),
    re_path(r"^stats/?$", StatsApi.as_view(), name="stats"),
    path("api/presence/<str:channel>/", PresenceApi.as_view(), name="presence"),
    path("api/", include("jobs.urls")),
    path("admin/", admin.site.urls),
]
