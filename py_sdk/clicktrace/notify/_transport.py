"""How frames reach a tab: the transport objects an app chooses, and what they build.

An app chooses a transport by an object, as the plugin does (``socketIoTransport()`` /
``webSocketTransport()``): :class:`SocketIOTransport` or :class:`WebSocketTransport`, or one of
its own (a :class:`Transport`). The object holds the transport's own options, its fan-out
between nodes included, and the ``Notifier`` builds it once into an :class:`Endpoint` from
what the Notifier owns (:class:`TransportSetup`). The hub owns seq, replay and the connection
table; an endpoint only moves frames (the Python side of the plugin's ``Transport``
interface). Each object imports its endpoint only when built, so choosing the WebSocket never
loads python-socketio (the ``socketio`` extra), and a missing extra fails at ``Notifier(...)``.

A worker process serving no sockets publishes through the same object
(:meth:`SocketIOTransport.publisher`), where the nodes listen.

Also here, for both endpoints: :class:`QuietLog`, warnings about hostile input, rate-limited,
so an attacker cannot fill the disk: one short line per ``interval`` at most, naming what
happened and the peer; the occurrences in between are counted and reported on the next line.
Never a traceback, never the input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace._optional import require
from clicktrace.notify._frames import EVENT, Notification, as_json
from clicktrace.notify._hub import Hub, Limits, publish_frame
from clicktrace.notify._replay import connect_redis
from clicktrace.notify._session import TokenSigner, UserOf

_MAX_PEER = 64


@runtime_checkable
class Endpoint(Protocol):
    """A built transport on one node: moves frames to a client's sockets, adds its routes,
    sits in front of the app."""

    routes: list[BaseRoute]

    async def publish(self, client_id: str, frame: Notification) -> None:
        """Send ``frame`` to every socket of ``client_id`` (in the cluster, if fanned out)."""
        ...

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the transport in front (an ASGI app of its own, or ``app`` as is)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class TransportSetup:
    """What the ``Notifier`` owns and every endpoint on its node shares."""

    hub: Hub
    signer: TokenSigner
    user_of: UserOf | None
    prefix: str
    """Where the Notifier's routes go (``<prefix>/session``; the WebSocket's ``<prefix>/ws``)."""
    limits: Limits


@runtime_checkable
class Transport(Protocol):
    """What ``Notifier(transport=...)`` takes: a transport's options, built once per Notifier."""

    def fans_out(self) -> bool:
        """Whether frames reach other nodes over pub/sub.

        The Notifier then runs the catch-up sweep (pub/sub delivers at most once, see
        :class:`~clicktrace.notify._hub.Hub`) and refuses a per-process replay buffer (seq
        must be shared)."""
        ...

    def build(self, setup: TransportSetup) -> Endpoint:
        """The endpoint, once the Notifier made its hub; a missing extra raises here."""
        ...


class Publisher(Protocol):
    """Write-only: how a worker process hands a frame to the socket nodes."""

    async def publish(self, client_id: str, frame: Notification) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class SocketIOTransport:
    """python-socketio's ``AsyncServer`` in front of the app (the plugin's ``socketIoTransport()``).

    ``cors_allowed_origins``: python-socketio's setting (``None``: same origin only).
    ``redis_url`` or ``amqp_url``: fan frames out between nodes through python-socketio's
    Redis or RabbitMQ manager, on ``channel``. Seq needs a shared replay buffer then
    (``Replay(redis_url=...)``).
    """

    cors_allowed_origins: str | list[str] | None = None
    redis_url: str | None = field(default=None, repr=False)  # URLs may hold a password
    amqp_url: str | None = field(default=None, repr=False)
    channel: str = "clicktrace"

    def __post_init__(self) -> None:
        if self.redis_url and self.amqp_url:
            raise ValueError("give redis_url or amqp_url, not both")

    def fans_out(self) -> bool:
        return bool(self.redis_url or self.amqp_url)

    def build(self, setup: TransportSetup) -> Endpoint:
        require("socketio", "socketio", package="python-socketio")
        from clicktrace.notify._socketio import SocketIOEndpoint

        return SocketIOEndpoint(
            setup.hub,
            setup.signer,
            user_of=setup.user_of,
            redis_url=self.redis_url,
            amqp_url=self.amqp_url,
            channel=self.channel,
            cors_allowed_origins=self.cors_allowed_origins,
            limits=setup.limits,
        )

    def publisher(self) -> Publisher:
        """A write-only python-socketio manager on the nodes' broker, for a worker."""
        socketio = require("socketio", "socketio", package="python-socketio")
        if self.amqp_url:
            require("aio_pika", "rabbitmq")
            manager = socketio.AsyncAioPikaManager(
                self.amqp_url, channel=self.channel, write_only=True
            )
        elif self.redis_url:
            manager = socketio.AsyncRedisManager(
                self.redis_url, channel=self.channel, write_only=True
            )
        else:
            raise ValueError("a worker publishes through redis_url or amqp_url: give one")
        return _ManagerPublisher(manager)


class _ManagerPublisher:
    def __init__(self, manager: Any) -> None:
        self._manager = manager

    async def publish(self, client_id: str, frame: Notification) -> None:
        await self._manager.emit(EVENT, as_json(frame), namespace="/", room=client_id)

    async def aclose(self) -> None:
        # python-socketio managers have no close(); release their connections ourselves.
        manager_redis = getattr(self._manager, "redis", None)
        if manager_redis is not None:
            await manager_redis.aclose()
        publisher = getattr(self._manager, "publisher_connection", None)
        if publisher is not None:
            await publisher.close()


@dataclass(frozen=True, kw_only=True)
class WebSocketTransport:
    """The plain WebSocket route ``<prefix>/ws`` (the plugin's ``webSocketTransport()``).

    ``redis_url``: fan frames out between nodes over Redis pub/sub, on ``<channel>:ws``."""

    redis_url: str | None = field(default=None, repr=False)  # it may hold a password
    channel: str = "clicktrace"

    def fans_out(self) -> bool:
        return bool(self.redis_url)

    def build(self, setup: TransportSetup) -> Endpoint:
        from clicktrace.notify._websocket import WebSocketEndpoint

        return WebSocketEndpoint(
            setup.hub,
            setup.signer,
            user_of=setup.user_of,
            redis_url=self.redis_url,
            channel=self.channel,
            path=setup.prefix + "/ws",
            limits=setup.limits,
        )

    def publisher(self) -> Publisher:
        """A Redis client publishing on the nodes' channel, for a worker."""
        if not self.redis_url:
            raise ValueError("a worker publishes through redis_url: give it")
        return _RedisPublisher(connect_redis(self.redis_url), self.channel + ":ws")


class _RedisPublisher:
    def __init__(self, client: Any, channel: str) -> None:
        self._redis = client
        self._channel = channel

    async def publish(self, client_id: str, frame: Notification) -> None:
        await publish_frame(self._redis, self._channel, client_id, frame)

    async def aclose(self) -> None:
        await self._redis.aclose()


class QuietLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._quiet_until: float | None = None
        self._suppressed = 0

    def warn(self, what: str, peer: str) -> None:
        """``what`` is the SDK's own text; ``peer`` is escaped and cut."""
        now = self._clock()
        if self._quiet_until is not None and now < self._quiet_until:
            self._suppressed += 1
            return
        more = f"; {self._suppressed} more since the last line" if self._suppressed else ""
        self._logger.warning("clicktrace: %s from %s%s", what, ascii(peer[:_MAX_PEER]), more)
        self._suppressed = 0
        self._quiet_until = now + self._interval
