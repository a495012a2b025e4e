"""Making a notification, on a socket node (:class:`Notifier`) or in a worker process
(:class:`RedisEmitter`), the same way: the frame, its PRODUCER span, its ``seq``, then
publishing it (:class:`Producer`). ``notify`` sends an outcome to the tab that caused it;
``publish`` sends a change on a topic to every tab watching it (live updates).

.. code-block:: python

    signer = TokenSigner(secret=None, ttl_seconds=86400)
    notifier = Notifier(signer, WebSocketTransport(), replay=Replay(), limits=Limits())
    app = Starlette(routes=[*notifier.routes, ...])
    asgi = notifier.asgi(app)
    await notifier.notify(client_id, correlation_id=..., status="confirmed", data={...})

Worker processes (projection workers, consumers) serve no sockets: a :class:`RedisEmitter`
makes the notification exactly as the Notifier does (span, seq in the shared buffer) and
publishes it where the socket nodes listen, through the same transport object: python-socketio's
Redis or RabbitMQ channel for Socket.IO, the clicktrace Redis channel for the WebSocket.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode, TracerProvider
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from clicktrace import context as click_context
from clicktrace.ids import new_id, parse_id
from clicktrace.journal._record import record
from clicktrace.notify._frames import (
    EVENT,
    Notification,
    Update,
    build_frame,
    check_version,
    encode,
    topic_key,
    topic_ok,
)
from clicktrace.notify._hub import Hub, Limits, MayWatch
from clicktrace.notify._replay import DEFAULT_SEQ_TTL_SECONDS, Replay, ReplayBuffer
from clicktrace.notify._session import TokenSigner, UserOf, session_route
from clicktrace.notify._transport import (
    Endpoint,
    SocketIOTransport,
    Transport,
    TransportSetup,
    WebSocketTransport,
)
from clicktrace.propagation import METADATA_KEYS, inject
from clicktrace.spans import get_tracer

PublishFrame = Callable[[str, Notification], Awaitable[None]]


class Notify(Protocol):
    """What sends an outcome to the tab that caused it: ``Notifier.notify`` in the app,
    ``RedisEmitter.notify`` in a worker process. Type a projection's dependency with it."""

    async def __call__(
        self,
        client_id: str,
        *,
        correlation_id: str,
        status: str,
        type: str | None = None,
        data: Any = None,
        error: dict[str, str] | None = None,
        version: int | None = None,
        key: str | None = None,
    ) -> int: ...


class PublishUpdate(Protocol):
    """What sends a change to every tab watching a topic: ``Notifier.publish`` in the app,
    ``RedisEmitter.publish`` in a worker process."""

    async def __call__(
        self,
        topic: str,
        data: Any = None,
        *,
        version: int | None = None,
        key: str | None = None,
        correlation_id: str | None = None,
    ) -> int: ...


