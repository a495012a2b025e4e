"""Plain WebSocket: the route ``/clicktrace/ws``, one JSON text frame per notification.

The client's first frame is the hello ``{"token", "last_seq", "epoch"}``. Anything else
closes the connection with a reason: no hello in time (1008 ``hello_timeout``), a binary
frame (1003 ``expected_text``), an oversized one (1009 ``frame_too_large``), bad JSON or
fields (1008 ``invalid_hello``), a bad token (1008 ``invalid_token``), a later frame that is
not a watch (1008 ``unexpected_frame``; a watch is ``{"watch": topic, "seq"?, "epoch"?}`` or
``{"unwatch": topic}``), a client too slow to drain its queue (1008 ``too_slow``; it reconnects
and resumes), more sockets for one client or more authenticated ones from one peer address
than the caps (1008 ``too_many_connections``; see :class:`PeerCap`), more sockets awaiting
their hello from one peer address than the cap (1008 ``too_many_pending``, see
:class:`PeerCap`), a replay the buffer cannot serve (1011 ``unavailable``). Each connection
writes from its own queue, so a slow socket never stalls the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket, WebSocketDisconnect

from clicktrace.notify._frames import (
    MAX_HELLO_BYTES,
    Frame,
    Hello,
    Notification,
    encode,
    parse_hello_text,
    parse_watch_text,
)
from clicktrace.notify._hub import Hub, Limits, PeerCap, RedisFanout, TooManyConnections
from clicktrace.notify._session import Claims, TokenSigner, UserOf, resolve_user
from clicktrace.notify._transport import QuietLog
from clicktrace.protocol import (
    FRAME_TOO_LARGE,
    HELLO_TIMEOUT,
    INVALID_HELLO,
    INVALID_TOKEN,
    TOO_MANY_CONNECTIONS,
    TOO_SLOW,
    UNAVAILABLE,
    WEBSOCKET_PATH,
)

MAX_QUEUED_FRAMES = 1024
_log = logging.getLogger("clicktrace.notify")


class _Rejected(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class WebSocketEndpoint:
    """The WebSocket endpoint on one node (built by :class:`WebSocketTransport`)."""

    def __init__(
        self,
        hub: Hub,
        signer: TokenSigner,
        *,
        user_of: UserOf | None = None,
        redis_url: str | None = None,
        channel: str = "clicktrace",
        path: str = WEBSOCKET_PATH,
        limits: Limits | None = None,
    ) -> None:
        limits = Limits() if limits is None else limits
        self.hub = hub
        self._connected = PeerCap(limits.max_connections_per_peer)
        # The deadline is _hello's wait_for.
        self._pending = PeerCap(limits.max_pending_per_peer)
        self._peer_of = limits.peer_of
        self._quiet = QuietLog(_log)
        self._signer = signer
        self._user_of = user_of
        self._hello_timeout = limits.hello_timeout_seconds
        self._fanout = (
            RedisFanout(redis_url, channel + ":ws", hub.route, hub.refresh_all)
            if redis_url
            else None
        )
        self.routes: list[BaseRoute] = [WebSocketRoute(path, self._endpoint)]

    async def publish(self, client_id: str, frame: Notification) -> None:
        if self._fanout is None:
            await self.hub.route(client_id, frame)
        else:
            await self._fanout.publish(client_id, frame)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return app

    async def aclose(self) -> None:
        if self._fanout is not None:
            await self._fanout.aclose()

    async def _hello(self, ws: WebSocket) -> tuple[Hello, Claims]:
        try:
            message = await asyncio.wait_for(ws.receive(), self._hello_timeout)
        except TimeoutError:
            raise _Rejected(1008, HELLO_TIMEOUT) from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            raise _Rejected(1003, "expected_text")
        if len(text) > MAX_HELLO_BYTES or len(text.encode("utf-8")) > MAX_HELLO_BYTES:
            raise _Rejected(1009, FRAME_TOO_LARGE)
        hello = parse_hello_text(text)
        if hello is None:
            raise _Rejected(1008, INVALID_HELLO)
        claims = self._signer.claims(hello.token)
        if claims is None:
            raise _Rejected(1008, INVALID_TOKEN)
        if claims.user is not None:
            try:
                user = await resolve_user(self._user_of, ws)
            except Exception:
                _log.warning("clicktrace: user_of failed; refusing the socket", exc_info=True)
                raise _Rejected(1011, UNAVAILABLE) from None
            if user != claims.user:
                raise _Rejected(1008, INVALID_TOKEN)
        return hello, claims

    async def _endpoint(self, ws: WebSocket) -> None:
        await ws.accept()
        queue: asyncio.Queue[Frame] = asyncio.Queue(MAX_QUEUED_FRAMES)
        overflow = asyncio.Event()
        writer: asyncio.Task[None] | None = None
        peer = self._peer_of(ws.scope)
        try:
            if not self._pending.admit(ws, peer):
                self._quiet.warn("too many WebSocket connections awaiting their hello", peer)
                raise _Rejected(1008, "too_many_pending")
            try:
                hello, claims = await self._hello(ws)
            finally:
                self._pending.release(ws)
            if self._fanout is not None:
                await self._fanout.start()

            async def send(frame: Frame) -> None:
                try:
                    queue.put_nowait(frame)
                except asyncio.QueueFull:
                    overflow.set()  # closed below; the client resumes from the buffer

            if not self._connected.admit(ws, peer):
                self._quiet.warn("too many authenticated WebSocket connections; refused", peer)
                raise _Rejected(1008, TOO_MANY_CONNECTIONS)
            try:
                delivery = self.hub.attach(
                    ws, claims.client_id, send, hello.last_seq, hello.epoch, user=claims.user
                )
            except TooManyConnections:
                raise _Rejected(1008, TOO_MANY_CONNECTIONS) from None
            writer = asyncio.create_task(self._write(ws, queue))
            try:
                await delivery.resume()
            except Exception:
                _log.warning("clicktrace: replay failed; closing the socket", exc_info=True)
                raise _Rejected(1011, UNAVAILABLE) from None
            await self._read_until_closed(ws, writer, overflow)
        except _Rejected as exc:
            await _close(ws, exc.code, exc.reason)
        except WebSocketDisconnect:
            pass
        finally:
            self.hub.detach(ws)
            self._connected.release(ws)
            if writer is not None:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _read_until_closed(
        self, ws: WebSocket, writer: asyncio.Task[None], overflow: asyncio.Event
    ) -> None:
        overflowed = asyncio.ensure_future(overflow.wait())
        try:
            while True:
                receive = asyncio.ensure_future(ws.receive())
                try:
                    done, _ = await asyncio.wait(
                        {receive, writer, overflowed}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    if not receive.done():
                        receive.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await receive
                if overflowed in done:
                    raise _Rejected(1008, TOO_SLOW)
                if receive not in done or receive.result()["type"] == "websocket.disconnect":
                    return  # the writer only ends when sending failed: the peer is gone
                watch = parse_watch_text(receive.result().get("text"))
                if watch is None:
                    raise _Rejected(1008, "unexpected_frame")
                if watch.watch:
                    await self.hub.watch(ws, watch.topic, watch.last_seq, watch.epoch)
                else:
                    self.hub.unwatch(ws, watch.topic)
        finally:
            if not overflowed.done():
                overflowed.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await overflowed

    async def _write(self, ws: WebSocket, queue: asyncio.Queue[Frame]) -> None:
        while True:  # until cancelled, or sending fails because the peer is gone
            frame = await queue.get()
            await ws.send_text(encode(frame).decode("utf-8"))


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # the peer may already be gone
        await ws.close(code, reason)
