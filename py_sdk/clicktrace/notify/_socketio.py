"""Socket.IO: python-socketio's ``AsyncServer`` mounted in front of the app.

A socket connects with ``auth: {"token", "last_seq", "epoch"}``; without a valid token the
connection is refused (``connect_error`` with message ``invalid_token``). The one event a
client may emit is a watch (``clicktrace``, ``{"watch": topic, ...}`` or ``{"unwatch":
topic}``); anything else disconnects it. Notifications are
emitted to the room named by the client id, so python-socketio's managers (in memory, Redis,
AMQP) carry them to every node; on each node the manager hands them to the :class:`Hub`,
which delivers them to each socket exactly once and in order.

The managers: python-socketio's pub/sub managers carry an emit to every node and deliver it
locally through ``super().emit``. Each manager class here lists :class:`_Gate` after the
pub/sub manager, so the gate sits exactly there: clicktrace frames go to the node's hub,
everything else to python-socketio unchanged.

Hostile input: :class:`EngineIOGuard` checks what reaches python-engineio; the Engine.IO
handlers are wrapped so that a Socket.IO packet python-socketio cannot decode closes the
session with one rate-limited warning (instead of a traceback each), and an Engine.IO session
counts against its peer address (a :class:`PeerCap` with the hello deadline) until it connects
to ``/`` with a valid token, which it must do within ``hello_timeout_seconds``; from then on it
counts against its peer address in another :class:`PeerCap` (``too_many_connections`` past
``max_connections_per_peer``).

The guard, in front of python-socketio's ``ASGIApp`` on the Engine.IO path only: python-engineio
logs a traceback for every payload it cannot decode (and on the WebSocket lets the exception
escape to the server, which logs another), never answers a polling POST over its buffer size
(its disconnect waits on a queue nobody drains, which also keeps SIGTERM from stopping the
server), and hangs the same way on a packet type a client may not send. So the guard:

- reads a polling POST up to ``max_bytes`` (413 past it) and hands python-engineio the body with
  its exact ``content-length``;
- accepts only packets that python-engineio's own parser decodes, of the types a client sends
  (polling: close, pong, message, upgrade; WebSocket also ping, for the upgrade probe), as
  text; anything else is answered 400 (polling) or closed ``1008 malformed_frame`` /
  ``1009 frame_too_large`` (WebSocket), the session is closed, and ``quiet`` gets one line;
- stamps ``x-correlation-id`` (the request's valid one, else a fresh one) on every HTTP
  response and WebSocket accept. There is no ``traceresponse``: the transport's requests are
  not traced (a poll every 25 s per tab would be a trace each), so there is no span to name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any
from urllib.parse import parse_qs

import socketio
from engineio import packet as eio_packet
from engineio.payload import Payload
from starlette.requests import HTTPConnection, Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clicktrace._optional import require
from clicktrace.notify._frames import (
    EVENT,
    MAX_HELLO_BYTES,
    Frame,
    Notification,
    as_json,
    from_json,
    parse_hello,
    parse_watch,
)
from clicktrace.notify._hub import Hub, Limits, PeerCap, SocketDelivery, TooManyConnections
from clicktrace.notify._session import TokenSigner, UserOf, resolve_user
from clicktrace.notify._transport import QuietLog
from clicktrace.protocol import (
    CORRELATION_HEADER,
    FRAME_TOO_LARGE,
    INVALID_PAYLOAD,
    INVALID_TOKEN,
    MALFORMED_FRAME,
    PAYLOAD_TOO_LARGE,
    TOO_MANY_CONNECTIONS,
    UNAVAILABLE,
)
from clicktrace.web._body import CLIENT_CLOSED, read_body
from clicktrace.web._errors import Refusal, correlation_header, error_body, request_correlation_id
from clicktrace.web._limits import PeerOf

_log = logging.getLogger("clicktrace.notify")
_Handler = Callable[..., Awaitable[Any]]
_RETRY_START, _RETRY_MAX = 0.5, 10.0
_CORRELATION_HEADER = CORRELATION_HEADER.encode("ascii")


class SocketIOEndpoint:
    """The Socket.IO endpoint on one node (built by :class:`SocketIOTransport`)."""

    def __init__(
        self,
        hub: Hub,
        signer: TokenSigner,
        *,
        user_of: UserOf | None = None,
        redis_url: str | None = None,
        amqp_url: str | None = None,
        channel: str = "clicktrace",
        cors_allowed_origins: str | list[str] | None = None,
        socketio_path: str = "socket.io",
        limits: Limits | None = None,
    ) -> None:
        limits = Limits() if limits is None else limits
        peer_of = limits.peer_of
        self.hub = hub
        self._connected = PeerCap(limits.max_connections_per_peer)
        self._signer = signer
        self._user_of = user_of
        self._path = socketio_path
        self._peer_of = peer_of
        # Frames fan out over one broker (python-socketio's managers take one or the other;
        # SocketIOTransport refuses both).
        fan_out = {"amqp_url": amqp_url} if amqp_url else {"redis_url": redis_url}
        self.manager = gated_manager(**fan_out, channel=channel)
        self.manager.hub = hub
        # Clients only send the connect packet and small watch events: anything large is hostile.
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=self.manager,
            logger=False,
            engineio_logger=False,
            max_http_buffer_size=4 * MAX_HELLO_BYTES,
            cors_allowed_origins=cors_allowed_origins,  # None: same origin only
        )
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on(EVENT, self._watch)
        self.sio.on("*", self._unexpected)
        eio = self.sio.eio
        self._eio: dict[str, _Handler] = dict(eio.handlers)  # python-socketio's own
        eio.on("connect", self._eio_connect)
        eio.on("message", self._eio_message)
        eio.on("disconnect", self._eio_disconnect)
        self._quiet = QuietLog(_log)
        self._pending = PeerCap(
            limits.max_pending_per_peer,
            timeout=limits.hello_timeout_seconds,
            on_expire=self._expired,
        )
        self._peers: dict[str, str] = {}
        self._drops: set[asyncio.Task[None]] = set()
        self._in_order: dict[str, asyncio.Lock] = {}  # per connected socket, for its watches
        self.routes: list[BaseRoute] = []

    async def _eio_connect(self, eio_sid: str, environ: Mapping[str, Any]) -> Any:
        peer = self._peer_of(environ.get("asgi.scope") or {})
        if not self._pending.admit(eio_sid, peer):
            self._quiet.warn("too many unauthenticated Socket.IO connections; refused", peer)
            return False  # python-engineio answers 401 (or closes the WebSocket)
        self._peers[eio_sid] = peer
        return await self._eio["connect"](eio_sid, environ)

    async def _eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await self._eio["message"](eio_sid, data)
        except asyncio.CancelledError:
            raise
        except Exception:  # python-socketio could not make sense of the packet
            self._quiet.warn(
                "Socket.IO packet that does not parse; session closed", self._peers.get(eio_sid, "")
            )
            await self.drop(eio_sid)

    async def _eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        self._pending.release(eio_sid)
        self._peers.pop(eio_sid, None)
        await self._eio["disconnect"](eio_sid, reason)

    async def _expired(self, eio_sid: Hashable) -> None:
        if isinstance(eio_sid, str):
            await self.drop(eio_sid)

    async def drop(self, eio_sid: str) -> None:
        """Close an Engine.IO session without waiting for its queue to drain.

        python-engineio's ``disconnect`` waits until the client has read the CLOSE packet,
        which a polling client that is not polling never does."""
        socket_ = self.sio.eio.sockets.pop(eio_sid, None)
        if socket_ is None:
            return
        with contextlib.suppress(Exception):
            if not socket_.closing and not socket_.closed:
                await socket_.close(wait=False)  # queues CLOSE: ends a pending poll
            socket_.queue.put_nowait(None)  # ends a WebSocket's writer, which closes it

    def _drop_later(self, eio_sid: str | None) -> None:
        if eio_sid is None:
            return
        task = asyncio.ensure_future(self.drop(eio_sid))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def _connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> bool:
        hello = parse_hello(auth)
        claims = self._signer.claims(hello.token) if hello is not None else None
        if hello is None or claims is None:
            raise socketio.exceptions.ConnectionRefusedError(INVALID_TOKEN)
        if claims.user is not None:
            scope = environ.get("asgi.scope")
            try:
                user = await resolve_user(self._user_of, HTTPConnection(scope)) if scope else None
            except Exception:
                # The app's hook failed: refuse (the client retries), never crash the server.
                _log.warning("clicktrace: user_of failed; refusing the socket", exc_info=True)
                raise socketio.exceptions.ConnectionRefusedError(UNAVAILABLE) from None
            if user != claims.user:
                raise socketio.exceptions.ConnectionRefusedError(INVALID_TOKEN)

        async def send(frame: Frame) -> None:
            await self.manager.send_to(sid, frame)

        peer = self._peer_of(environ.get("asgi.scope") or {})
        if not self._connected.admit(sid, peer):
            self._quiet.warn("too many authenticated Socket.IO connections; refused", peer)
            raise socketio.exceptions.ConnectionRefusedError(TOO_MANY_CONNECTIONS)
        try:
            self.hub.attach(
                sid, claims.client_id, send, hello.last_seq, hello.epoch, user=claims.user
            )
        except TooManyConnections:
            self._connected.release(sid)
            raise socketio.exceptions.ConnectionRefusedError(TOO_MANY_CONNECTIONS) from None
        self._pending.release(self.manager.eio_sid_from_sid(sid, "/"))
        await self.sio.enter_room(sid, claims.client_id)
        return True

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self._in_order.pop(sid, None)
        self.hub.detach(sid)
        self._connected.release(sid)
        # A session that left "/" holds no client: close it rather than let it idle unbounded.
        self._drop_later(self.manager.eio_sid_from_sid(sid, "/"))

    async def _watch(self, sid: str, data: Any = None) -> None:
        watch = parse_watch(data)
        if watch is None or self.hub.get(sid) is None:
            await self.sio.disconnect(sid)
            return
        # python-socketio runs each event in a task of its own: one socket's watches are
        # applied in the order sent (an unwatch must not overtake the watch before it).
        async with self._in_order.setdefault(sid, asyncio.Lock()):
            if watch.watch:
                await self.hub.watch(sid, watch.topic, watch.last_seq, watch.epoch)
            else:
                self.hub.unwatch(sid, watch.topic)

    async def _unexpected(self, event: Any, sid: str, *args: Any) -> None:
        # Clients only watch topics on this socket; a client that says anything else misbehaves.
        await self.sio.disconnect(sid)

    async def publish(self, client_id: str, frame: Notification) -> None:
        await self.sio.emit(EVENT, as_json(frame), to=client_id)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        inner = socketio.ASGIApp(self.sio, other_asgi_app=app, socketio_path=self._path)
        return EngineIOGuard(
            inner,
            self._path,
            max_bytes=self.sio.eio.max_http_buffer_size,
            drop=self.drop,
            quiet=self._quiet,
            peer_of=self._peer_of,
        )

    async def aclose(self) -> None:
        await self.manager.cancel_retries()
        await self._pending.aclose()
        for task in list(self._drops):
            task.cancel()
        await asyncio.gather(*self._drops, return_exceptions=True)
        await self.sio.shutdown()
        # python-socketio's Redis manager has no close(): stop its listener, release Redis.
        if isinstance(self.manager, _RedisManager):
            listener = getattr(self.manager, "thread", None)
            if isinstance(listener, asyncio.Task):
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            for name in ("pubsub", "redis"):
                client = getattr(self.manager, name, None)
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.aclose()


# The managers.


class _Gate(socketio.AsyncManager):  # type: ignore[misc]
    """Local delivery of clicktrace frames goes through the hub; everything else is untouched.

    Pub/sub managers deliver locally through ``super().emit``; listing this class after them
    puts the gate exactly there, on every node.
    """

    hub: Hub | None = None
    _retries: set[asyncio.Task[None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._retries = set()

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> Any:
        target = to or room
        if (
            self.hub is not None
            and event == EVENT
            and callback is None
            and (namespace or "/") == "/"
            and isinstance(target, str)
            and isinstance(data, dict)
            and "seq" in data
        ):
            frame = from_json(data)
            if frame is None:
                _log.warning("clicktrace: dropped a malformed frame from the manager")
            else:
                await self.hub.route(target, frame)
            return None
        return await super().emit(
            event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
        )

    async def connect(self, sid: str, namespace: str) -> Any:
        # Called after the CONNECT packet is queued, so replayed frames follow it.
        result = await super().connect(sid, namespace)
        delivery = self.hub.get(sid) if self.hub is not None else None
        if delivery is not None and not await _resumed(delivery):
            # e.g. Redis unreachable. socket.io-client does not reconnect after a server-side
            # disconnect, so keep the socket (holding its live frames, bounded) and retry.
            task = asyncio.create_task(self._resume_later(sid, delivery))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        return result

    async def _resume_later(self, sid: str, delivery: SocketDelivery) -> None:
        delay = _RETRY_START
        while self.hub is not None and self.hub.get(sid) is delivery:
            await asyncio.sleep(delay)
            if await _resumed(delivery):
                return
            delay = min(delay * 2, _RETRY_MAX)

    async def cancel_retries(self) -> None:
        for task in list(self._retries):
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)

    async def send_to(self, sid: str, frame: Frame) -> None:
        await socketio.AsyncManager.emit(self, EVENT, as_json(frame), "/", to=sid)


async def _resumed(delivery: SocketDelivery) -> bool:
    try:
        await delivery.resume()
    except asyncio.CancelledError:
        raise
    except Exception:
        _log.warning("clicktrace: replay failed; retrying", exc_info=True)
        return False
    return True


class _LocalManager(_Gate):
    pass


class _RedisManager(socketio.AsyncRedisManager, _Gate):  # type: ignore[misc]
    pass


class _AioPikaManager(socketio.AsyncAioPikaManager, _Gate):  # type: ignore[misc]
    pass


def gated_manager(
    *, redis_url: str | None = None, amqp_url: str | None = None, channel: str = "clicktrace"
) -> _Gate:
    """An in-memory, Redis or RabbitMQ python-socketio manager with the clicktrace gate."""
    if redis_url and amqp_url:
        raise ValueError("give redis_url or amqp_url, not both")
    if redis_url:
        require("redis.asyncio", "redis")
        return _RedisManager(redis_url, channel=channel)
    if amqp_url:
        require("aio_pika", "rabbitmq")
        return _AioPikaManager(amqp_url, channel=channel)
    return _LocalManager()


# The guard.

POLLING_TYPES = frozenset(
    {eio_packet.CLOSE, eio_packet.PONG, eio_packet.MESSAGE, eio_packet.UPGRADE}
)
WEBSOCKET_TYPES = POLLING_TYPES | {eio_packet.PING}
Drop = Callable[[str], Awaitable[None]]


def packet_ok(text: object, allowed: frozenset[int]) -> bool:
    """Whether python-engineio decodes ``text`` to a text packet of an ``allowed`` type."""
    if not isinstance(text, str):
        return False
    try:
        pkt = eio_packet.Packet(encoded_packet=text)
    except Exception:  # its parser raises ValueError, IndexError, binascii.Error, Recursion...
        return False
    return not pkt.binary and pkt.packet_type in allowed


def payload_ok(body: bytes) -> bool:
    """Whether a polling POST body is a payload of packets a client sends."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if not text:
        return True
    parts = text.split("\x1e")
    if len(parts) > Payload.max_decode_packets or text.startswith("d="):  # no JSONP
        return False
    return all(packet_ok(part, POLLING_TYPES) for part in parts)


