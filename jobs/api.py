"""The jobs REST API. Views validate input and call jobs.services; the
service exceptions map to 403 and 409 here."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from realtime.schema import ErrorSerializer

from . import services
from .models import Job, JobQuerySet
from .pagination import JobPagination
from .serializers import (
    JobCreateSerializer,
    JobListQuerySerializer,
    JobSerializer,
    MeSerializer,
    RegisterSerializer,
)
from .throttling import RegisterAddressThrottle


class InvalidTransition(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This change is not allowed in the job's current state."
    default_code = "invalid_transition"


# The OpenAPI description of the job actions: no body; 409 when the job's
# state does not allow the change.
job_action_schema = extend_schema(
    request=None, responses={200: JobSerializer, 409: ErrorSerializer}
)


class RegisterApi(generics.CreateAPIView):
    """POST /api/auth/register/ {username, password, user_type}."""

    serializer_class = RegisterSerializer
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [RegisterAddressThrottle]


class MeApi(generics.GenericAPIView):
    """GET /api/auth/me/: who the token belongs to, for a frontend to word
    things by user type and show staff tools: {id, username, user_type, is_staff}."""

    serializer_class = MeSerializer

    def get(self, request: Request) -> Response:
        return Response(self.get_serializer(request.user).data)


class JobViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs. List and retrieve show what the user may see (Job.objects.visible_to);
    the state changes find any job and answer by its state and the user's
    role, so a worker who loses an accept race gets 409, not 404."""

    queryset = Job.objects.select_related("employer", "worker")
    serializer_class = JobSerializer
    pagination_class = JobPagination

    def get_queryset(self) -> JobQuerySet:
        jobs = Job.objects.select_related("employer", "worker")
        if self.action in ("list", "retrieve"):
            return jobs.visible_to(self.request.user)
        return jobs

    def list(self, request: Request) -> Response:
        """GET /api/jobs/?status=&job_type=&mine=true&page=&page_size="""
        query = JobListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        jobs = self.get_queryset()
        if params.get("status"):
            jobs = jobs.filter(status=params["status"])
        if params.get("job_type"):
            jobs = jobs.filter(job_type=params["job_type"])
        if params["mine"]:
            jobs = jobs.involving(request.user)
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(JobSerializer(page, many=True).data)

    def create(self, request: Request) -> Response:
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = self._call(services.job_create, employer=request.user, **serializer.validated_data)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @job_action_schema
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        job = self._call(services.job_accept, job=self.get_object(), worker=request.user)
        return Response(JobSerializer(job).data)

    @job_action_schema
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        job = self._call(services.job_complete, job=self.get_object(), employer=request.user)
        return Response(JobSerializer(job).data)

    @job_action_schema
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk: str | None = None) -> Response:
        job = self._call(services.job_refund, job=self.get_object(), employer=request.user)
        return Response(JobSerializer(job).data)

    @staticmethod
    def _call(service: Any, **kwargs: Any) -> Job:
        try:
            return service(**kwargs)
        except services.JobPermissionError as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        except services.JobTransitionError as exc:
            raise InvalidTransition(str(exc)) from exc
