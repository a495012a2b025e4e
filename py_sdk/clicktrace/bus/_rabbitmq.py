"""RabbitMQ (aio-pika): a direct exchange routes each topic to one queue per group.

Group queues are quorum queues by default (durable, and they count redeliveries in
``x-delivery-count``, so attempts carry on after a consumer crash) with a dead-letter
exchange; the base dead-letters into it with the reason, and anything the broker itself
dead-letters lands in the same ``<topic>:<group>:dlq`` queue. Publishes are confirmed and
mandatory: a topic that no queue is bound to raises instead of silently dropping.
Native headers are AMQP headers; the message id is the AMQP ``message_id``.

Bounded: group queues empty as consumers ack; a dead-letter queue keeps at most
``dead_letter_max_length`` messages (the oldest are dropped first) for at most
``dead_letter_ttl`` seconds. A dead-letter queue declared before these limits keeps its
arguments (RabbitMQ refuses to change them; one log line says so): apply a policy or delete it.

A group queue deleted while consumed (by an operator, a broker reset): the broker cancels the
consumer; the bus declares queue and binding again, says so in one log line and in
``bus.recoveries`` / ``bus.last_recovery``, and consumes on. Until then a publish to its topic
is unroutable and raises, so the caller (an outbox relay) tries it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider

from clicktrace._optional import require
from clicktrace.bus._base import DEFAULT_START_TIMEOUT, Bus
from clicktrace.bus._types import Received, Subscription

if TYPE_CHECKING:
    from aio_pika.abc import (
        AbstractChannel,
        AbstractExchange,
        AbstractIncomingMessage,
        AbstractRobustConnection,
    )

__all__ = ["RabbitMQBus"]

DEFAULT_DEAD_LETTER_MAX_LENGTH = 10_000
DEFAULT_DEAD_LETTER_TTL = 7 * 24 * 3600.0
log = logging.getLogger("clicktrace.bus")


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
        dead_letter_max_length: int = DEFAULT_DEAD_LETTER_MAX_LENGTH,
        dead_letter_ttl: float = DEFAULT_DEAD_LETTER_TTL,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self._pika = require("aio_pika", "rabbitmq")
        super().__init__(tracer_provider=tracer_provider, start_timeout=start_timeout)
        if prefetch < 1 or dead_letter_max_length < 1 or dead_letter_ttl <= 0:
            raise ValueError("prefetch and dead_letter_max_length must be >= 1, ttl > 0")
        self._dlq_arguments: dict[str, Any] = {
            "x-max-length": dead_letter_max_length,
            "x-message-ttl": int(dead_letter_ttl * 1000),
        }
        self._queues_made: set[str] = set()
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

    def _is_outage(self, exc: BaseException) -> bool:
        errors = self._pika.exceptions
        away = (errors.AMQPConnectionError, errors.ChannelInvalidStateError)
        return isinstance(exc, away) or super()._is_outage(exc)

    async def _missing(self, queue: str) -> bool:
        """Whether ``queue`` is gone (a passive declare on a channel of its own, which the
        broker closes when the answer is no)."""
        if self._connection is None:
            raise RuntimeError("RabbitMQBus is not connected")
        probe = await self._connection.channel()
        try:
            await probe.declare_queue(queue, passive=True)
        except self._pika.exceptions.ChannelNotFoundEntity:
            return True
        finally:
            if not probe.is_closed:
                await probe.close()
        return False

    async def _declare_dlq(self, name: str) -> Any:
        if self._connection is None:
            raise RuntimeError("RabbitMQBus is not connected")
        probe = await self._connection.channel()
        try:
            await probe.declare_queue(name, durable=True, arguments=self._dlq_arguments)
        except self._pika.exceptions.ChannelPreconditionFailed:
            log.warning("clicktrace bus: dead-letter queue %s keeps its old limits", name)
        finally:
            if not probe.is_closed:
                await probe.close()
        return await self._channel.get_queue(name, ensure=False)

    async def _prepare(self, sub: Subscription) -> None:
        name = _queue(sub.topic, sub.group)
        dlq = await self._declare_dlq(f"{name}:dlq")
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
        self._queues_made.add(name)

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
        name = _queue(sub.topic, sub.group)
        if await self._missing(name):  # on every (re)start: it may have been deleted
            await self._prepare(sub)
            self._recovered(f"queue {name!r} and its binding")
        channel = await self._connection.channel()
        try:
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.get_queue(name, ensure=False)
            async with queue.iterator() as messages:
                # The broker cancels the consumer when the queue is deleted; the iterator
                # would wait for ever. End it, and _run calls us again, which re-declares.
                underlay = await channel.get_underlay_channel()
                ended: set[asyncio.Future[Any]] = set()

                def cancelled(_frame: object) -> None:
                    ended.add(asyncio.ensure_future(messages.close()))

                underlay.on_consumer_cancel_callbacks.add(cancelled)
                try:
                    async for message in messages:
                        await self._deliver(sub, _Delivery(message))
                except self._pika.exceptions.ChannelNotFoundEntity:
                    return  # the queue went away under an ack or a cancel: the same loss
                finally:
                    underlay.on_consumer_cancel_callbacks.discard(cancelled)
                    await asyncio.gather(*ended, return_exceptions=True)
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
