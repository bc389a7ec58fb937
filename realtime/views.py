from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from . import health
from .authentication import ApiKeyAuthentication, CanBroadcast
from .serializers import BroadcastSerializer
from .services import PublishError, publish

logger = logging.getLogger(__name__)


class BroadcastApi(APIView):
    """POST /broadcast: {"type", "data"?, "channel"?, "user_id"?, "user_ids"?}
    to a channel's subscribers and/or users' personal channels, or to every
    connected client."""

    authentication_classes = [ApiKeyAuthentication, JWTAuthentication]
    permission_classes = [CanBroadcast]

    def post(self, request: Request) -> Response:
        serializer = BroadcastSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body: dict[str, Any] = serializer.validated_data
        channels = serializer.validated_channels()
        try:
            publication = publish(type=body["type"], data=body.get("data") or {}, channels=channels)
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
            "connections": health.connections(),
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
        return Response(
            {
                "connections": health.connections(),
                "messages": health.message_counters(),
                "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
            }
        )
