from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from . import health
from .authentication import ApiKeyAuthentication, CanBroadcast, IsServiceOrStaff
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import broadcast_once, caller_of, clean_key
from .presence import channel_users, presence_enabled
from .protocol import is_valid_channel
from .serializers import BroadcastSerializer
from .services import PublishError, publish

logger = logging.getLogger(__name__)


class BroadcastApi(APIView):
    """POST /broadcast: {"type", "data"?, "channel"?, "user_id"?, "user_ids"?}
    to a channel's subscribers and/or users' personal channels, or to every
    connected client. With an `Idempotency-Key` header, at most once per key
    and caller within a day (see realtime.idempotency)."""

    authentication_classes = [ApiKeyAuthentication, JWTAuthentication]
    permission_classes = [CanBroadcast]

    def post(self, request: Request) -> Response:
        serializer = BroadcastSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body: dict[str, Any] = serializer.validated_data
        channels = serializer.validated_channels()
        idempotency_key = clean_key(request.headers.get(IDEMPOTENCY_HEADER))
        try:
            if idempotency_key is None:
                publication = publish(
                    type=body["type"], data=body.get("data") or {}, channels=channels
                )
            else:
                publication = broadcast_once(
                    caller=caller_of(request.user),
                    key=idempotency_key,
                    type=body["type"],
                    data=body.get("data") or {},
                    channels=channels,
                )
        except PublishError as exc:
            logger.error("Broadcast %r failed: %s", body["type"], exc)
            return Response(
                {"detail": str(exc), "code": "channel_layer_unavailable"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(
            {
                "id": publication.id,
                "type": publication.type,
                "channel": publication.channel,
                "channels": list(publication.channels),
            },
            status=status.HTTP_202_ACCEPTED,
        )


class HealthApi(APIView):
    """GET /health: the seed's health document; 503 when Redis does not answer."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        problem = health.channel_layer_problem()
        body = {
            "status": "unhealthy" if problem else "healthy",
            "service": "websocket-server",
            # Redis away: this process' own counts, without waiting on it again.
            "connections": (health.local() if problem else health.cluster())["connections"],
        }
        if problem:
            body["reason"] = problem
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(body)


class StatsApi(APIView):
    """GET /stats: connections plus message counters."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        totals = health.cluster()
        return Response(
            {
                "connections": totals["connections"],
                "messages": totals["messages"],
                "processes": totals["processes"],
                "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
            }
        )


class PresenceApi(APIView):
    """GET /api/presence/<channel>/: the authenticated users on a channel now."""

    authentication_classes = [ApiKeyAuthentication, JWTAuthentication]
    permission_classes = [IsServiceOrStaff]

    def get(self, request: Request, channel: str) -> Response:
        if not is_valid_channel(channel):
            raise ValidationError({"channel": ["1 to 80 letters, digits, '_', '-' or '.'."]})
        if not presence_enabled(channel):
            return Response(
                {"detail": "This channel keeps no presence.", "code": "presence_disabled"},
                status=status.HTTP_404_NOT_FOUND,
            )
        users = async_to_sync(channel_users)(channel)
        return Response({"channel": channel, "users": users})
