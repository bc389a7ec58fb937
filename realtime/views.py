from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from rest_framework import status
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from . import health
from .async_views import AsyncAPIView
from .authentication import ApiKeyAuthentication, CanBroadcast, IsServiceOrStaff
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import broadcast_once, caller_of, clean_key
from .presence import channel_users, presence_enabled
from .protocol import is_valid_channel
from .serializers import BroadcastBatchSerializer, BroadcastSerializer, channels_of
from .services import Message, PublishError, apublish_many

logger = logging.getLogger(__name__)


class BroadcastApi(AsyncAPIView):
    """POST /broadcast: {"type", "data"?, "channel"?, "user_id"?, "user_ids"?}
    to a channel's subscribers and/or users' personal channels, or to every
    connected client; or a list of up to 100 of them, valid all or none, made
    in order. With an `Idempotency-Key` header (one publication only), at most
    once per key and caller within a day (see realtime.idempotency).

    It runs on the event loop: a service key needs no database, so nothing
    leaves the loop but a staff JWT's user lookup and an idempotency record."""

    authentication_classes = [ApiKeyAuthentication, JWTAuthentication]
    permission_classes = [CanBroadcast]

    def initial_needs_thread(self, request: Request) -> bool:
        # Only a JWT names a user to load.
        scheme = get_authorization_header(request).split()[:1]
        return bool(scheme) and scheme[0].lower() == b"bearer"

    async def post(self, request: Request) -> Response:
        batch = isinstance(request.data, list)
        serializer: BroadcastSerializer | BroadcastBatchSerializer
        if batch:
            serializer = BroadcastBatchSerializer(data=request.data)
        else:
            serializer = BroadcastSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bodies = serializer.validated_data if batch else [serializer.validated_data]
        messages = [
            Message(body["type"], body.get("data") or {}, tuple(channels_of(body)))
            for body in bodies
        ]
        idempotency_key = clean_key(request.headers.get(IDEMPOTENCY_HEADER))
        try:
            if idempotency_key is None:
                publications = await apublish_many(messages)
            elif batch:
                raise ValidationError(
                    {"detail": "Idempotency-Key goes with one publication, not a list."}
                )
            else:
                message = messages[0]
                publications = [
                    await database_sync_to_async(broadcast_once)(
                        caller=caller_of(request.user),
                        key=idempotency_key,
                        type=message.type,
                        data=message.data,
                        channels=message.channels,
                    )
                ]
        except PublishError as exc:
            logger.error("Broadcast failed: %s", exc)
            return Response(
                {"detail": str(exc), "code": "channel_layer_unavailable"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        accepted = [
            {
                "id": publication.id,
                "type": publication.type,
                "channel": publication.channel,
                "channels": list(publication.channels),
            }
            for publication in publications
        ]
        return Response(accepted if batch else accepted[0], status=status.HTTP_202_ACCEPTED)


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
