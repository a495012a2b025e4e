"""What a client sends to Engine.IO, checked before python-engineio parses it.

python-engineio logs a traceback for every payload it cannot decode (and on the WebSocket lets
the exception escape to the server, which logs another), never answers a polling POST over its
buffer size (its disconnect waits on a queue nobody drains, which also keeps SIGTERM from
stopping the server), and hangs the same way on a packet type a client may not send. This
layer, in front of python-socketio's ``ASGIApp`` on the Engine.IO path only:

- reads a polling POST up to ``max_bytes`` (413 past it) and hands python-engineio the body with
  its exact ``content-length``;
- accepts only packets that python-engineio's own parser decodes, of the types a client sends
  (polling: close, pong, message, upgrade; WebSocket also ping, for the upgrade probe), as
  text; anything else is answered 400 (polling) or closed ``1008 malformed_frame`` /
  ``1009 frame_too_large`` (WebSocket), the session is closed, and ``quiet`` gets one line;
- stamps ``x-correlation-id`` (the bound one, else the request's valid one, else a fresh
  one: :func:`clicktrace.web._errors.request_correlation_id`) on every HTTP
  response and WebSocket accept. There is no ``traceresponse``: the transport's requests are
  not traced (a poll every 25 s per tab would be a trace each), so there is no span to name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from engineio import packet as eio_packet
from engineio.payload import Payload
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clicktrace.notify.quiet_log import QuietLog
from clicktrace.protocol import (
    FRAME_TOO_LARGE,
    INVALID_PAYLOAD,
    MALFORMED_FRAME,
    PAYLOAD_TOO_LARGE,
)
from clicktrace.web._body import CLIENT_CLOSED, read_body
from clicktrace.web._errors import (
    Refusal,
    correlation_header,
    error_body,
    request_correlation_id,
)
from clicktrace.web._limits import PeerOf

__all__ = ["EngineIOGuard", "packet_ok", "payload_ok"]

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
