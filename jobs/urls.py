from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import JobViewSet, MeApi, RegisterApi
from .auth_api import LogoutApi, TokenApi, TokenRefreshApi
from .chat.api import ChatListApi, JobMessagesApi, JobMessagesReadApi

router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")

urlpatterns = [
    path("auth/register/", RegisterApi.as_view(), name="register"),
    path("auth/token/", TokenApi.as_view(), name="token"),
    path("auth/token/refresh/", TokenRefreshApi.as_view(), name="token-refresh"),
    path("auth/logout/", LogoutApi.as_view(), name="logout"),
    path("auth/me/", MeApi.as_view(), name="me"),
    path("jobs/<int:job_id>/messages/", JobMessagesApi.as_view(), name="job-messages"),
    path(
        "jobs/<int:job_id>/messages/read/", JobMessagesReadApi.as_view(), name="job-messages-read"
    ),
    path("chats/", ChatListApi.as_view(), name="chats"),
    *router.urls,
]
