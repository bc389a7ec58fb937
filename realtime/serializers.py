from typing import Any

from rest_framework import serializers

from .protocol import CHANNEL_NAME_RE, MESSAGE_TYPE_RE


class BroadcastSerializer(serializers.Serializer):
    type = serializers.RegexField(
        r"^" + MESSAGE_TYPE_RE.pattern + r"\Z",
        max_length=64,
        trim_whitespace=False,
        error_messages={"invalid": "1 to 64 letters, digits, '_', '.' or '-'."},
    )
    data = serializers.JSONField(required=False)
    channel = serializers.RegexField(
        r"^" + CHANNEL_NAME_RE.pattern + r"\Z",
        max_length=80,
        trim_whitespace=False,
        required=False,
        allow_null=True,
        error_messages={"invalid": "1 to 80 letters, digits, '_', '-' or '.'."},
    )

    def validate_data(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value
