"""What the notifier needs of a socket transport (the Python side of the plugin's
``Transport`` interface): move frames to a client's sockets, add its routes, sit in front of
the app. The hub owns seq, replay and the connection table; a transport only moves frames.
:class:`~clicktrace.notify.socketio_transport.SocketIOTransport` and
:class:`~clicktrace.notify.websocket_transport.WebSocketTransport` implement it."""

from __future__ import annotations

from typing import Literal, Protocol

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace.notify.frames import Frame

__all__ = ["Transport", "TransportName"]

TransportName = Literal["socketio", "websocket"]


class Transport(Protocol):
    routes: list[BaseRoute]

    async def publish(self, client_id: str, frame: Frame) -> None:
        """Send ``frame`` to every socket of ``client_id`` (in the cluster, if fanned out)."""
        ...

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the transport in front (an ASGI app of its own, or ``app`` as is)."""
        ...

    async def aclose(self) -> None: ...
