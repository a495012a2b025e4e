"""What the notifier needs of a socket transport (the Python side of the plugin's
``Transport`` interface): move frames to a client's sockets, add its routes, sit in front of
the app. The hub owns seq, replay and the connection table; a transport only moves frames.
:class:`~clicktrace.notify.socketio_transport.SocketIOTransport` and
:class:`~clicktrace.notify.websocket_transport.WebSocketTransport` implement it.

An app chooses one by an object, as the plugin does (``socketIoTransport()``): a
:class:`TransportFactory` holds the transport's own options and builds it from what the
``Notifier`` owns (:class:`TransportSetup`). The shipped ones are in
:mod:`clicktrace.notify.transports`; this module only says what they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace.asgi.peer import PeerOf
from clicktrace.notify.delivery import Hub
from clicktrace.notify.frames import Frame
from clicktrace.notify.session import UserOf
from clicktrace.notify.tokens import TokenSigner

__all__ = ["Transport", "TransportFactory", "TransportName", "TransportSetup"]

TransportName = Literal["socketio", "websocket"]
"""The shorthand strings ``Notifier(transport=...)`` also takes for the shipped factories."""


@runtime_checkable
class Transport(Protocol):
    routes: list[BaseRoute]

    async def publish(self, client_id: str, frame: Frame) -> None:
        """Send ``frame`` to every socket of ``client_id`` (in the cluster, if fanned out)."""
        ...

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the transport in front (an ASGI app of its own, or ``app`` as is)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class TransportSetup:
    """What the ``Notifier`` owns and every transport on its node shares."""

    hub: Hub
    signer: TokenSigner
    user_of: UserOf | None
    redis_url: str | None
    """The Notifier's: the nodes' Redis, for fan-out (the replay buffer already uses it)."""
    channel: str
    prefix: str
    """Where the Notifier's routes go (``<prefix>/session``; the WebSocket's ``<prefix>/ws``)."""
    hello_timeout: float
    max_pending_per_peer: int
    peer_of: PeerOf


@runtime_checkable
class TransportFactory(Protocol):
    """What ``Notifier(transport=...)`` takes: a transport's options, built once per Notifier."""

    def fans_out(self, redis_url: str | None) -> bool:
        """Whether, given the Notifier's ``redis_url``, frames reach other nodes over pub/sub.

        The Notifier then runs the catch-up sweep (pub/sub delivers at most once, see
        :class:`Hub`) and refuses a per-process replay buffer (seq must be shared)."""
        ...

    def build(self, setup: TransportSetup) -> Transport:
        """The transport, once the Notifier made its hub; a missing extra raises here."""
        ...
