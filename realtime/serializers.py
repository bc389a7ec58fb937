import copy
from typing import Any

from rest_framework import serializers

from .permissions import personal_channel
from .protocol import CHANNEL_NAME_RE, MESSAGE_TYPE_RE, is_valid_unicode

# The fields of a broadcast, made once. DRF deep-copies a serializer's declared
# fields for every instance (re-running each field's __init__), which was a
# third of what a broadcast cost; these fields keep no state of their own
# beyond their binding to the serializer, so each instance takes shallow copies.
BROADCAST_FIELDS: dict[str, serializers.Field] = {
    "type": serializers.RegexField(
        r"^" + MESSAGE_TYPE_RE.pattern + r"\Z",
        max_length=64,
        trim_whitespace=False,
        error_messages={"invalid": "1 to 64 letters, digits, '_', '.' or '-'."},
    ),
    "data": serializers.JSONField(required=False),
    "channel": serializers.RegexField(
        r"^" + CHANNEL_NAME_RE.pattern + r"\Z",
        max_length=80,
        trim_whitespace=False,
        required=False,
        allow_null=True,
        error_messages={"invalid": "1 to 80 letters, digits, '_', '-' or '.'."},
    ),
    "user_id": serializers.IntegerField(required=False, min_value=1),
    "user_ids": serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=1000
    ),
}


def well_formed(data: Any) -> dict[str, Any] | None:
    """What BroadcastSerializer's fields make of `data`, when it is the
    common case (a JSON object with a valid `type`, maybe an object `data`,
    maybe a valid or null `channel`, no `user_id(s)`); None otherwise, and DRF's
    own validation then decides and words the errors. The same checks as
    BROADCAST_FIELDS, at a fraction of DRF's per-field cost (tests/test_fuzz.py
    holds the two to the same answers)."""
    if type(data) is not dict or "user_id" in data or "user_ids" in data:
        return None
    kind = data.get("type")
    if type(kind) is not str or MESSAGE_TYPE_RE.fullmatch(kind) is None:
        return None
    value: dict[str, Any] = {"type": kind}
    if "data" in data:
        body = data["data"]
        if type(body) is not dict or not is_valid_unicode(body):
            return None
        value["data"] = body
    if "channel" in data:
        channel = data["channel"]
        if channel is not None and (
            type(channel) is not str or CHANNEL_NAME_RE.fullmatch(channel) is None
        ):
            return None
        value["channel"] = channel
    return value


class BroadcastSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: copy.copy(field) for name, field in BROADCAST_FIELDS.items()}

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # Nearly every broadcast is well formed: it skips DRF's per-field
        # machinery, a sixth of what a POST /broadcast cost.
        value = well_formed(data)
        if value is not None:
            return value
        return super().run_validation(data)

    def validate_data(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if not is_valid_unicode(value):
            raise serializers.ValidationError("Holds a lone UTF-16 surrogate: not valid Unicode.")
        return value

    def validated_channels(self) -> list[str]:
        return channels_of(self.validated_data)


# The most publications one POST /broadcast may carry as a list.
MAX_BATCH = 100


class BroadcastBatchSerializer(serializers.ListSerializer):
    """A list of 1 to MAX_BATCH broadcasts, valid all or none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("child", BroadcastSerializer())
        kwargs.setdefault("allow_empty", False)
        kwargs.setdefault("max_length", MAX_BATCH)
        super().__init__(*args, **kwargs)


def channels_of(body: dict[str, Any]) -> list[str]:
    """The channels a broadcast goes to: `channel`, then the personal
    channel of each user; empty for every connected client."""
    channels = [body["channel"]] if body.get("channel") else []
    user_ids = list(body.get("user_ids") or [])
    if body.get("user_id") is not None:
        user_ids.insert(0, body["user_id"])
    channels.extend(personal_channel(user_id) for user_id in user_ids)
    return list(dict.fromkeys(channels))
