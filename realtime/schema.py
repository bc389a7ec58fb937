"""
The OpenAPI description of the HTTP API (drf-spectacular), beside the views.

* `ApiKeyScheme` tells drf-spectacular what `ApiKeyAuthentication` is
  (`Authorization: Api-Key <key>`); it registers itself on import, and
  realtime.views imports this module.
* The request and response shapes of the realtime views, used by their
  `@extend_schema(...)` decorators (`BROADCAST`, `HEALTH`, ...).
* `add_error_responses`, a postprocessing hook (SPECTACULAR_SETTINGS), gives
  every operation the error answers it can make and does not declare itself:
  400 with DRF's per-field messages where there is a request body, 401 and
  403 (`{"detail", "code"}`, realtime.exceptions) where credentials are read,
  404 where the path names an object.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
)
from rest_framework import serializers

from .authentication import KEYWORD
from .serializers import MAX_BATCH, BroadcastSerializer


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "realtime.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                f"A service key from BROADCAST_API_KEYS: `Authorization: {KEYWORD} <key>`."
            ),
        }


# --- error shapes -----------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error of the API but a serializer's 400: a human `detail` and a
    stable `code` to match on."""

    detail = serializers.CharField()
    code = serializers.CharField()


# DRF's 400 of a serializer: `{"field": ["message", ...]}`; a nested field
# (a list item, an object) holds its own messages the same way.
FIELD_ERRORS: dict[str, Any] = {
    "type": "object",
    "description": 'Per-field messages: `{"field": ["message"]}`.',
    "additionalProperties": {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]
    },
}

ERROR = OpenApiResponse(ErrorSerializer, description='`{"detail", "code"}`.')


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


# --- /broadcast ---------------------------------------------------------------------


class BroadcastAcceptedSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The publication's id (the same on every channel).")
    type = serializers.CharField()
    channel = serializers.CharField(
        allow_null=True, help_text="The first channel, or null for every client."
    )
    channels = serializers.ListField(child=serializers.CharField())


