"""
The AsyncAPI 3.0 document of the socket protocol (GET /api/asyncapi.json),
generated from realtime.protocol.

The message types, error codes and close codes are read from the constants
of `ServerType`, `ClientType`, `ErrorCode` and `CloseCode`; this module only
adds what protocol.py does not say: a description of each, and the JSON
Schema of each message's `data` (server messages) or fields (client
messages). A constant added to protocol.py appears in the document at once,
with a placeholder description until one is written here.

The document describes the server: it *receives* the client messages and
*sends* the server messages, on one channel, `/ws`. Every message payload is
a JSON Schema whose `type` property is a `const` of that message's type;
publications (any type a publisher chose, with an `id`) are one more message.
"""

from __future__ import annotations

from typing import Any

from .protocol import (
    CHANNEL_NAME_RE,
    MESSAGE_TYPE_RE,
    ClientType,
    CloseCode,
    ErrorCode,
    ServerType,
)

VERSION = "1.0.0"
TYPING_STATES = ("typing", "stopped")
UNDESCRIBED = "(not described yet: see realtime/protocol.py)"


def constants(holder: type) -> dict[str, Any]:
    """The protocol constants a class of realtime.protocol names: NAME -> value."""
    return {
        name: value
        for name, value in vars(holder).items()
        if name.isupper() and isinstance(value, (str, int))
    }


# --- shared schemas ----------------------------------------------------------------------

