"""The chat's REST API: a job's history and sending (GET and POST
/api/jobs/<id>/messages/), the read mark (POST .../messages/read/), and the
user's conversations (GET /api/chats/). Views validate input and call
jobs.chat.services; its refusals map to 403, 429 and 400 here."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from realtime.schema import ErrorSerializer

from ..models import Job, User
from ..pagination import JobPagination
from . import services
from .events import message_data
from .models import ChatMessage
from .ratelimit import RATE_LIMIT, RATE_WINDOW
from .serializers import (
    ChatHistoryQuerySerializer,
    ChatHistorySerializer,
    ChatMessageSerializer,
    ChatReadResultSerializer,
    ChatReadSerializer,
    ChatSendSerializer,
    ConversationSerializer,
)


class ChatRateLimited(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = f"At most {RATE_LIMIT} messages in {RATE_WINDOW} seconds."
    default_code = "chat_rate_limited"


def _refused(exc: services.ChatError) -> exceptions.APIException:
    if isinstance(exc, services.ChatRateLimitedError):
        return ChatRateLimited(exc.message)
    if isinstance(exc, services.ChatForbiddenError):
        return exceptions.PermissionDenied(exc.message)
    return exceptions.ValidationError({exc.field or "non_field_errors": [exc.message]})


def _job(job_id: int) -> Job:
    return get_object_or_404(Job, pk=job_id)


class JobMessagesApi(generics.GenericAPIView):
    """A job's chat, for its employer and its worker (staff may read)."""

    serializer_class = ChatSendSerializer

    @extend_schema(
        parameters=[ChatHistoryQuerySerializer],
        responses={200: ChatHistorySerializer, 403: ErrorSerializer},
    )
    def get(self, request: Request, job_id: int) -> Response:
        """Pages of the history, newest first: `?before=<message_id>` for
        older ones (`next`), `?after=<message_id>` for newer (`previous`)."""
        job = _job(job_id)
        if not services.can_read(job, request.user):
            raise exceptions.PermissionDenied("You may not read this job's chat.")
        query = ChatHistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        page = services.chat_history(
            job=job, before=params.get("before"), after=params.get("after"), limit=params["limit"]
        )
        url = remove_query_param(
            remove_query_param(request.build_absolute_uri(), "before"), "after"
        )
        older = newer = None
        if page.messages and page.has_older:
            older = replace_query_param(url, "before", page.messages[-1].pk)
        if page.messages and page.has_newer:
            newer = replace_query_param(url, "after", page.messages[0].pk)
        elif not page.messages and page.has_newer and params.get("before"):
            newer = replace_query_param(url, "after", params["before"] - 1)
        return Response(
            {
                "next": older,
                "previous": newer,
                "results": [message_data(m) for m in page.messages],
            }
        )

    @extend_schema(
        request=ChatSendSerializer,
        responses={
            201: ChatMessageSerializer,
            200: ChatMessageSerializer,
            403: ErrorSerializer,
            429: ErrorSerializer,
        },
    )
    def post(self, request: Request, job_id: int) -> Response:
        """Send a message, as the socket's `chat_send`: 201, or 200 with the
        message already stored for this `client_id`."""
        _job(job_id)
        serializer = ChatSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            sent = services.chat_send(
                job_id=job_id, sender=request.user, **serializer.validated_data
            )
        except services.ChatError as exc:
            raise _refused(exc) from exc
        return Response(
            message_data(sent.message),
            status=status.HTTP_201_CREATED if sent.created else status.HTTP_200_OK,
        )


class JobMessagesReadApi(generics.GenericAPIView):
    serializer_class = ChatReadSerializer

    @extend_schema(
        request=ChatReadSerializer, responses={200: ChatReadResultSerializer, 403: ErrorSerializer}
    )
    def post(self, request: Request, job_id: int) -> Response:
        """Mark the chat read up to `message_id`, as the socket's `chat_read`:
        the mark only moves forward."""
        job = _job(job_id)
        serializer = ChatReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            moved = services.chat_mark_read(
                job_id=job.pk, user=request.user, message_id=serializer.validated_data["message_id"]
            )
        except services.ChatError as exc:
            raise _refused(exc) from exc
        return Response(
            {"moved": moved, "last_read_id": services.last_read_id(job=job, user=request.user)}
        )


def _participant(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "user_type": user.user_type}


class ChatListApi(generics.ListAPIView):
    """GET /api/chats/: the user's conversations, the most recent first."""

    serializer_class = ConversationSerializer
    pagination_class = JobPagination

    def get_queryset(self) -> Any:
        return services.chat_conversations(user=self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        jobs = self.paginate_queryset(self.get_queryset()) or []
        last = ChatMessage.objects.in_bulk(
            [job.last_message_id for job in jobs if job.last_message_id is not None]
        )
        results = []
        for job in jobs:
            other = job.worker if job.employer_id == request.user.pk else job.employer
            message = last.get(job.last_message_id)
            results.append(
                {
                    "job_id": job.pk,
                    "title": job.title,
                    "status": job.status,
                    "other_participant": _participant(other),
                    "last_message": message_data(message) if message is not None else None,
                    "unread_count": job.unread_count,
                    "last_read_id": job.read_upto,
                    "other_last_read_id": job.other_read_upto,
                }
            )
        return self.get_paginated_response(results)