def _query(scope: Scope, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None


class EngineIOGuard:
    def __init__(
        self,
        app: ASGIApp,
        path: str,
        *,
        max_bytes: int,
        drop: Drop,
        quiet: QuietLog,
        peer_of: PeerOf,
    ) -> None:
        self._app = app
        self._path = "/" + path.strip("/") + "/"
        self._max = max_bytes
        self._drop = drop
        self._quiet = quiet
        self._peer_of = peer_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not (
            scope["path"].rstrip("/") + "/"
        ).startswith(self._path):
            await self._app(scope, receive, send)
            return
        stamp = correlation_header(request_correlation_id(scope))

        async def stamped(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", ()), stamp]}
            await send(message)

        if scope["type"] == "websocket":
            await self._app(scope, self._checked(scope, receive, stamped), stamped)
        elif scope.get("method") == "POST":
            await self._post(scope, receive, stamped, stamp[1].decode())
        else:
            await self._app(scope, receive, stamped)

    async def _post(self, scope: Scope, receive: Receive, send: Send, corr: str) -> None:
        body = await read_body(Request(scope, receive), self._max)
        if body is CLIENT_CLOSED:
            return  # the client left mid-body: nobody to answer, nothing for python-engineio
        sid = _query(scope, "sid")
        if isinstance(body, Refusal) or not payload_ok(body):
            too_large = isinstance(body, Refusal)  # past the cap, or a malformed length
            status, code = (413, PAYLOAD_TOO_LARGE) if too_large else (400, INVALID_PAYLOAD)
            self._quiet.warn(
                f"Engine.IO POST refused ({code}); session closed", self._peer_of(scope)
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": error_body(code, "not an Engine.IO payload this server takes", corr),
                }
            )
            if sid:
                await self._drop(sid)
            return
        headers = [
            (k, v)
            for k, v in scope.get("headers", ())
            if k not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app({**scope, "headers": headers}, replay, send)

    def _checked(self, scope: Scope, receive: Receive, send: Send) -> Receive:
        refused = False

        async def checked() -> Message:
            nonlocal refused
            if refused:
                return {"type": "websocket.disconnect", "code": 1008}
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            text = message.get("text")
            if text is not None and len(text) <= self._max and packet_ok(text, WEBSOCKET_TYPES):
                return message
            refused = True
            reason = (
                FRAME_TOO_LARGE if text is not None and len(text) > self._max else MALFORMED_FRAME
            )
            self._quiet.warn(f"Engine.IO WebSocket frame refused ({reason})", self._peer_of(scope))
            with contextlib.suppress(Exception):  # the peer may be gone already
                await send(
                    {
                        "type": "websocket.close",
                        "code": 1009 if reason == FRAME_TOO_LARGE else 1008,
                        "reason": reason,
                    }
                )
            # python-engineio ends the session as if the client had left.
            return {"type": "websocket.disconnect", "code": 1008}

        return checked
