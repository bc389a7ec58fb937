"""The jobs REST API. Views validate input and call jobs.services; the
service exceptions map to 403 and 409 here."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from . import services
from .models import Job
from .serializers import JobCreateSerializer, JobSerializer, RegisterSerializer


class InvalidTransition(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This change is not allowed in the job's current state."
    default_code = "invalid_transition"


class RegisterApi(generics.CreateAPIView):
    """POST /api/auth/register/ {username, password, user_type}."""

    serializer_class = RegisterSerializer
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Job.objects.select_related("employer", "worker")
    serializer_class = JobSerializer

    def create(self, request: Request) -> Response:
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = self._call(services.job_create, employer=request.user, **serializer.validated_data)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        job = self._call(services.job_accept, job=self.get_object(), worker=request.user)
        return Response(JobSerializer(job).data)

    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        job = self._call(services.job_complete, job=self.get_object(), employer=request.user)
        return Response(JobSerializer(job).data)

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
