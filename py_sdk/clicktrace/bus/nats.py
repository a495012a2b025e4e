"""NATS JetStream (nats-py): one stream per topic, one durable pull consumer per group.

Native headers are NATS headers; the message id goes in ``Nats-Msg-Id`` too, so JetStream
drops a re-publish inside the stream's duplicate window. A consumer that dies leaves its
messages unacked and JetStream redelivers them after ``ack_wait`` seconds. That is short
(3 s: a restarted process resumes its dead predecessor's work promptly) because a live
consumer keeps extending it (``in_progress``) for every message of the batch in hand, however
long its handler takes; ``max_deliver`` stops a message that kills every consumer, and the base
dead-letters it on its last delivery. Dead letters go to the subject
``clicktrace_dlq.<topic>.<group>`` in the stream ``CLICKTRACE_DLQ``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider

from clicktrace._optional import require
from clicktrace.bus.base import Bus
from clicktrace.bus.types import Received, Subscription

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = ["DLQ_STREAM", "NatsBus", "dlq_subject", "durable_name", "stream_name"]

DLQ_STREAM = "CLICKTRACE_DLQ"
DLQ_PREFIX = "clicktrace_dlq"


def _safe(name: str) -> str:
    # Stream and durable names may not contain '.'; a hash keeps "a.b" and "a_b" apart.
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name.replace('.', '_')}_{digest}"


@functools.lru_cache(maxsize=1024)  # computed on every publish
def stream_name(topic: str) -> str:
    return f"CT_{_safe(topic)}"


def durable_name(group: str) -> str:
    return _safe(group)


def dlq_subject(topic: str, group: str) -> str:
    return f"{DLQ_PREFIX}.{topic}.{group}"


class _Delivery(Received):
    __slots__ = ("_msg",)

    def __init__(self, msg: Msg) -> None:
        super().__init__(msg.data, dict(msg.headers or {}), msg.metadata.num_delivered or 1)
        self._msg = msg

    async def ack(self) -> None:
        await self._msg.ack()

    async def touch(self) -> None:
        await self._msg.in_progress()

    async def release(self) -> None:
        await self._msg.nak()


class NatsBus(Bus):
    """``NatsBus("nats://localhost:4222")``. ``ack_wait``: seconds before an unacked message
    is redelivered; ``duplicate_window``: seconds JetStream remembers message ids."""

    system = "nats"

    def __init__(
        self,
        url: str,
        *,
        tracer_provider: TracerProvider | None = None,
        batch: int = 100,
        fetch_timeout: float = 1.0,
        ack_wait: float = 3.0,
        duplicate_window: float = 120.0,
    ) -> None:
        self._nats = require("nats", "nats")
        self._api = require("nats.js.api", "nats")
        super().__init__(tracer_provider=tracer_provider)
        if batch < 1 or fetch_timeout <= 0 or ack_wait <= 0 or duplicate_window < 0:
            raise ValueError("batch, fetch_timeout and ack_wait must be positive")
        self._url, self._batch, self._fetch_timeout = url, batch, fetch_timeout
        self._ack_wait, self._duplicate_window = ack_wait, duplicate_window
        self._close_grace = fetch_timeout + 1
        self._client: Client | None = None
        self._js_: JetStreamContext | None = None
        self._streams: set[str] = set()

    @property
    def _js(self) -> JetStreamContext:
        if self._js_ is None:
            raise RuntimeError("NatsBus is not connected")
        return self._js_

    async def _connect(self) -> None:
        self._client = await self._nats.connect(self._url)
        self._js_ = self._client.jetstream()
        await self._stream(DLQ_STREAM, f"{DLQ_PREFIX}.>")

    async def _disconnect(self) -> None:
        client, self._client, self._js_ = self._client, None, None
        self._streams.clear()
        if client is not None:
            await client.drain()

    async def _ping(self) -> None:
        if self._client is None:
            raise RuntimeError("NatsBus is not connected")
        await self._client.flush(timeout=2)  # PING, wait for the server's PONG

    async def _stream(self, name: str, subject: str) -> None:
        if name not in self._streams:
            await self._js.add_stream(
                self._api.StreamConfig(
                    name=name,
                    subjects=[subject],
                    duplicate_window=self._duplicate_window,
                )
            )
            self._streams.add(name)

    async def _prepare(self, sub: Subscription) -> None:
        await self._stream(stream_name(sub.topic), sub.topic)
        await self._js.add_consumer(
            stream_name(sub.topic),
            self._api.ConsumerConfig(
                durable_name=durable_name(sub.group),
                ack_wait=self._ack_wait,
                # One more than the base's attempts: that last delivery is where it gives up
                # on a message whose consumers keep dying.
                max_deliver=sub.max_attempts + 1,
                filter_subject=sub.topic,
                max_ack_pending=max(1000, self._batch * 10),
            ),
        )

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        await self._stream(stream_name(topic), topic)
        await self._js.publish(topic, body, headers={**headers, "Nats-Msg-Id": message_id})

    async def _listen(self, sub: Subscription) -> None:
        psub = await self._js.pull_subscribe_bind(
            durable=durable_name(sub.group), stream=stream_name(sub.topic)
        )
        try:
            while self._consuming:
                try:
                    msgs = await psub.fetch(self._batch, timeout=self._fetch_timeout)
                except TimeoutError:  # nats-py raises its own and asyncio's: both subclass it
                    continue
                await self._deliver_batch(sub, msgs)
        finally:
            await psub.unsubscribe()

    async def _deliver_batch(self, sub: Subscription, msgs: list[Msg]) -> None:
        left = list(msgs)
        keepalive = asyncio.create_task(self._keep_alive(left))
        try:
            while left:
                await self._deliver(sub, _Delivery(left[0]))
                left.pop(0)
        finally:
            keepalive.cancel()
            await asyncio.gather(keepalive, return_exceptions=True)

    async def _keep_alive(self, left: list[Msg]) -> None:
        """Tell JetStream the batch in hand is still being worked on, every third of
        ``ack_wait``, so only a dead consumer's messages are redelivered."""
        while True:
            await asyncio.sleep(self._ack_wait / 3)
            for msg in list(left):
                with contextlib.suppress(Exception):  # acked meanwhile, or the link dropped
                    await msg.in_progress()

    async def _send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None:
        await self._js.publish(dlq_subject(sub.topic, sub.group), body, headers=headers)

    async def _read_dead_letters(
        self, topic: str, group: str, limit: int
    ) -> list[tuple[bytes, Mapping[str, str]]]:
        api = self._api
        psub = await self._js.pull_subscribe(
            dlq_subject(topic, group),
            stream=DLQ_STREAM,
            config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE, inactive_threshold=5.0),
        )
        out: list[tuple[bytes, Mapping[str, str]]] = []
        try:
            while len(out) < limit:
                try:
                    msgs: list[Any] = await psub.fetch(limit - len(out), timeout=0.5)
                except TimeoutError:
                    break
                out.extend((m.data, dict(m.headers or {})) for m in msgs)
        finally:
            await psub.unsubscribe()
        return out
