from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from . import asyncapi, health, metrics, protocol, schema
from .async_views import AsyncAPIView, FirstRendererNegotiation
from .authentication import (
    ApiKeyAuthentication,
    CanBroadcast,
    IsServiceOrStaff,
    ServiceClient,
    authorization_header,
)
from .idempotency import META_KEY as IDEMPOTENCY_META_KEY
from .idempotency import broadcast_once, caller_of, clean_key
from .presence import channel_users, presence_enabled
from .protocol import is_valid_channel
from .serializers import BroadcastBatchSerializer, BroadcastSerializer, channels_of
from .services import (
    LayerUnavailableError,
    Message,
    PublicationTooLargeError,
    PublishError,
    apublish_many,
)

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
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    def initial_needs_thread(self, request: Request) -> bool:
        # Only a JWT names a user to load.
        scheme = authorization_header(request).split()[:1]
        return bool(scheme) and scheme[0].lower() == b"bearer"

    @extend_schema(**schema.BROADCAST)
    async def post(self, request: Request) -> HttpResponse:
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
        idempotency_key = clean_key(request.META.get(IDEMPOTENCY_META_KEY))
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
        except PublicationTooLargeError as exc:
            return Response(
                {"detail": str(exc), "code": exc.code},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        except LayerUnavailableError as exc:
            logger.error("Broadcast failed: %s", exc)
            return Response(
                {"detail": str(exc), "code": exc.code}, status=status.HTTP_503_SERVICE_UNAVAILABLE
            )
        except PublishError as exc:
            # Not Redis being away: a bug, or an error Redis answered. Retrying
            # the same request may fail the same way.
            logger.error("Broadcast failed: %s", exc)
            return Response(
                {"detail": "The publication failed; the server logged why.", "code": exc.code},
                status=status.HTTP_500_INTERNAL_SERVER_ERROR,
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
        # A plain JSON HttpResponse, as DRF allows a view to return: the same
        # body JSONRenderer would make, without a TemplateResponse to render
        # for every publication (errors above still go through DRF).
        return HttpResponse(
            protocol.encode(accepted if batch else accepted[0]),
            status=status.HTTP_202_ACCEPTED,
            content_type="application/json",
        )


def sees_every_channel(request: Request) -> bool:
    """A service key or a staff user: /health and /stats show them every
    channel; anyone else, the public ones (realtime.health.visible_connections)."""
    user = request.user
    return isinstance(user, ServiceClient) or bool(getattr(user, "is_staff", False))


class HealthApi(APIView):
    """GET /health: the seed's health document; 503 when Redis or the
    database does not answer."""

    # Credentials are optional: they only widen what is shown.
    authentication_classes = [ApiKeyAuthentication, JWTAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(**schema.HEALTH)
    def get(self, request: Request) -> Response:
        layer_problem, database_problem = health.problems()
        problems = [p for p in (layer_problem, database_problem) if p]
        # Redis away: this process' own counts, without waiting on it again.
        connections = (health.local() if layer_problem else health.cluster())["connections"]
        body = {
            "status": "unhealthy" if problems else "healthy",
            "service": "websocket-server",
            "connections": health.visible_connections(
                connections, every_channel=sees_every_channel(request)
            ),
        }
        if problems:
            body["reason"] = " ".join(problems)
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(body)


class StatsApi(APIView):
    """GET /stats: connections plus message counters."""

    authentication_classes = [ApiKeyAuthentication, JWTAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(**schema.STATS)
    def get(self, request: Request) -> Response:
        totals = health.cluster()
        return Response(
            {
                "connections": health.visible_connections(
                    totals["connections"], every_channel=sees_every_channel(request)
                ),
                "messages": totals["messages"],
                "processes": totals["processes"],
                "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
            }
        )


class PresenceApi(APIView):
    """GET /api/presence/<channel>/: the authenticated users on a channel now."""

    authentication_classes = [ApiKeyAuthentication, JWTAuthentication]
    permission_classes = [IsServiceOrStaff]

    @extend_schema(**schema.PRESENCE)
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


class MetricsApi(APIView):
    """GET /metrics: this process' metrics in the Prometheus text format
    (realtime.metrics), for a service key or a staff user's JWT."""

    authentication_classes = [ApiKeyAuthentication, JWTAuthentication]
    permission_classes = [IsServiceOrStaff]
    # Prometheus asks for text/plain or anything; errors are JSON.
    renderer_classes = [JSONRenderer, metrics.TextRenderer]

    @extend_schema(**schema.METRICS)
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)


class AsyncApiDocumentApi(APIView):
    """GET /api/asyncapi.json: the AsyncAPI 3.0 document of the socket protocol."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(**schema.ASYNCAPI)
    def get(self, request: Request) -> Response:
        return Response(asyncapi.document())
