"""
Who a socket is: a JWT access token in the query string (`/ws?token=...`),
else the session cookie of a logged-in user, else anonymous.

The middleware only reads the token; the consumer decides what to do with
the result (a bad token is answered with an `error` and close 4001, which
needs an accepted socket, so it cannot be refused here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken


class SocketAuthError(Exception):
    """The token is invalid, forged, expired, not an access token, or names
    no active user."""


@dataclass(frozen=True)
class TokenIdentity:
    user: Any
    expires_at: float  # Unix time of the token's `exp`


def authenticate_token(raw: str) -> TokenIdentity:
    """Validate an access token and load its user (synchronous: uses the ORM)."""
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]
        user = JWTAuthentication().get_user(token)
    except (TokenError, AuthenticationFailed) as exc:
        raise SocketAuthError(str(exc)) from exc
    if not user.is_active:
        raise SocketAuthError("User is inactive")
    return TokenIdentity(user=user, expires_at=float(token["exp"]))


aauthenticate_token = database_sync_to_async(authenticate_token)


def token_from_query(scope: dict[str, Any]) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    values = query.get("token")
    return values[-1] if values else None


class TokenAuthMiddleware(BaseMiddleware):
    """Puts the token's user in scope["user"] (a token wins over a session
    cookie) and its expiry in scope["token_expires_at"]; a bad token sets
    scope["auth_error"]."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = token_from_query(scope)
        if raw is not None:
            scope = dict(scope)
            try:
                identity = await aauthenticate_token(raw)
            except SocketAuthError:
                scope["auth_error"] = "Unauthorized"
            else:
                scope["user"] = identity.user
                scope["token_expires_at"] = identity.expires_at
        return await super().__call__(scope, receive, send)