class Producer:
    def __init__(
        self,
        buffer: ReplayBuffer,
        publish: PublishFrame,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.buffer = buffer
        self._publish = publish
        self._tracer = get_tracer("clicktrace.notify", tracer_provider=tracer_provider)

    async def notify(
        self,
        client_id: str,
        *,
        correlation_id: str,
        status: str,
        type: str | None = None,
        data: Any = None,
        error: dict[str, str] | None = None,
        version: int | None = None,
        key: str | None = None,
    ) -> int:
        """Send a notification to every socket of ``client_id``; returns its ``seq``.

        Opens a PRODUCER span (child of the current context) whose traceparent travels in the
        frame, so the browser continues the same trace. ``version`` (with the ``key`` it
        belongs to; the tab defaults it to the command's ``entity``) keeps the tab from
        writing this outcome's data over a newer update of the same key.
        """
        cid = parse_id(client_id) if isinstance(client_id, str) else None
        if cid is None:
            raise ValueError("client_id must be a ULID")
        frame = build_frame(
            correlation_id=correlation_id,
            status=status,
            type=type,
            data=data,
            error=error,
            version=version,
            key=key,
        )
        try:
            encode(frame)  # fail here, loudly, rather than on every socket later
        except (TypeError, msgspec.EncodeError) as exc:
            raise TypeError(f"notification data is not JSON-serialisable: {exc}") from None
        code = frame.error.code if status == "rejected" and frame.error is not None else None
        attributes = {
            "messaging.system": "clicktrace",
            "messaging.operation.type": "send",
            "messaging.destination.name": EVENT,
            "clicktrace.correlation_id": frame.correlation_id,
            "clicktrace.client_id": cid,
            "clicktrace.status": status,
        }
        if type is not None:
            attributes["clicktrace.type"] = type
        if status != "progress":
            # The span that sends the outcome is the server span that knows it.
            attributes["clicktrace.outcome"] = status
            if code is not None:
                # The code as the frame carries it (required, checked and cut by build_frame).
                attributes["error.type"] = code
        # Not made current: nothing runs inside it but our own calls, and attaching the
        # context costs more than the rest of the span.
        span = self._tracer.start_span(
            f"send {EVENT}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        if code is not None:
            span.set_status(StatusCode.ERROR, code)
        try:
            carrier: dict[str, str] = {}
            inject(carrier, keys=METADATA_KEYS, otel=trace.set_span_in_context(span))
            if "traceparent" in carrier:
                frame = msgspec.structs.replace(frame, traceparent=carrier["traceparent"])
            stamped = await self.buffer.append(cid, frame)
            seq = stamped.seq or 0  # the buffer always numbers it
            span.set_attributes({"clicktrace.seq": seq, "messaging.message.id": f"{cid}:{seq}"})
            sent_at = time.time() * 1000.0  # before the publish: a tab may receive it first
            await self._publish(cid, stamped)
            record(
                "notified",
                correlation_id=frame.correlation_id,
                client_id=cid,
                outcome=status,
                detail=f"seq {seq}",
                at=sent_at,
                # The flag the frame carries, whatever span is current where notify() ran.
                sampled=span.get_span_context().trace_flags.sampled,
                code=code,
            )
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, exc.__class__.__name__)
            raise
        finally:
            span.end()
        return seq

    async def publish(
        self,
        topic: str,
        data: Any = None,
        *,
        version: int | None = None,
        key: str | None = None,
        correlation_id: str | None = None,
    ) -> int:
        """Send a change on ``topic`` to every socket watching it; returns its ``seq`` in the
        topic's numbering.

        ``version`` orders changes to ``key`` (default: the topic as a whole): a tab never
        applies one older than what it has. ``correlation_id`` defaults to the current
        click's (a projection handling a command), else a fresh one. Opens a PRODUCER span
        whose traceparent travels in the frame.
        """
        if not topic_ok(topic):
            raise ValueError("topic must be printable ASCII without spaces, at most 128 chars")
        check_version(version, key)
        if correlation_id is None:
            click = click_context.current()
            correlation_id = click.correlation_id if click is not None else new_id()
        corr = parse_id(correlation_id) if isinstance(correlation_id, str) else None
        if corr is None:
            raise ValueError("correlation_id must be a ULID")
        frame: Notification = Update(
            topic=topic, correlation_id=corr, data=data, version=version, key=key
        )
        try:
            encode(frame)
        except (TypeError, msgspec.EncodeError) as exc:
            raise TypeError(f"update data is not JSON-serialisable: {exc}") from None
        attributes: dict[str, Any] = {
            "messaging.system": "clicktrace",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "clicktrace.correlation_id": corr,
            "clicktrace.topic": topic,
        }
        if version is not None:
            attributes["clicktrace.version"] = version
        span = self._tracer.start_span(
            f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        try:
            carrier: dict[str, str] = {}
            inject(carrier, keys=METADATA_KEYS, otel=trace.set_span_in_context(span))
            if "traceparent" in carrier:
                frame = msgspec.structs.replace(frame, traceparent=carrier["traceparent"])
            where = topic_key(topic)
            stamped = await self.buffer.append(where, frame)
            seq = stamped.seq or 0
            span.set_attributes({"clicktrace.seq": seq, "messaging.message.id": f"{where}:{seq}"})
            await self._publish(where, stamped)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, exc.__class__.__name__)
            raise
        finally:
            span.end()
        return seq


class Notifier:
    """Routes notifications to the browser tab that caused them.

    ``transport``: :class:`SocketIOTransport` (the default) or :class:`WebSocketTransport`,
    with their own options (fan-out between nodes included), or the app's own
    :class:`Transport`. ``replay``: how outcomes are numbered and kept (:class:`Replay`; a
    transport that fans out needs a shared one). ``limits``: what an address or a client may
    cost this node (:class:`Limits`). ``user_of`` returns the app's authenticated user for a
    request; tokens are then bound to that user. The routes go under ``prefix``.

    ``may_watch(client_id, topic, user)`` (sync or async; ``user``: the one the tab's token is
    bound to by ``user_of``, else ``None``) decides which topics a tab may watch for live
    updates (:meth:`publish`); without it every topic is public: any tab holding a token may
    watch any topic, so publish only what every visitor may see, or give the hook.
    """

    def __init__(
        self,
        signer: TokenSigner,
        transport: Transport | None = None,
        *,
        replay: Replay | None = None,
        limits: Limits | None = None,
        user_of: UserOf | None = None,
        prefix: str = "/clicktrace",
        tracer_provider: TracerProvider | None = None,
        may_watch: MayWatch | None = None,
    ) -> None:
        if not isinstance(signer, TokenSigner):
            raise TypeError("signer must be a TokenSigner")
        transport = SocketIOTransport() if transport is None else transport
        # A class has its methods as attributes, so the Protocol alone would let one through.
        if isinstance(transport, type) or not isinstance(transport, Transport):
            raise TypeError(
                "transport must be a Transport such as SocketIOTransport() or "
                f"WebSocketTransport(); not {transport!r}"
            )
        replay = Replay() if replay is None else replay
        limits = Limits() if limits is None else limits
        if not isinstance(replay, Replay):
            raise TypeError(f"replay must be a Replay; not {replay!r}")
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits; not {limits!r}")
        clustered = transport.fans_out()
        if clustered and not replay.shared:
            # seq must be shared by every node, so the buffer cannot be per-process.
            raise ValueError(
                f"{transport!r} fans out between nodes: give Replay(redis_url=...) or a shared "
                "buffer for replay"
            )
        buffer = replay.make(signer.ttl_seconds)
        self.signer = signer
        # One node delivers in-process; only pub/sub fan-out can lose a live frame.
        self.hub = Hub(
            buffer,
            sweep_seconds=replay.sweep_seconds if clustered else None,
            max_per_client=limits.max_connections_per_client,
            may_watch=may_watch,
            max_topics=limits.max_topics_per_socket,
        )
        setup = TransportSetup(
            hub=self.hub, signer=signer, user_of=user_of, prefix=prefix, limits=limits
        )
        self._endpoint = transport.build(setup)
        if not isinstance(self._endpoint, Endpoint):
            raise TypeError(f"{transport!r}.build() returned {self._endpoint!r}, not an Endpoint")
        self._producer = Producer(buffer, self._endpoint.publish, tracer_provider=tracer_provider)
        # ``await notifier.notify(client_id, correlation_id=..., status=...)`` sends to the
        # client's sockets and returns the seq (see Producer.notify; RedisEmitter does the same).
        self.notify = self._producer.notify
        # ``await notifier.publish(topic, data, version=...)`` sends a change to every tab
        # watching ``topic`` and returns its seq there (see Producer.publish).
        self.publish = self._producer.publish
        self.routes: list[BaseRoute] = [
            session_route(
                signer,
                user_of=user_of,
                path=prefix + "/session",
                rate=limits.session_rate,
                peer_of=limits.peer_of,
            ),
            *self._endpoint.routes,
        ]

    @property
    def sio(self) -> Any:
        """The python-socketio ``AsyncServer`` (Socket.IO transport), else ``None``."""
        return getattr(self._endpoint, "sio", None)

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the socket transport in front (python-socketio's ``ASGIApp``)."""
        return self._endpoint.wrap(app)

    async def aclose(self) -> None:
        await self.hub.aclose()
        await self._endpoint.aclose()
        await self.hub.buffer.aclose()


class RedisEmitter:
    """``await emitter.notify(client_id, correlation_id=..., status=...)`` and
    ``await emitter.publish(topic, data)`` from a worker.

    ``transport`` is the nodes' own transport object (its fan-out is where the frames go);
    ``replay`` must be the nodes' shared one, ``Replay(redis_url=...)`` (its ``prefix`` too).
    """

    def __init__(
        self,
        transport: SocketIOTransport | WebSocketTransport,
        replay: Replay,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if not isinstance(transport, SocketIOTransport | WebSocketTransport):
            raise TypeError("transport must be a SocketIOTransport or a WebSocketTransport")
        if not isinstance(replay, Replay):
            raise TypeError(f"replay must be a Replay; not {replay!r}")
        if not replay.shared:
            raise ValueError("a worker numbers in the nodes' buffer: Replay(redis_url=...)")
        self._publisher = transport.publisher()
        self._buffer = replay.make(DEFAULT_SEQ_TTL_SECONDS)
        self._producer = Producer(
            self._buffer, self._publisher.publish, tracer_provider=tracer_provider
        )
        self.notify = self._producer.notify
        self.publish = self._producer.publish

    async def aclose(self) -> None:
        await self._publisher.aclose()
        await self._buffer.aclose()
