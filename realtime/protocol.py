"""
The socket protocol: what it *is*, in one place.

Message types, error codes and close codes are named constants here; envelope
building and client-frame parsing live here too. Consumers, the publishing
service and the views import from this module and never spell a protocol
string themselves.

Every server message is one JSON object, the envelope:

    {"type": "...", "data": {...}, "timestamp": "2025-11-01T12:00:00.000Z", ...}

plus `channel` and `id` for publications.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class ServerType:
    """Types of the messages the server sends."""

    CONNECTED = "connected"
    PONG = "pong"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    AUTHENTICATED = "authenticated"
    PRESENCE = "presence"
    ERROR = "error"
    # "Reload this channel's state": publications were lost for good (the
    # history no longer holds them); live delivery goes on after it.
    RESYNC = "resync"
    USER_ONLINE = "user_online"
    USER_OFFLINE = "user_offline"
    # Chat (frames handled by an app, see realtime.handlers): the answer to
    # `chat_send`, and a participant's typing state (not a publication).
    CHAT_ACK = "chat_ack"
    TYPING = "typing"


class ClientType:
    """Types of the frames a client may send."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    PING = "ping"
    AUTH = "auth"
    PRESENCE = "presence"
    # Chat: handled by the handler an app registers (realtime.handlers);
    # `unknown_type` while none is registered.
    CHAT_SEND = "chat_send"
    TYPING = "typing"
    CHAT_READ = "chat_read"

    ALL = frozenset({SUBSCRIBE, UNSUBSCRIBE, PING, AUTH, PRESENCE, CHAT_SEND, TYPING, CHAT_READ})


class PublicationType:
    """Types of publications the apps make (ids, offsets, history like any
    publication): named here so that clients find every type in one place."""

    CHAT_MESSAGE = "chat_message"
    CHAT_READ = "chat_read"
    CHAT_NOTIFICATION = "chat_notification"
    PAYMENT_RELEASED = "payment_released"
    PAYMENT_REFUNDED = "payment_refunded"


class ErrorCode:
    """Stable codes of `error` messages. Clients and tests match these, not the wording."""

    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_CHANNEL = "invalid_channel"
    UNSUPPORTED_FRAME = "unsupported_frame"
    MESSAGE_TOO_BIG = "message_too_big"
    SERVICE_UNAVAILABLE = "service_unavailable"
    UNAUTHORIZED = "unauthorized"
    TOKEN_EXPIRED = "token_expired"
    FORBIDDEN = "forbidden"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    PRESENCE_DISABLED = "presence_disabled"
    SLOW_CONSUMER = "slow_consumer"
    # Too many chat messages stored in a while; the socket stays open.
    CHAT_RATE_LIMITED = "chat_rate_limited"


class CloseCode:
    """Close codes the server uses. Daphne lets an application close only with
    1000 or 3000-4999, so the protocol's own codes live in the 4000 range; the
    reason is always sent first as an `error` message (daphne sends no reason)."""

    NORMAL = 1000
    UNAUTHORIZED = 4001
    RATE_LIMITED = 4008
    SLOW_CONSUMER = 4009
    MESSAGE_TOO_BIG = 4013
    TOO_MANY_CONNECTIONS = 4029
    SERVICE_UNAVAILABLE = 4503


# Channel names: 1 to 80 letters, digits, `_`, `-`, `.`.
CHANNEL_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,80}")
# Publication types: 1 to 64 letters, digits, `_`, `.`, `-`.
MESSAGE_TYPE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def is_valid_channel(name: object) -> bool:
    return isinstance(name, str) and CHANNEL_NAME_RE.fullmatch(name) is not None


def timestamp(moment: datetime | None = None) -> str:
    """UTC, milliseconds, `Z`: 2025-11-01T12:00:00.000Z."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def new_message_id() -> str:
    return str(uuid.uuid4())


def envelope(type: str, data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Build a server message. `extra` adds top-level keys (`channel`, `id`)."""
    message: dict[str, Any] = {"type": type, "data": {} if data is None else data}
    message["timestamp"] = timestamp()
    for key, value in extra.items():
        if value is not None:
            message[key] = value
    return message


