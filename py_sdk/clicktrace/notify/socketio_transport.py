"""Socket.IO transport: python-socketio's ``AsyncServer`` mounted in front of the app.

A socket connects with ``auth: {"token", "last_seq", "epoch"}``; without a valid token the
connection is refused (``connect_error`` with message ``invalid_token``). Notifications are
emitted to the room named by the client id, so python-socketio's managers (in memory, Redis,
AMQP) carry them to every node; on each node the manager hands them to the :class:`Hub`,
which delivers them to each socket exactly once and in order.

Hostile input: :class:`EngineIOGuard` checks what reaches python-engineio; the Engine.IO
handlers are wrapped so that a Socket.IO packet python-socketio cannot decode closes the
session with one rate-limited warning (instead of a traceback each), and an Engine.IO session
counts against its peer address (:class:`Pending`) until it connects to ``/`` with a valid
token, which it must do within ``hello_timeout`` seconds; from then on it counts against its
peer address in :class:`PeerCap` (``too_many_connections`` past ``max_connections_per_peer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

import socketio
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace.notify.delivery import Hub, TooManyConnections
from clicktrace.notify.engineio_guard import EngineIOGuard
from clicktrace.notify.frames import EVENT, MAX_HELLO_BYTES, Frame, parse_hello
from clicktrace.notify.pending import HELLO_TIMEOUT_SECONDS, MAX_PENDING_PER_PEER, Pending
from clicktrace.notify.quiet_log import QuietLog
from clicktrace.notify.session import UserOf, resolve_user
from clicktrace.notify.socketio_managers import gated_manager
from clicktrace.notify.tokens import TokenSigner
from clicktrace.notify.transport import MAX_CONNECTIONS_PER_PEER, PeerCap
from clicktrace.protocol import INVALID_TOKEN, UNAVAILABLE
from clicktrace.web._limits import PeerOf, peer_address

__all__ = ["SocketIOTransport"]

_log = logging.getLogger("clicktrace.notify")
_Handler = Callable[..., Awaitable[Any]]


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
        hello_timeout: float = HELLO_TIMEOUT_SECONDS,
        max_pending_per_peer: int = MAX_PENDING_PER_PEER,
        peer_of: PeerOf = peer_address,
        max_connections_per_peer: int = MAX_CONNECTIONS_PER_PEER,
    ) -> None:
        self.hub = hub
        self._connected = PeerCap(max_connections_per_peer)
        self._signer = signer
        self._user_of = user_of
        self._path = socketio_path
        self._peer_of = peer_of
        # Frames fan out over one broker: AMQP when given, the Redis URL then serving only the
        # replay buffer (python-socketio's managers take one or the other).
        fan_out = {"amqp_url": amqp_url} if amqp_url else {"redis_url": redis_url}
        self.manager = gated_manager(**fan_out, channel=channel)
        self.manager.hub = hub
        # Clients only ever send the connect packet: anything large is hostile.
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
        self.sio.on("*", self._unexpected)
        eio = self.sio.eio
        self._eio: dict[str, _Handler] = dict(eio.handlers)  # python-socketio's own
        eio.on("connect", self._eio_connect)
        eio.on("message", self._eio_message)
        eio.on("disconnect", self._eio_disconnect)
        self._quiet = QuietLog(_log)
        self._pending = Pending(
            max_pending_per_peer, timeout=hello_timeout, on_expire=self._expired
        )
        self._peers: dict[str, str] = {}
        self._drops: set[asyncio.Task[None]] = set()
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
        self._pending.settle(eio_sid)
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
            raise socketio.exceptions.ConnectionRefusedError("too_many_connections")
        try:
            self.hub.attach(sid, claims.client_id, send, hello.last_seq, hello.epoch)
        except TooManyConnections:
            self._connected.release(sid)
            raise socketio.exceptions.ConnectionRefusedError("too_many_connections") from None
        self._pending.settle(self.manager.eio_sid_from_sid(sid, "/"))
        await self.sio.enter_room(sid, claims.client_id)
        return True

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self.hub.detach(sid)
        self._connected.release(sid)
        # A session that left "/" holds no client: close it rather than let it idle unbounded.
        self._drop_later(self.manager.eio_sid_from_sid(sid, "/"))

    async def _unexpected(self, event: Any, sid: str, *args: Any) -> None:
        # Clients have nothing to say on this socket; a client that talks is misbehaving.
        await self.sio.disconnect(sid)

    async def publish(self, client_id: str, frame: Frame) -> None:
        await self.sio.emit(EVENT, frame, to=client_id)

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
