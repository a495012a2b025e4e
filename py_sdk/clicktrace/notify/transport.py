"""What the notifier needs of a socket transport (the Python side of the plugin's
``Transport`` interface): move frames to a client's sockets, add its routes, sit in front of
the app. The hub owns seq, replay and the connection table; a transport only moves frames.
:class:`~clicktrace.notify.socketio_transport.SocketIOTransport` and
:class:`~clicktrace.notify.websocket_transport.WebSocketTransport` implement it.

An app chooses one by an object, as the plugin does (``socketIoTransport()``): a
:class:`TransportFactory` holds the transport's own options and builds it from what the
``Notifier`` owns (:class:`TransportSetup`). The shipped ones are in
:mod:`clicktrace.notify.transports`; this module only says what they are, and holds the cap
both enforce on authenticated sockets per peer address (:class:`PeerCap`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace.notify.delivery import Hub
from clicktrace.notify.frames import Frame
from clicktrace.notify.session import UserOf
from clicktrace.notify.tokens import TokenSigner
from clicktrace.web._limits import PeerOf

__all__ = [
    "MAX_CONNECTIONS_PER_PEER",
    "PeerCap",
    "Transport",
    "TransportFactory",
    "TransportName",
    "TransportSetup",
]

# Authenticated sockets one peer address may hold on a node. A tab holds one; an office or a
# carrier NAT puts many tabs behind one address, hence far above one person's tabs. Sessions
# are cheap to mint (1/s per address, burst 30), so without this one address held 1,424
# sockets (16 per client id) within a minute. Behind a proxy, set ``peer_of``.
MAX_CONNECTIONS_PER_PEER = 256

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
    max_connections_per_peer: int = MAX_CONNECTIONS_PER_PEER
    """Authenticated sockets per ``peer_of`` address on this node (:class:`PeerCap`)."""


class PeerCap:
    """Counts authenticated sockets per peer address and refuses one past ``max_per_peer``
    (the per-client cap is the hub's; this one bounds what minting many client ids buys).
    Not thread-safe: one per transport, on its event loop."""

    def __init__(self, max_per_peer: int = MAX_CONNECTIONS_PER_PEER) -> None:
        if isinstance(max_per_peer, bool) or not isinstance(max_per_peer, int) or max_per_peer < 1:
            raise ValueError("max_connections_per_peer must be a positive int")
        self._max = max_per_peer
        self._peers: dict[Hashable, str] = {}
        self._counts: dict[str, int] = {}

    def admit(self, key: Hashable, peer: str) -> bool:
        """Count socket ``key`` against ``peer``; ``False`` (not counted) at the cap."""
        if key in self._peers:
            return True
        if self._counts.get(peer, 0) >= self._max:
            return False
        self._peers[key] = peer
        self._counts[peer] = self._counts.get(peer, 0) + 1
        return True

    def release(self, key: Hashable) -> None:
        """Socket ``key`` is gone (or was refused after all). Idempotent."""
        peer = self._peers.pop(key, None)
        if peer is None:
            return
        left = self._counts[peer] - 1
        if left:
            self._counts[peer] = left
        else:
            del self._counts[peer]

    def count(self, peer: str) -> int:
        return self._counts.get(peer, 0)


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