def encode(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _publication_head(type: str, data_json: str) -> str:
    return f'{{"type":{encode(type)},"data":{data_json},"timestamp":"{timestamp()}"'


def publication_prefixes(type: str, data_json: str, *, id: str, channels: list[str]) -> list[str]:
    """The envelope of one publication to each of `channels`, encoded, each
    without its closing brace (the broker adds the position). `data_json` is
    `encode(data)`, made once for all of them; the result is what
    `encode(envelope(type, data, channel=c, id=id))[:-1]` gives."""
    head = _publication_head(type, data_json)
    return [f'{head},"channel":{encode(channel)},"id":{encode(id)}' for channel in channels]


def publication_to_all(type: str, data_json: str, *, id: str) -> str:
    """The frame of a publication to every client: `encode(envelope(type,
    data, id=id))`, from `data_json` = `encode(data)`."""
    return f'{_publication_head(type, data_json)},"id":{encode(id)}}}'


def utf8_size(text: str) -> int:
    """The size of `text` in UTF-8, in bytes."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def error(code: str, message: str, **fields: Any) -> dict[str, Any]:
    """An `error` envelope: a stable `code`, a human `message`, and the field
    or channel it concerns."""
    data: dict[str, Any] = {"code": code, "message": message}
    data.update({key: value for key, value in fields.items() if value is not None})
    return envelope(ServerType.ERROR, data)


class ProtocolError(Exception):
    """A client frame the server cannot act on. Answered with an `error` message;
    the connection stays open unless `close_code` is set."""

    def __init__(
        self, code: str, message: str, *, close_code: int | None = None, **fields: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code
        self.fields = fields

    def as_message(self) -> dict[str, Any]:
        return error(self.code, self.message, **self.fields)


@dataclass
class ClientFrame:
    """A parsed client frame: its `type` and the whole object."""

    type: str
    body: dict[str, Any] = field(default_factory=dict)


def parse_frame(text: str | None, bytes_data: bytes | None, *, max_bytes: int) -> ClientFrame:
    """Turn one WebSocket frame into a ClientFrame, or raise ProtocolError."""
    if text is None:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_FRAME,
            "Binary frames are not supported; send JSON text frames.",
        )
    # A str of n characters is at least n and at most 4n bytes of UTF-8.
    if len(text) > max_bytes or (
        len(text) * 4 > max_bytes and len(text.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise ProtocolError(
            ErrorCode.MESSAGE_TOO_BIG,
            f"Frames may be at most {max_bytes} bytes.",
            close_code=CloseCode.MESSAGE_TOO_BIG,
            limit=max_bytes,
        )
    try:
        body = json.loads(text)
    except RecursionError:
        raise ProtocolError(ErrorCode.INVALID_JSON, "JSON is nested too deeply.") from None
    except ValueError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"Frame is not valid JSON: {exc}") from None
    if SURROGATE_ESCAPE_RE.search(text) and not is_valid_unicode(body):
        raise ProtocolError(
            ErrorCode.INVALID_JSON, "Frame is not valid JSON: a string holds a lone surrogate."
        )
    if not isinstance(body, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "A frame must be a JSON object.")
    kind = body.get("type")
    if kind is None:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "A frame needs a 'type'.", field="type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "'type' must be a string.", field="type")
    if kind not in ClientType.ALL:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"Unknown message type {kind[:64]!r}.",
            field="type",
        )
    return ClientFrame(type=kind, body=body)


# A JSON escape of a UTF-16 surrogate (\\ud800-\\udfff). A valid pair decodes to
# one character; a lone one decodes to a str that cannot be encoded to UTF-8.
SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def is_valid_unicode(value: Any) -> bool:
    """True when every string in a decoded JSON value can be sent as UTF-8."""
    try:
        for text in _strings(value):
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def requested_channels(body: dict[str, Any]) -> list[Any]:
    """The channels a subscribe/unsubscribe frame names, in order, without
    repeats: `channels` (a list or one string) or `channel` (one string)."""
    raw = body.get("channels", body.get("channel"))
    if isinstance(raw, (str, int, float, bool, dict)) or raw is None:
        raw = [] if raw is None else [raw]
    if not isinstance(raw, list) or not raw:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            "Name at least one channel in 'channels'.",
            field="channels",
        )
    seen: set[str] = set()
    unique: list[Any] = []
    for item in raw:
        if isinstance(item, str):
            if item in seen:
                continue
            seen.add(item)
        unique.append(item)
    return unique


def invalid_channel(name: Any) -> ProtocolError:
    shown = name if isinstance(name, str) else json.dumps(name)[:100]
    return ProtocolError(
        ErrorCode.INVALID_CHANNEL,
        "Channel names are 1 to 80 letters, digits, '_', '-' or '.'.",
        channel=shown[:100] if isinstance(shown, str) else shown,
    )
