"""RabbitMQ (aio-pika): a direct exchange routes each topic to one queue per group.

Group queues are quorum queues by default (durable, and they count redeliveries in
``x-delivery-count``, so attempts carry on after a consumer crash) with a dead-letter
exchange; the base dead-letters into it with the reason, and anything the broker itself
dead-letters lands in the same ``<topic>:<group>:dlq`` queue. Publishes are confirmed and
mandatory: a topic that no queue is bound to raises instead of silently dropping.
Native headers are AMQP headers; the message id is the AMQP ``message_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider

from clicktrace._optional import require
from clicktrace.bus.base import Bus
from clicktrace.bus.types import Received, Subscription

if TYPE_CHECKING:
    from aio_pika.abc import (
        AbstractChannel,
        AbstractExchange,
        AbstractIncomingMessage,
        AbstractRobustConnection,
    )

__all__ = ["RabbitMQBus"]


def _queue(topic: str, group: str) -> str:
    return f"{topic}:{group}"  # ':' is not allowed in names: no collisions


def _text_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if isinstance(value, bytes | bytearray):
            out[key] = bytes(value).decode("latin-1")
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            out[key] = str(value)
    return out


def _count(message: AbstractIncomingMessage) -> int:
    previous = (message.headers or {}).get("x-delivery-count")
    if isinstance(previous, int) and not isinstance(previous, bool):
        return previous + 1
    return 2 if message.redelivered else 1


class _Delivery(Received):
    __slots__ = ("_message",)

    def __init__(self, message: AbstractIncomingMessage) -> None:
        super().__init__(message.body, _text_headers(message.headers), _count(message))
        self._message = message

    async def ack(self) -> None:
        await self._message.ack()

    async def release(self) -> None:
        await self._message.nack(requeue=True)


class RabbitMQBus(Bus):
    """``RabbitMQBus("amqp://guest:guest@localhost:5672/")``."""

    system = "rabbitmq"

    def __init__(
        self,
        url: str,
        *,
        tracer_provider: TracerProvider | None = None,
        prefetch: int = 100,
        exchange: str = "clicktrace",
        queue_type: str = "quorum",
    ) -> None:
        self._pika = require("aio_pika", "rabbitmq")
        super().__init__(tracer_provider=tracer_provider)
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        if queue_type not in ("quorum", "classic"):
            raise ValueError("queue_type must be 'quorum' or 'classic'")
        self._url, self._prefetch, self._queue_type = url, prefetch, queue_type
        self._exchange_name = exchange
        self._connection: AbstractRobustConnection | None = None
        self._channel_: AbstractChannel | None = None
        self._exchange_: AbstractExchange | None = None
        self._dlx_: AbstractExchange | None = None

    @property
    def _channel(self) -> AbstractChannel:
        if self._channel_ is None:
            raise RuntimeError("RabbitMQBus is not connected")
        return self._channel_

    async def _connect(self) -> None:
        pika = self._pika
        self._connection = await pika.connect_robust(self._url)
        self._channel_ = await self._connection.channel(on_return_raises=True)
        self._exchange_ = await self._channel_.declare_exchange(
            self._exchange_name, pika.ExchangeType.DIRECT, durable=True
        )
        self._dlx_ = await self._channel_.declare_exchange(
            f"{self._exchange_name}.dlx", pika.ExchangeType.DIRECT, durable=True
        )

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._channel_ = self._exchange_ = self._dlx_ = None
        if connection is not None:
            await connection.close()

    async def _ping(self) -> None:
        # A passive declare of our own exchange: one AMQP round trip, nothing changed.
        await self._channel.declare_exchange(self._exchange_name, passive=True)

    async def _prepare(self, sub: Subscription) -> None:
        name = _queue(sub.topic, sub.group)
        dlq = await self._channel.declare_queue(f"{name}:dlq", durable=True)
        await dlq.bind(f"{self._exchange_name}.dlx", routing_key=name)
        queue = await self._channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": self._queue_type,
                "x-dead-letter-exchange": f"{self._exchange_name}.dlx",
                "x-dead-letter-routing-key": name,
            },
        )
        await queue.bind(self._exchange_name, routing_key=sub.topic)

    def _message(self, body: bytes, headers: dict[str, str], message_id: str | None) -> Any:
        return self._pika.Message(
            body,
            headers=dict(headers),
            message_id=message_id,
            content_type="application/json",
            delivery_mode=self._pika.DeliveryMode.PERSISTENT,
        )

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        if self._exchange_ is None:
            raise RuntimeError("RabbitMQBus is not connected")
        await self._exchange_.publish(
            self._message(body, headers, message_id), routing_key=topic, mandatory=True
        )

    async def _listen(self, sub: Subscription) -> None:
        if self._connection is None:
            raise RuntimeError("RabbitMQBus is not connected")
        channel = await self._connection.channel()
        try:
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.get_queue(_queue(sub.topic, sub.group), ensure=False)
            async with queue.iterator() as messages:
                async for message in messages:
                    await self._deliver(sub, _Delivery(message))
        finally:
            if not channel.is_closed:
                await channel.close()

    async def _send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None:
        if self._dlx_ is None:
            raise RuntimeError("RabbitMQBus is not connected")
        name = _queue(sub.topic, sub.group)
        await self._dlx_.publish(self._message(body, headers, None), routing_key=name)

    async def _read_dead_letters(
        self, topic: str, group: str, limit: int
    ) -> list[tuple[bytes, Mapping[str, str]]]:
        queue = await self._channel.get_queue(f"{_queue(topic, group)}:dlq", ensure=False)
        taken: list[AbstractIncomingMessage] = []
        try:
            while len(taken) < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                taken.append(message)
        finally:
            for message in taken:  # read, not removed: put them back
                await message.nack(requeue=True)
        return [(m.body, _text_headers(m.headers)) for m in taken]
