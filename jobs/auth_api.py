"""Sign-in with JWTs (djangorestframework-simplejwt): obtain, refresh, logout.

Access tokens last JWT_ACCESS_MINUTES, refresh tokens JWT_REFRESH_DAYS. Each
refresh rotates: it answers a new refresh token and blacklists the one it was
given; logout blacklists one. A blacklisted refresh token, or one whose user
is gone or inactive, gets 401.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views

from .throttling import LoginAddressThrottle, LoginUsernameThrottle


class TokenApi(jwt_views.TokenObtainPairView):
    """POST /api/auth/token/ {username, password} -> {access, refresh}.
    Throttled per client address and per username (jobs.throttling)."""

    throttle_classes = [LoginAddressThrottle, LoginUsernameThrottle]


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """simplejwt's, except that the token of a user who no longer exists is
    401 `no_active_account` (simplejwt lets User.DoesNotExist out: a 500)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist as exc:
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from exc


class TokenRefreshApi(jwt_views.TokenRefreshView):
    """POST /api/auth/token/refresh/ {refresh} -> {access, refresh} (a new
    refresh token; the one sent is blacklisted)."""

    serializer_class = TokenRefreshSerializer


class LogoutApi(jwt_views.TokenBlacklistView):
    """POST /api/auth/logout/ {refresh} -> 200 {}: the refresh token is
    blacklisted (it can no longer be refreshed). Access tokens already issued
    stay valid until they expire."""