class PublicationSerializer(BroadcastSerializer):
    """One publication: `channel`, `user_id` and `user_ids` say where; none of
    them: every connected client."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["data"] = serializers.DictField(required=False, help_text="A JSON object.")
        return fields


BROADCAST: dict[str, Any] = {
    "summary": (
        f"Publish to a channel, to users, or to every client (one, or a list of 1 to {MAX_BATCH})"
    ),
    "request": PolymorphicProxySerializer(
        component_name="BroadcastBody",
        serializers=[
            PublicationSerializer,
            PublicationSerializer(many=True),
        ],
        resource_type_field_name=None,
        many=False,
    ),
    "parameters": [
        OpenApiParameter(
            "Idempotency-Key",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="At most once per key and caller within 24 hours (one publication).",
        )
    ],
    "responses": {
        202: OpenApiResponse(
            PolymorphicProxySerializer(
                component_name="BroadcastResult",
                serializers=[
                    BroadcastAcceptedSerializer,
                    BroadcastAcceptedSerializer(many=True),
                ],
                resource_type_field_name=None,
                many=False,
            ),
            description="Published: one `{id, ...}`, or a list in the order of the batch.",
        ),
        400: OpenApiResponse(
            {
                "anyOf": [
                    {"$ref": "#/components/schemas/Error"},
                    FIELD_ERRORS,
                    {"type": "array", "items": FIELD_ERRORS},
                ]
            },
            description=(
                "Per-field messages (for a batch, one object per item, by index), or "
                "`{detail, code}` (a body that is not JSON, a malformed Idempotency-Key)."
            ),
        ),
        401: error("No or invalid credentials."),
        403: error("A wrong key, or a JWT of a user who is not staff."),
        413: error("The publication is too large."),
        422: error("The Idempotency-Key was used with another body."),
        500: error("The publication failed for a reason other than Redis being away."),
        503: error("The channel layer did not answer, or no keys are configured."),
    },
    "examples": [
        OpenApiExample(
            "One publication",
            value={"type": "test_message", "data": {"message": "Hello"}, "channel": "jobs"},
            request_only=True,
        ),
    ],
}


# --- /health, /stats ------------------------------------------------------------------


class ConnectionsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_channel = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Sockets per channel: every channel for a service or staff, else public ones.",
    )


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    service = serializers.CharField()
    connections = ConnectionsSerializer()
    reason = serializers.CharField(required=False, help_text="Why it is unhealthy.")


HEALTH: dict[str, Any] = {
    "summary": "Health of the server, Redis and the database",
    "responses": {
        200: HealthSerializer,
        401: ERROR,
        403: ERROR,
        503: OpenApiResponse(HealthSerializer, description="Unhealthy, with a `reason`."),
    },
}


class StatsSerializer(serializers.Serializer):
    connections = ConnectionsSerializer()
    messages = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=(
            "Counters: published, delivered, received, errors_sent, slow_disconnects, resyncs."
        ),
    )
    processes = serializers.IntegerField()
    channel_layer = serializers.CharField()


STATS: dict[str, Any] = {
    "summary": "Connections and message counters of every live process",
    "responses": {200: StatsSerializer, 401: ERROR, 403: ERROR},
}


# --- /api/presence/<channel>/ -----------------------------------------------------------


class PresenceUserSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    user_type = serializers.CharField()
    connections = serializers.IntegerField()


class PresenceSerializer(serializers.Serializer):
    channel = serializers.CharField()
    users = PresenceUserSerializer(many=True)


PRESENCE: dict[str, Any] = {
    "summary": "The users on a presence channel now",
    "responses": {
        200: PresenceSerializer,
        400: OpenApiResponse(FIELD_ERRORS, description="A malformed channel name."),
        401: ERROR,
        403: ERROR,
        404: error("The channel keeps no presence (`presence_disabled`)."),
    },
}


# --- /metrics, /api/asyncapi.json ------------------------------------------------------

METRICS: dict[str, Any] = {
    "summary": "This process' metrics, in the Prometheus text format",
    "responses": {
        (200, "text/plain"): OpenApiResponse(
            OpenApiTypes.STR, description="Prometheus text format 0.0.4."
        ),
        401: ERROR,
        403: ERROR,
    },
}

ASYNCAPI: dict[str, Any] = {
    "summary": "The AsyncAPI 3.0 document of the socket protocol (/ws)",
    "responses": {200: OpenApiResponse(OpenApiTypes.OBJECT, description="AsyncAPI 3.0.0.")},
}


# --- the hook ---------------------------------------------------------------------------

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}, "description": description}


def _without_nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true`, which DRF's own paginators still
    write, as OpenAPI 3.1 (JSON Schema) says it: a `null` type."""
    if isinstance(node, list):
        return [_without_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _without_nullable(value) for key, value in node.items()}
    if node.pop("nullable", False):
        kind = node.get("type")
        if isinstance(kind, str):
            node["type"] = [kind, "null"]
        elif not (isinstance(kind, list) and "null" in kind):
            return {"anyOf": [node, {"type": "null"}]}
    return node


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the error answers every operation can make (and
    no 3.0 `nullable` left in a 3.1 document)."""
    result = _without_nullable(result)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "Error",
        {
            "type": "object",
            "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
            "required": ["detail", "code"],
        },
    )
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "requestBody" in operation:
                # Per-field messages; or, for a body that is not JSON (or is
                # nested too deeply), `{"detail", "code": "parse_error"}`.
                responses.setdefault(
                    "400",
                    _json(
                        {"anyOf": [FIELD_ERRORS, _ERROR_REF]},
                        "Per-field messages, or a body that is not JSON.",
                    ),
                )
            # Credentials are read (and bad ones refused) where a scheme is named.
            if any(operation.get("security") or []):
                responses.setdefault("401", _json(_ERROR_REF, "No or invalid credentials."))
                responses.setdefault("403", _json(_ERROR_REF, "Not allowed."))
            if "{" in path:
                responses.setdefault("404", _json(_ERROR_REF, "Not found."))
    return result
