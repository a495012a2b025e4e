"""Write-only emitters for processes that serve no sockets (projection workers, consumers).

They make the notification exactly as :class:`~clicktrace.notify.Notifier` does (span, seq in
the shared Redis buffer) and publish it where the socket nodes listen: python-socketio's
Redis or RabbitMQ channel for the Socket.IO transport, the clicktrace Redis channel for the
WebSocket transport. ``channel`` and the transport must match the nodes' ``Notifier``.
"""

from __future__ import annotations

from typing import Any, Literal

from opentelemetry.trace import TracerProvider

from clicktrace._optional import require
from clicktrace.notify.fanout import connect_redis, publish_frame
from clicktrace.notify.frames import EVENT, Frame
from clicktrace.notify.producer import Producer
from clicktrace.notify.replay import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_SEQ_TTL_SECONDS,
    DEFAULT_TTL_SECONDS,
)
from clicktrace.notify.replay_redis import RedisReplayBuffer

__all__ = ["RedisEmitter"]


class RedisEmitter:
    """``await emitter.notify(client_id, correlation_id=..., status=...)`` from a worker.

    The replay buffer always lives in Redis (``redis_url``); with ``amqp_url`` the Socket.IO
    frames travel through RabbitMQ (python-socketio's ``AsyncAioPikaManager``) instead.
    """

    def __init__(
        self,
        redis_url: str,
        transport: Literal["socketio", "websocket"] = "socketio",
        *,
        amqp_url: str | None = None,
        tracer_provider: TracerProvider | None = None,
        channel: str = "clicktrace",
        replay_max_frames: int = DEFAULT_MAX_FRAMES,
        replay_ttl_seconds: float = DEFAULT_TTL_SECONDS,
        seq_ttl_seconds: float = DEFAULT_SEQ_TTL_SECONDS,
    ) -> None:
        if transport not in ("socketio", "websocket"):
            raise ValueError("transport must be 'socketio' or 'websocket'")
        if amqp_url and transport != "socketio":
            raise ValueError("amqp_url only applies to the Socket.IO transport")
        self._redis = connect_redis(redis_url)
        buffer = RedisReplayBuffer(
            client=self._redis,
            max_frames=replay_max_frames,
            ttl_seconds=replay_ttl_seconds,
            seq_ttl_seconds=max(seq_ttl_seconds, replay_ttl_seconds),
            prefix=channel,
        )
        self._manager: Any = None
        self._channel = channel
        if transport == "websocket":
            publish = self._publish_ws
        elif amqp_url:
            socketio = require("socketio", "socketio", package="python-socketio")
            require("aio_pika", "rabbitmq")
            self._manager = socketio.AsyncAioPikaManager(amqp_url, channel=channel, write_only=True)
            publish = self._publish_sio
        else:
            socketio = require("socketio", "socketio", package="python-socketio")
            self._manager = socketio.AsyncRedisManager(redis_url, channel=channel, write_only=True)
            publish = self._publish_sio
        self._producer = Producer(buffer, publish, tracer_provider=tracer_provider)
        self.notify = self._producer.notify

    async def _publish_ws(self, client_id: str, frame: Frame) -> None:
        await publish_frame(self._redis, self._channel + ":ws", client_id, frame)

    async def _publish_sio(self, client_id: str, frame: Frame) -> None:
        await self._manager.emit(EVENT, frame, namespace="/", room=client_id)

    async def aclose(self) -> None:
        # python-socketio managers have no close(); release their connections ourselves.
        manager_redis = getattr(self._manager, "redis", None)
        if manager_redis is not None:
            await manager_redis.aclose()
        publisher = getattr(self._manager, "publisher_connection", None)
        if publisher is not None:
            await publisher.close()
        await self._redis.aclose()