CHANNEL = {"type": "string", "pattern": f"^{CHANNEL_NAME_RE.pattern}$"}
TIMESTAMP = {
    "type": "string",
    "description": "UTC, milliseconds, Z: 2025-11-01T12:00:00.000Z.",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
}
POSITION: dict[str, Any] = {
    "type": "object",
    "description": "A channel's position: its last offset and its epoch.",
    "properties": {
        "offset": {"type": "integer", "minimum": 0},
        "epoch": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    "required": ["offset", "epoch"],
}
USER = {
    "user_id": {"type": "integer"},
    "user_type": {"type": "string", "description": "employer or worker"},
}
CHANNELS_FIELD = {
    "description": "One channel or a list; `channel` is accepted for one.",
    "oneOf": [CHANNEL, {"type": "array", "items": CHANNEL, "minItems": 1}],
}


def _object(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


# --- what protocol.py does not say ---------------------------------------------------------

ERROR_CODES: dict[str, str] = {
    ErrorCode.INVALID_JSON: "The frame is not JSON, is nested too deeply, or holds a lone "
    "UTF-16 surrogate.",
    ErrorCode.INVALID_MESSAGE: "JSON that is not an object, has no string `type`, or lacks "
    "a field the type needs (named in `field`).",
    ErrorCode.UNKNOWN_TYPE: "A `type` the server does not know.",
    ErrorCode.INVALID_CHANNEL: "A malformed channel name (named in `channel`).",
    ErrorCode.UNSUPPORTED_FRAME: "A binary frame.",
    ErrorCode.MESSAGE_TOO_BIG: "A frame over the limit (`limit`, bytes); then close 4013.",
    ErrorCode.SERVICE_UNAVAILABLE: "The channel layer (Redis) did not answer.",
    ErrorCode.UNAUTHORIZED: "A bad token, or none where anonymous sockets are refused; "
    "then close 4001.",
    ErrorCode.TOKEN_EXPIRED: "The socket's access token expired; then close 4001.",
    ErrorCode.FORBIDDEN: "A channel this socket may not subscribe to (named in `channel`).",
    ErrorCode.TOO_MANY_SUBSCRIPTIONS: "The request would exceed `limit` subscriptions.",
    ErrorCode.RATE_LIMITED: "Too many frames; then close 4008.",
    ErrorCode.TOO_MANY_CONNECTIONS: "The user has too many sockets open; then close 4029.",
    ErrorCode.PRESENCE_DISABLED: "Presence asked of a channel that keeps none.",
    ErrorCode.SLOW_CONSUMER: "The socket did not read; more than `limit` bytes waited. "
    "Then close 4009.",
    ErrorCode.CHAT_RATE_LIMITED: "More than `limit` chat messages stored in 10 s; the message "
    "(`client_id`) was not stored. The socket stays open: send it again a little later.",
}

CLOSE_CODES: dict[int, str] = {
    CloseCode.NORMAL: "Normal closure.",
    CloseCode.UNAUTHORIZED: "Unauthorized, or the token expired.",
    CloseCode.RATE_LIMITED: "Rate limit exceeded.",
    CloseCode.SLOW_CONSUMER: "Slow consumer: reconnect and recover with `since`.",
    CloseCode.MESSAGE_TOO_BIG: "A frame was too big.",
    CloseCode.TOO_MANY_CONNECTIONS: "Too many connections of this user: do not reconnect at once.",
    CloseCode.SERVICE_UNAVAILABLE: "The channel layer is away: reconnect with backoff.",
}

# Server messages: (description, schema of `data`, extra top-level properties).
SERVER_MESSAGES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    ServerType.CONNECTED: (
        "The first message on every socket. `user_id` and `user_type` when authenticated.",
        _object({"connection_id": {"type": "string"}, **USER}, "connection_id"),
        {},
    ),
    ServerType.PONG: ("The answer to `ping`: its `data`, echoed.", {"type": "object"}, {}),
    ServerType.SUBSCRIBED: (
        "The channels subscribed, and each one's position (`recovered` when `since` was given).",
        _object(
            {
                "channels": {"type": "array", "items": CHANNEL},
                "positions": {
                    "type": "object",
                    "additionalProperties": {
                        **POSITION,
                        "properties": {
                            **POSITION["properties"],
                            "recovered": {"type": "boolean"},
                        },
                    },
                },
            },
            "channels",
        ),
        {},
    ),
    ServerType.UNSUBSCRIBED: (
        "The channels the socket left.",
        _object({"channels": {"type": "array", "items": CHANNEL}}, "channels"),
        {},
    ),
    ServerType.AUTHENTICATED: (
        "The answer to `auth`: the socket's user.",
        _object(USER, "user_id", "user_type"),
        {},
    ),
    ServerType.PRESENCE: (
        "Who is on a channel now (the answer to `presence`).",
        _object(
            {
                "channel": CHANNEL,
                "users": {
                    "type": "array",
                    "items": _object(
                        {**USER, "connections": {"type": "integer", "minimum": 1}},
                        "user_id",
                        "user_type",
                    ),
                },
            },
            "channel",
            "users",
        ),
        {},
    ),
    ServerType.ERROR: (
        "A frame the server could not act on, or the reason of the close that follows. "
        "Match on `code`.",
        _object(
            {
                "code": {"$ref": "#/components/schemas/ErrorCode"},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "channel": {"type": "string"},
                "limit": {"type": "integer"},
                "client_id": {"type": "string", "description": "The chat message refused."},
            },
            "code",
            "message",
        ),
        {},
    ),
    ServerType.RESYNC: (
        "Reload this channel's state: publications were lost for good. `data` is the "
        "channel's position; live delivery goes on.",
        POSITION,
        {"channel": CHANNEL},
    ),
    ServerType.USER_ONLINE: (
        "A user's first socket joined a presence channel.",
        _object(USER, "user_id", "user_type"),
        {"channel": CHANNEL},
    ),
    ServerType.USER_OFFLINE: (
        "A user's last socket left a presence channel (or its process died).",
        _object(USER, "user_id", "user_type"),
        {"channel": CHANNEL},
    ),
    ServerType.CHAT_ACK: (
        "The answer to `chat_send`: the message is stored (its `chat_message` publication "
        "follows on the job's channel). The same `client_id` again gets the same ack.",
        _object(
            {"client_id": {"type": "string"}, "message_id": {"type": "integer"}},
            "client_id",
            "message_id",
        ),
        {},
    ),
    ServerType.TYPING: (
        "Another participant of the job's chat is typing, or stopped. Not a publication: "
        "no offset, never in history.",
        _object(
            {"user_id": {"type": "integer"}, "state": {"enum": list(TYPING_STATES)}},
            "user_id",
            "state",
        ),
        {"channel": CHANNEL},
    ),
}

# Client messages: (description, properties besides `type`, required ones).
CLIENT_MESSAGES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    ClientType.SUBSCRIBE: (
        "Subscribe to channels; with `since`, get what was missed after each position.",
        {
            "channels": CHANNELS_FIELD,
            "channel": CHANNEL,
            "since": {"type": "object", "additionalProperties": POSITION},
        },
        [],
    ),
    ClientType.UNSUBSCRIBE: (
        "Leave channels.",
        {"channels": CHANNELS_FIELD, "channel": CHANNEL},
        [],
    ),
    ClientType.PING: ("Answered with `pong`, echoing `data`.", {"data": {"type": "object"}}, []),
    ClientType.AUTH: (
        "A fresh access token: extends the socket's life, or authenticates an anonymous one.",
        {"token": {"type": "string", "minLength": 1}},
        ["token"],
    ),
    ClientType.PRESENCE: ("Who is on a channel now.", {"channel": CHANNEL}, ["channel"]),
    ClientType.CHAT_SEND: (
        "Send a message to a job's chat (`channel`: `job.<id>`): `body`, 1 to 4,000 "
        "characters once trimmed, and `client_id`, a UUID of the sender's; answered with "
        "`chat_ack`.",
        {
            "channel": CHANNEL,
            "data": _object(
                {
                    "body": {"type": "string", "minLength": 1, "maxLength": 4000},
                    "client_id": {"type": "string", "format": "uuid"},
                },
                "body",
                "client_id",
            ),
        },
        ["channel", "data"],
    ),
    ClientType.TYPING: (
        "The sender is typing in a job's chat, or stopped.",
        {
            "channel": CHANNEL,
            "data": _object({"state": {"enum": list(TYPING_STATES)}}, "state"),
        },
        ["channel", "data"],
    ),
    ClientType.CHAT_READ: (
        "The sender has read a job's chat up to `message_id` (only moves forward).",
        {
            "channel": CHANNEL,
            "data": _object({"message_id": {"type": "integer", "minimum": 1}}, "message_id"),
        },
        ["channel", "data"],
    ),
}


