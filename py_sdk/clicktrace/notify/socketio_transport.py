"""Socket.IO transport: python-socketio's ``AsyncServer`` mounted in front of the app.

A socket connects with ``auth: {"token", "last_seq", "epoch"}``; without a valid token the
connection is refused (``connect_error`` with message ``invalid_token``). Notifications are
emitted to the room named by the client id, so python-socketio's managers (in memory, Redis,
AMQP) carry them to every node; on each node the manager hands them to the :class:`Hub`,
which delivers them to each socket exactly once and in order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import socketio
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace.notify.delivery import Hub, TooManyConnections
from clicktrace.notify.frames import EVENT, MAX_HELLO_BYTES, Frame, parse_hello
from clicktrace.notify.session import UserOf, resolve_user
from clicktrace.notify.socketio_managers import gated_manager
from clicktrace.notify.tokens import TokenSigner

__all__ = ["SocketIOTransport"]

_log = logging.getLogger("clicktrace.notify")


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
            self.hub.attach(sid, claims.client_id, send, hello.last_seq, hello.epoch)
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
