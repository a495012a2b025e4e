"""The app-side entry point: session route, socket transport, replay buffer and ``notify``.

.. code-block:: python

    signer = TokenSigner(secret=None, ttl_seconds=86400)
    notifier = Notifier(signer, transport=transports.socketio())  # or transports.websocket()
    app = Starlette(routes=[*notifier.routes, ...])
    asgi = notifier.asgi(app)
    await notifier.notify(client_id, correlation_id=..., status="confirmed", data={...})
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import TracerProvider
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace.notify.delivery import MAX_CONNECTIONS_PER_CLIENT, Hub
from clicktrace.notify.pending import HELLO_TIMEOUT_SECONDS, MAX_PENDING_PER_PEER
from clicktrace.notify.producer import Producer
from clicktrace.notify.replay import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_TTL_SECONDS,
    MemoryReplayBuffer,
    ReplayBuffer,
)
from clicktrace.notify.session import DEFAULT_SESSION_RATE, UserOf, session_route
from clicktrace.notify.tokens import TokenSigner
from clicktrace.notify.transport import (
    MAX_CONNECTIONS_PER_PEER,
    Transport,
    TransportFactory,
    TransportName,
    TransportSetup,
)
from clicktrace.notify.transports import by_name
from clicktrace.web._limits import PeerOf, RateLimit, peer_address

__all__ = ["Notifier"]

DEFAULT_SWEEP_SECONDS = 15.0


class Notifier:
    """Routes notifications to the browser tab that caused them.

    ``transport`` is a :class:`TransportFactory`: ``transports.socketio(...)`` (the default),
    ``transports.websocket()`` or the app's own; the strings ``"socketio"`` / ``"websocket"``
    are shorthand for the first two, and only with them do ``cors_allowed_origins`` and
    ``amqp_url`` (Socket.IO) go to the Notifier rather than to the factory.

    ``redis_url`` (or ``amqp_url``, Socket.IO only) joins the nodes of a cluster: frames fan
    out through it and the replay buffer lives in Redis. ``user_of`` returns the app's
    authenticated user for a request; tokens are then bound to that user. With pub/sub
    fan-out, each socket also catches up from the buffer every ``sweep_seconds``, since
    pub/sub may drop a live frame (see :class:`Hub`). ``session_rate`` limits
    ``POST <prefix>/session`` per ``peer_of(scope)`` (see :mod:`clicktrace.web._limits`).
    """

    def __init__(
        self,
        signer: TokenSigner,
        transport: TransportFactory | TransportName = "socketio",
        *,
        tracer_provider: TracerProvider | None = None,
        redis_url: str | None = None,
        amqp_url: str | None = None,
        buffer: ReplayBuffer | None = None,
        user_of: UserOf | None = None,
        replay_max_frames: int = DEFAULT_MAX_FRAMES,
        replay_ttl_seconds: float = DEFAULT_TTL_SECONDS,
        channel: str = "clicktrace",
        cors_allowed_origins: str | list[str] | None = None,
        prefix: str = "/clicktrace",
        hello_timeout_seconds: float = HELLO_TIMEOUT_SECONDS,
        sweep_seconds: float | None = DEFAULT_SWEEP_SECONDS,
        max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
        session_rate: RateLimit | None = DEFAULT_SESSION_RATE,
        peer_of: PeerOf = peer_address,
        max_pending_per_peer: int = MAX_PENDING_PER_PEER,
        max_connections_per_peer: int = MAX_CONNECTIONS_PER_PEER,
    ) -> None:
        if not isinstance(signer, TokenSigner):
            raise TypeError("signer must be a TokenSigner")
        factory = _factory(transport, cors_allowed_origins, amqp_url)
        clustered = factory.fans_out(redis_url)
        if clustered and not redis_url and buffer is None:
            # seq must be shared by every node, so the buffer cannot be per-process.
            raise ValueError(
                f"{factory!r} fans out between nodes: give redis_url or a shared buffer for replay"
            )
        if buffer is None:
            buffer = _default_buffer(
                redis_url, replay_max_frames, replay_ttl_seconds, signer.ttl_seconds, channel
            )
        self.signer = signer
        # One node delivers in-process; only pub/sub fan-out can lose a live frame.
        self.hub = Hub(
            buffer,
            sweep_seconds=sweep_seconds if clustered else None,
            max_per_client=max_connections_per_client,
        )
        setup = TransportSetup(
            hub=self.hub,
            signer=signer,
            user_of=user_of,
            redis_url=redis_url,
            channel=channel,
            prefix=prefix,
            hello_timeout=hello_timeout_seconds,
            max_pending_per_peer=max_pending_per_peer,
            peer_of=peer_of,
            max_connections_per_peer=max_connections_per_peer,
        )
        self._transport = factory.build(setup)
        if not isinstance(self._transport, Transport):
            raise TypeError(f"{factory!r}.build() returned {self._transport!r}, not a Transport")
        self._producer = Producer(buffer, self._transport.publish, tracer_provider=tracer_provider)
        # ``await notifier.notify(client_id, correlation_id=..., status=...)`` sends to the
        # client's sockets and returns the seq (see Producer.notify; RedisEmitter does the same).
        self.notify = self._producer.notify
        self.routes: list[BaseRoute] = [
            session_route(
                signer,
                user_of=user_of,
                path=prefix + "/session",
                rate=session_rate,
                peer_of=peer_of,
            ),
            *self._transport.routes,
        ]

    @property
    def sio(self) -> Any:
        """The python-socketio ``AsyncServer`` (Socket.IO transport), else ``None``."""
        return getattr(self._transport, "sio", None)

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the socket transport in front (python-socketio's ``ASGIApp``)."""
        return self._transport.wrap(app)

    async def aclose(self) -> None:
        await self.hub.aclose()
        await self._transport.aclose()
        await self.hub.buffer.aclose()


def _factory(
    transport: object, cors_allowed_origins: str | list[str] | None, amqp_url: str | None
) -> TransportFactory:
    """``transport`` as a factory: a shorthand string resolves through the table in
    :mod:`~clicktrace.notify.transports`, with the Notifier's own Socket.IO keywords."""
    if isinstance(transport, str):
        return by_name(transport, cors_allowed_origins=cors_allowed_origins, amqp_url=amqp_url)
    # A class has its methods as attributes, so the Protocol alone would let one through.
    if isinstance(transport, type) or not isinstance(transport, TransportFactory):
        raise TypeError(
            "transport must be a TransportFactory such as transports.socketio() or "
            f"transports.websocket() (called), or 'socketio' / 'websocket'; not {transport!r}"
        )
    if cors_allowed_origins is not None or amqp_url is not None:
        raise ValueError(
            "with a transport object, give cors_allowed_origins and amqp_url to it: "
            "transports.socketio(cors_allowed_origins=..., amqp_url=...)"
        )
    return transport


def _default_buffer(
    redis_url: str | None, max_frames: int, ttl: float, seq_ttl: float, channel: str
) -> ReplayBuffer:
    if redis_url:
        from clicktrace.notify.replay_redis import RedisReplayBuffer

        return RedisReplayBuffer(
            redis_url,
            max_frames=max_frames,
            ttl_seconds=ttl,
            seq_ttl_seconds=max(seq_ttl, ttl),
            prefix=channel,
        )
    return MemoryReplayBuffer(max_frames, ttl, seq_ttl_seconds=max(seq_ttl, ttl))
