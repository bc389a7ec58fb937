"""
The `/ws` consumer: translates frames into calls, and nothing more.

Parsing and the message shapes live in `realtime.protocol`; who may join a
channel in `realtime.permissions`; channel membership and delivery in
`realtime.node`, and every write to the socket goes through its
`realtime.client.Client` (bounded: a socket that stops reading is cut off).
Whatever ends the consumer, its socket leaves the node. A bad frame is
answered with a typed `error` and never closes a healthy connection; the
documented exceptions (oversized frame, flooding, bad or expired token, too
many sockets, a slow consumer) send an `error` carrying the reason and then
close with their code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from . import instruments, protocol
from .auth import SocketAuthError, aauthenticate_token
from .broker import Position, parse_since
from .client import SERVER_SEND, Client
from .conf import realtime_settings
from .handlers import ClientMessage, handle_client_message
from .node import JoinError, Node, get_node
from .peers import address_slots, client_address
from .permissions import acan_subscribe, personal_channel
from .presence import presence_enabled
from .protocol import ClientFrame, ClientType, CloseCode, ErrorCode, ProtocolError, ServerType
from .ratelimit import FrameTimes
from .servers.extension import transport_of
from .sessions import session_watch
from .wsframe import Outgoing

logger = logging.getLogger(__name__)


class RealtimeConsumer(AsyncWebsocketConsumer):
    # Sockets get no layer channel of their own: the process' node is the
    # group member and writes publications to them (see realtime.node).
    channel_layer_alias = "realtime.sockets-have-no-layer-channel"

    node: Node
    socket: Client | None = None
    user: Any = None
    closing = False
    _frames: FrameTimes | None = None
    _expiry: asyncio.TimerHandle | None = None
    # Anonymous sockets refused: signed in by neither token nor session, the
    # socket must send `auth` first, within AUTH_TIMEOUT seconds.
    awaiting_auth = False
    address: str | None = None  # counted against MAX_SOCKETS_PER_IP

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch closes stale DB connections through a thread on
        # every message; this consumer uses the database only through
        # database_sync_to_async, which does that itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' AsyncConsumer.__call__ reads `receive` through
        # await_many_dispatch, which multiplexes it with a channel layer's
        # receive: a task per message and asyncio.wait's futures, held by every
        # idle socket (about 2.5 KB each). These sockets have no layer channel,
        # so one loop reads the one source, and dispatches as Channels does.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            # An exception, a broken transport or a server error ends the
            # consumer without websocket.disconnect: leave the node all the same.
            self.forget_socket()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self.disconnect(message.get("code", CloseCode.NORMAL))
        raise StopConsumer()

    def forget_socket(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        session_watch.unwatch(self)
        if self.address is not None:
            address_slots.release(self.address)
            self.address = None
        if self.socket is not None:
            self.socket.disconnected()
            self.node.detach(self.socket)

    # --- life cycle -----------------------------------------------------------------

    async def connect(self) -> None:
        if not self.claim_address():
            await self.accept()
            await self.refuse(
                ErrorCode.TOO_MANY_CONNECTIONS,
                "Too many connections from your address",
                CloseCode.TOO_MANY_CONNECTIONS,
            )
            return
        try:
            self.node = await get_node()
        except Exception as exc:
            # The channel layer (Redis) is away: say so; clients reconnect.
            logger.warning("Refusing a socket: the channel layer failed: %s", exc)
            await self.accept()
            self.closing = True
            await self.send_error(
                ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "Service unavailable, retry soon")
            )
            instruments.disconnects[CloseCode.SERVICE_UNAVAILABLE] += 1
            await self.close(CloseCode.SERVICE_UNAVAILABLE)
            return
        await self.accept()
        if self.scope.get("auth_error"):
            await self.refuse(ErrorCode.UNAUTHORIZED, "Unauthorized", CloseCode.UNAUTHORIZED)
            return
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            user = None
            self.awaiting_auth = not realtime_settings.ALLOW_ANONYMOUS
        self.socket = self.node.attach(
            self.scope.get(SERVER_SEND, self.base_send), transport_of(self.scope)
        )
        if user is not None and not await self.claim_slot(user):
            return
        self.expire_at(self.scope.get("token_expires_at"))
        if self.awaiting_auth:
            self._expiry = asyncio.get_running_loop().call_later(
                realtime_settings.AUTH_TIMEOUT,
                lambda: asyncio.ensure_future(self.refuse_unauthenticated()),
            )
        if user is not None and self.scope.get("token_expires_at") is None:
            self.watch_session()
        # The personal channel is joined before `connected` and held until
        # it is written: nothing reaches the socket before `connected`, and
        # nothing published to the user after it is missed.
        if user is not None and not await self.join_personal_channel(user, hold=True):
            return
        data: dict[str, Any] = {"connection_id": self.socket.id}
        if user is not None:
            data.update(user_id=user.pk, user_type=user.user_type)
        await self.send_message(protocol.envelope(ServerType.CONNECTED, data))
        if user is not None:
            self.node.release(self.socket, personal_channel(user.pk), after=0, replay=[])
        logger.info(
            "Client %s connected%s",
            self.socket.id,
            f" (user {self.user.pk})" if self.user is not None else "",
        )

    async def disconnect(self, code: int) -> None:
        # The server's own closes were counted when it decided them.
        if not self.closing and not (self.socket is not None and self.socket.closing):
            instruments.disconnects[code] += 1
        if self.socket is not None:
            logger.info("Client %s disconnected (code %s)", self.socket.id, code)
        self.forget_socket()

    def claim_address(self) -> bool:
        """Count the socket against its address' limit of open sockets."""
        limit = realtime_settings.MAX_SOCKETS_PER_IP
        address = client_address(self.scope)
        if not limit or address is None:
            return True
        if not address_slots.claim(address, limit):
            return False
        self.address = address
        return True

    def watch_session(self) -> None:
        """A socket signed in by session cookie ends with its session."""
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if key:
            session_watch.watch(self, key, self.session_ended)

    async def session_ended(self) -> None:
        await self.refuse(
            ErrorCode.UNAUTHORIZED, "Unauthorized: the session ended", CloseCode.UNAUTHORIZED
        )

    async def sign_in(self, user: Any) -> bool:
        """Make the socket this user's: count it against their limit of open
        sockets and subscribe it to their personal channel."""
        return await self.claim_slot(user) and await self.join_personal_channel(user)

    async def claim_slot(self, user: Any) -> bool:
        """Count the socket against its user's limit of open sockets."""
        assert self.socket is not None
        if not await self.node.claim_user_slot(
            self.socket, user.pk, user.user_type, realtime_settings.MAX_SOCKETS_PER_USER
        ):
            await self.refuse(
                ErrorCode.TOO_MANY_CONNECTIONS,
                "Too many connections",
                CloseCode.TOO_MANY_CONNECTIONS,
            )
            return False
        self.user = user
        return True

    async def join_personal_channel(self, user: Any, *, hold: bool = False) -> bool:
        assert self.socket is not None
        try:
            await self.node.subscribe(self.socket, personal_channel(user.pk), hold=hold)
        except JoinError as exc:
            await self.refuse(
                ErrorCode.SERVICE_UNAVAILABLE,
                f"Could not join the personal channel: {exc}",
                CloseCode.SERVICE_UNAVAILABLE,
            )
            return False
        return True

    def expire_at(self, expires_at: float | None) -> None:
        """Close the socket with 4001 when its token expires."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if expires_at is not None:
            delay = max(0.0, expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(
                delay, lambda: asyncio.ensure_future(self.token_expired())
            )

    async def refuse_unauthenticated(self) -> None:
        await self.refuse(
            ErrorCode.UNAUTHORIZED,
            'Unauthorized: send {"type": "auth", "token": ...} first',
            CloseCode.UNAUTHORIZED,
        )

    async def token_expired(self) -> None:
        await self.refuse(ErrorCode.TOKEN_EXPIRED, "Token expired", CloseCode.UNAUTHORIZED)

    async def refuse(self, code: str, message: str, close_code: int) -> None:
        """Send the reason as an `error`, then close with `close_code`."""
        if self.closing:
            return
        self.closing = True
        instruments.disconnects[close_code] += 1
        logger.info("Closing client socket with %s: %s", close_code, message)
        socket = self.socket
        if socket is None:
            await self.send_error(ProtocolError(code, message))
            await self.close(close_code)
            return
        self.node.detach(socket)
        self.node.counters.errors_sent += 1
        instruments.errors[code] += 1
        await socket.close(close_code, last_words=protocol.encode(protocol.error(code, message)))

    # --- frames -----------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.socket is None:
            return
        self.node.counters.received += 1
        if self.flooding():
            await self.refuse(ErrorCode.RATE_LIMITED, "Rate limit exceeded", CloseCode.RATE_LIMITED)
            return
        try:
            frame = protocol.parse_frame(
                text_data, bytes_data, max_bytes=realtime_settings.MAX_FRAME_BYTES
            )
            if self.awaiting_auth and frame.type != ClientType.AUTH:
                await self.refuse_unauthenticated()
                return
            handler = self.handlers.get(frame.type)
            if handler is not None:
                await handler(self, frame)
            else:
                await self.on_app_message(frame)
        except ProtocolError as exc:
            if exc.close_code is not None:
                await self.refuse(exc.code, exc.message, exc.close_code)
            else:
                await self.send_error(exc)

    def flooding(self) -> bool:
        """More than RATE_LIMIT_FRAMES frames within RATE_LIMIT_SECONDS?"""
        if self._frames is None:
            self._frames = FrameTimes(realtime_settings.RATE_LIMIT_FRAMES)
        return not self._frames.admit(time.monotonic(), realtime_settings.RATE_LIMIT_SECONDS)

    async def send_message(self, message: dict[str, Any]) -> None:
        text = protocol.encode(message)
        if self.socket is None:
            await self.send(text_data=text)
        else:
            self.socket.write(Outgoing(text))

    async def send_error(self, exc: ProtocolError) -> None:
        instruments.errors[exc.code] += 1
        if self.socket is not None:
            self.node.counters.errors_sent += 1
        await self.send_message(exc.as_message())

    # --- client frames -------------------------------------------------------------------

    async def on_subscribe(self, frame: ClientFrame) -> None:
        """Subscribe, reporting each channel's position; with `since`, send
        what the client missed first (or `recovered: false`)."""
        assert self.socket is not None
        since = frame.body.get("since", {})
        if not isinstance(since, dict):
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                '\'since\' must map channels to {"offset": int, "epoch": str}.',
                field="since",
            )
        requested = protocol.requested_channels(frame.body)
        counted = self.socket.channels - self.own_channels()
        limit = realtime_settings.MAX_SUBSCRIPTIONS
        new = {n for n in requested if isinstance(n, str) and n not in self.socket.channels}
        if len(counted) + len(new) > limit:
            # Refused whole, before any permission lookup.
            raise ProtocolError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"A connection may hold at most {limit} subscriptions; it holds {len(counted)}.",
                limit=limit,
            )
        wanted: list[tuple[str, Position | None]] = []
        for name in requested:
            if not protocol.is_valid_channel(name):
                await self.send_error(protocol.invalid_channel(name))
            elif name in since and parse_since(since[name]) is None:
                await self.send_error(
                    ProtocolError(
                        ErrorCode.INVALID_MESSAGE,
                        'A position is {"offset": int >= 0, "epoch": str}.',
                        field="since",
                        channel=name,
                    )
                )
            elif not await acan_subscribe(self.user, name):
                await self.send_error(
                    ProtocolError(
                        ErrorCode.FORBIDDEN,
                        "You may not subscribe to this channel.",
                        channel=name,
                    )
                )
            else:
                wanted.append((name, parse_since(since.get(name))))
        positions: dict[str, dict[str, Any]] = {}
        catch_up: list[tuple[str, int, list[tuple[int, str]]]] = []
        for name, position in wanted:
            try:
                # Held from before the join until the history is written: no
                # publication is missed or written twice in between.
                await self.node.subscribe(self.socket, name, hold=True)
                snapshot = await self.node.broker.snapshot(
                    name, after=None if position is None else position.offset
                )
            except Exception as exc:
                self.node.unsubscribe(self.socket, name)
                await self.send_error(
                    ProtocolError(
                        ErrorCode.SERVICE_UNAVAILABLE,
                        f"Could not subscribe: {exc or exc.__class__.__name__}",
                        channel=name,
                    )
                )
                continue
            top = snapshot.position
            positions[name] = {"offset": top.offset, "epoch": top.epoch}
            if position is not None and snapshot.recovers(position):
                positions[name]["recovered"] = True
                catch_up.append((name, position.offset, snapshot.entries))
            else:
                if position is not None:
                    positions[name]["recovered"] = False
                catch_up.append((name, top.offset, []))
        if positions:
            await self.send_message(
                protocol.envelope(
                    ServerType.SUBSCRIBED, {"channels": list(positions), "positions": positions}
                )
            )
        for name, after, replay in catch_up:
            self.node.release(self.socket, name, after=after, replay=replay)

    async def on_unsubscribe(self, frame: ClientFrame) -> None:
        assert self.socket is not None
        removed: list[str] = []
        for name in protocol.requested_channels(frame.body):
            if not protocol.is_valid_channel(name):
                await self.send_error(protocol.invalid_channel(name))
            elif self.node.unsubscribe(self.socket, name):
                removed.append(name)
        await self.send_message(protocol.envelope(ServerType.UNSUBSCRIBED, {"channels": removed}))

    async def on_ping(self, frame: ClientFrame) -> None:
        data = frame.body.get("data", {})
        if not isinstance(data, dict):
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, "'data' of a ping must be an object.", field="data"
            )
        await self.send_message(protocol.envelope(ServerType.PONG, data))

    async def on_auth(self, frame: ClientFrame) -> None:
        """A fresh access token: extends an authenticated socket's life, or
        authenticates an anonymous one."""
        raw = frame.body.get("token")
        if not isinstance(raw, str) or not raw:
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, "'auth' needs a 'token' string.", field="token"
            )
        try:
            identity = await aauthenticate_token(raw)
        except SocketAuthError:
            await self.refuse(ErrorCode.UNAUTHORIZED, "Unauthorized", CloseCode.UNAUTHORIZED)
            return
        if self.user is not None and identity.user.pk != self.user.pk:
            await self.refuse(
                ErrorCode.UNAUTHORIZED,
                "Unauthorized: the token is another user's",
                CloseCode.UNAUTHORIZED,
            )
            return
        if self.user is None and not await self.sign_in(identity.user):
            return
        self.awaiting_auth = False
        # From now on the token, not a session, keeps the socket signed in.
        session_watch.unwatch(self)
        self.expire_at(identity.expires_at)
        await self.send_message(
            protocol.envelope(
                ServerType.AUTHENTICATED,
                {"user_id": self.user.pk, "user_type": self.user.user_type},
            )
        )

    async def on_presence(self, frame: ClientFrame) -> None:
        """Who is on a channel now (where subscribing is allowed)."""
        raw = frame.body.get("channel")
        if not protocol.is_valid_channel(raw):
            raise protocol.invalid_channel(raw)
        name = str(raw)
        if not await acan_subscribe(self.user, name):
            raise ProtocolError(
                ErrorCode.FORBIDDEN, "You may not see this channel's presence.", channel=name
            )
        if not presence_enabled(name):
            raise ProtocolError(
                ErrorCode.PRESENCE_DISABLED, "This channel keeps no presence.", channel=name
            )
        users = await self.node.presence.users(name)
        await self.send_message(
            protocol.envelope(ServerType.PRESENCE, {"channel": name, "users": users})
        )

    async def on_app_message(self, frame: ClientFrame) -> None:
        """A frame an app handles (realtime.handlers), or `unknown_type`."""
        assert self.socket is not None
        await handle_client_message(
            ClientMessage(
                frame=frame,
                user=self.user,
                channels=frozenset(self.socket.channels),
                reply=self.send_message,
                connection_id=self.socket.id,
            )
        )

    def own_channels(self) -> set[str]:
        return {personal_channel(self.user.pk)} if self.user is not None else set()

    handlers = {
        ClientType.SUBSCRIBE: on_subscribe,
        ClientType.UNSUBSCRIBE: on_unsubscribe,
        ClientType.PING: on_ping,
        ClientType.AUTH: on_auth,
        ClientType.PRESENCE: on_presence,
    }