# --- the document --------------------------------------------------------------------------


def server_payload(kind: str) -> dict[str, Any]:
    description, data, extra = SERVER_MESSAGES.get(kind, (UNDESCRIBED, {"type": "object"}, {}))
    return {
        "type": "object",
        "description": description,
        "properties": {
            "type": {"type": "string", "const": kind},
            "data": data,
            "timestamp": TIMESTAMP,
            **extra,
        },
        "required": ["type", "data", "timestamp", *extra],
        "additionalProperties": False,
    }


def client_payload(kind: str) -> dict[str, Any]:
    description, properties, required = CLIENT_MESSAGES.get(kind, (UNDESCRIBED, {}, []))
    return {
        "type": "object",
        "description": description,
        "properties": {"type": {"type": "string", "const": kind}, **properties},
        "required": ["type", *required],
    }


PUBLICATION_PAYLOAD = {
    "type": "object",
    "description": (
        "A publication (POST /broadcast, job events, chat messages and receipts, payment "
        "notifications): any type its publisher chose, with "
        "an `id`. To a channel it carries `channel`, `offset` and `epoch`; to every "
        "client, `id` only."
    ),
    "properties": {
        "type": {"type": "string", "pattern": f"^{MESSAGE_TYPE_RE.pattern}$"},
        "data": {"type": "object"},
        "timestamp": TIMESTAMP,
        "channel": CHANNEL,
        "id": {"type": "string"},
        "offset": {"type": "integer", "minimum": 1},
        "epoch": {"type": "string"},
    },
    "required": ["type", "data", "timestamp", "id"],
    "dependencies": {"channel": ["offset", "epoch"]},
    "additionalProperties": False,
}

PUBLICATION = "server.publication"


def server_message_name(kind: str) -> str:
    return f"server.{kind}"


def client_message_name(kind: str) -> str:
    return f"client.{kind}"


def message_name_of(message: dict[str, Any]) -> str:
    """Which server message of the document a received message is: a
    publication when it has an `id`, else the message of its type."""
    if "id" in message:
        return PUBLICATION
    return server_message_name(str(message.get("type")))


def document() -> dict[str, Any]:
    server_types = sorted(set(constants(ServerType).values()))
    client_types = sorted(set(constants(ClientType).values()))
    errors = constants(ErrorCode)
    closes = constants(CloseCode)
    messages: dict[str, Any] = {}
    for kind in server_types:
        messages[server_message_name(kind)] = {
            "name": kind,
            "title": f"{kind} (server)",
            "summary": SERVER_MESSAGES.get(kind, (UNDESCRIBED,))[0],
            "payload": server_payload(kind),
        }
    messages[PUBLICATION] = {
        "name": "publication",
        "title": "A publication (server)",
        "payload": PUBLICATION_PAYLOAD,
    }
    for kind in client_types:
        messages[client_message_name(kind)] = {
            "name": kind,
            "title": f"{kind} (client)",
            "summary": CLIENT_MESSAGES.get(kind, (UNDESCRIBED,))[0],
            "payload": client_payload(kind),
        }
    channel_messages = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    close_lines = "\n".join(
        f"- `{code}`: {CLOSE_CODES.get(code, UNDESCRIBED)}" for code in sorted(closes.values())
    )

    def operation(action: str, name: str) -> dict[str, Any]:
        return {
            "action": action,
            "channel": {"$ref": "#/channels/socket"},
            "messages": [{"$ref": f"#/channels/socket/messages/{name}"}],
        }

    operations: dict[str, Any] = {}
    for name in messages:
        side, _, kind = name.partition(".")
        action = "send" if side == "server" else "receive"
        operations[f"{action}_{kind}"] = operation(action, name)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "PayChain Realtime socket protocol",
            "version": VERSION,
            "description": (
                "The WebSocket protocol of the PayChain real-time server, from the "
                "server's side: it receives the client messages and sends the server "
                "messages. Every frame is one JSON text frame. Generated from "
                "realtime/protocol.py."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:8080",
                "protocol": "ws",
                "description": "bin/serve; wss:// behind TLS in production.",
            }
        },
        "channels": {
            "socket": {
                "address": "/ws",
                "title": "The socket",
                "description": (
                    "Connect with `?token=<access token>` to authenticate. The server "
                    "closes with these codes, each preceded by an `error` message that "
                    "says why:\n" + close_lines
                ),
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": _object({"token": {"type": "string"}}),
                    }
                },
            }
        },
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {
                "ErrorCode": {
                    "type": "string",
                    "description": "The stable codes of `error` messages.",
                    "enum": sorted(errors.values()),
                    "x-descriptions": {
                        code: ERROR_CODES.get(code, UNDESCRIBED) for code in errors.values()
                    },
                },
                "CloseCode": {
                    "type": "integer",
                    "description": "The close codes the server uses.",
                    "enum": sorted(closes.values()),
                    "x-descriptions": {
                        str(code): CLOSE_CODES.get(code, UNDESCRIBED) for code in closes.values()
                    },
                },
            },
        },
    }
