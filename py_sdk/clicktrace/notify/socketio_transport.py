"""Socket.IO transport: python-socketio's ``AsyncServer`` mounted in front of the app.

A socket connects with ``auth: {"token", "last_seq"}``; without a valid token the connection
is refused (``connect_error`` with message ``invalid_token``). Notifications are emitted to
the room named by the client id, so python-socketio's managers (in memory, Redis, AMQP) carry
them to every node; on each node the manager hands them to the :class:`Hub`, which delivers
them to each socket exactly once and in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import socketio
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace.notify.delivery import Delivery, Hub, TooManyConnections
from clicktrace.notify.fanout import REDIS_HINT
from clicktrace.notify.frames import EVENT, MAX_HELLO_BYTES, Frame, parse_hello
from clicktrace.notify.session import UserOf, resolve_user
from clicktrace.notify.tokens import TokenSigner

__all__ = ["SocketIOTransport", "gated_manager"]

AMQP_HINT = "pip install 'clicktrace[rabbitmq]'"
_log = logging.getLogger("clicktrace.notify")
_RETRY_START, _RETRY_MAX = 0.5, 10.0


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

    async def emit(self, event: str, data: Any, namespace: str | None, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> Any:
        target = to or room
        if (self.hub is not None and event == EVENT and callback is None
                and (namespace or "/") == "/" and isinstance(target, str)
                and isinstance(data, dict) and "seq" in data):
            await self.hub.dispatch(target, data)
            return None
        return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                  callback=callback, to=to, **kwargs)

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

    async def _resume_later(self, sid: str, delivery: Delivery) -> None:
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
        await socketio.AsyncManager.emit(self, EVENT, frame, "/", to=sid)


async def _resumed(delivery: Delivery) -> bool:
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
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:
            raise ImportError(REDIS_HINT) from None
        return _RedisManager(redis_url, channel=channel)
    if amqp_url:
        try:
            import aio_pika  # noqa: F401
        except ImportError:
            raise ImportError(AMQP_HINT) from None
        return _AioPikaManager(amqp_url, channel=channel)
    return _LocalManager()


class SocketIOTransport:
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
    ) -> None:
        self.hub = hub
        self._signer = signer
        self._user_of = user_of
        self._path = socketio_path
        self.manager = gated_manager(redis_url=redis_url, amqp_url=amqp_url, channel=channel)
        self.manager.hub = hub
        # Clients only ever send the connect packet: anything large is hostile.
        self.sio = socketio.AsyncServer(
            async_mode="asgi", client_manager=self.manager, logger=False,
            engineio_logger=False, max_http_buffer_size=4 * MAX_HELLO_BYTES,
            cors_allowed_origins=cors_allowed_origins,  # None: same origin only
        )
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("*", self._unexpected)
        self.routes: list[BaseRoute] = []

    async def _connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> bool:
        hello = parse_hello(auth)
        claims = self._signer.claims(hello.token) if hello is not None else None
        if hello is None or claims is None:
            raise socketio.exceptions.ConnectionRefusedError("invalid_token")
        if claims.user is not None:
            scope = environ.get("asgi.scope")
            try:
                user = await resolve_user(self._user_of, HTTPConnection(scope)) if scope else None
            except Exception:
                # The app's hook failed: refuse (the client retries), never crash the server.
                _log.warning("clicktrace: user_of failed; refusing the socket", exc_info=True)
                raise socketio.exceptions.ConnectionRefusedError("unavailable") from None
            if user != claims.user:
                raise socketio.exceptions.ConnectionRefusedError("invalid_token")

        async def send(frame: Frame) -> None:
            await self.manager.send_to(sid, frame)

        try:
            self.hub.attach(sid, claims.client_id, send, hello.last_seq)
        except TooManyConnections:
            raise socketio.exceptions.ConnectionRefusedError("too_many_connections") from None
        await self.sio.enter_room(sid, claims.client_id)
        return True

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self.hub.detach(sid)

    async def _unexpected(self, event: Any, sid: str, *args: Any) -> None:
        # Clients have nothing to say on this socket; a client that talks is misbehaving.
        await self.sio.disconnect(sid)

    async def publish(self, client_id: str, frame: Frame) -> None:
        await self.sio.emit(EVENT, frame, to=client_id)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        wrapped: ASGIApp = socketio.ASGIApp(self.sio, other_asgi_app=app,
                                            socketio_path=self._path)
        return wrapped

    async def aclose(self) -> None:
        await self.manager.cancel_retries()
        await self.sio.shutdown()
