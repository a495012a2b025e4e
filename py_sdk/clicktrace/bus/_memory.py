"""In-process bus: the embedded default. Same semantics as the brokers (groups, retries,
dead-letters, spans), without a broker: queued messages live as long as the process.

What makes it safe behind an outbox is :meth:`MemoryBus.publish_durable`: it returns only
once every group has handled the message (acked, or dead-lettered), so a relay marks a row
sent only when nothing of it is left in memory. A crash before that leaves the row unsent;
the next start publishes it again and the consumer's idempotency absorbs a repeat.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import defaultdict, deque
from collections.abc import Mapping

from opentelemetry.trace import TracerProvider

from clicktrace.bus._base import DEFAULT_START_TIMEOUT, Bus, BusNotRunning
from clicktrace.bus._types import Received, Subscription
from clicktrace.envelope import Envelope

__all__ = ["MemoryBus"]

DEAD_LETTER_LIMIT = 10_000  # per topic and group: the newest are kept


class _Handled:
    """Counts down the groups that still hold one message; resolves the publisher's wait."""

    __slots__ = ("future", "left")

    def __init__(self, future: asyncio.Future[None], left: int) -> None:
        self.future, self.left = future, left

    def done(self) -> None:
        self.left -= 1
        if self.left <= 0 and not self.future.done():
            self.future.set_result(None)

    def dropped(self) -> None:
        if not self.future.done():
            self.future.set_exception(BusNotRunning("the bus closed before handling it"))


_Message = tuple[bytes, dict[str, str], _Handled | None]


class _Delivery(Received):
    __slots__ = ("_handled",)

    def __init__(self, body: bytes, headers: Mapping[str, str], handled: _Handled | None) -> None:
        super().__init__(body, headers)
        self._handled = handled

    async def ack(self) -> None:
        # The message left the group's queue when it was taken; only a waiting publisher
        # (publish_durable) needs to hear that it is done.
        if self._handled is not None:
            self._handled.done()

    async def release(self) -> None:
        if self._handled is not None:
            self._handled.dropped()  # nothing here will handle it: the publisher must not mark it


class MemoryBus(Bus):
    """Every group of a topic gets its own FIFO queue; subscriptions of a group compete.

    A message published to a topic that no group subscribes to is dropped, as nothing in
    this process could ever consume it.
    """

    system = "memory"

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        # start_timeout only for a create_bus(url, start_timeout=...) that serves every URL:
        # nothing here can be unreachable.
        super().__init__(tracer_provider=tracer_provider, start_timeout=start_timeout)
        self._queues: dict[str, dict[str, asyncio.Queue[_Message]]] = defaultdict(dict)
        self._dead: dict[tuple[str, str], deque[tuple[bytes, dict[str, str]]]] = defaultdict(
            functools.partial(deque, maxlen=DEAD_LETTER_LIMIT)
        )
        self._waiting: dict[str, _Handled] = {}

    async def publish_durable(self, topic: str, envelope: Envelope) -> None:
        """Publish, then wait until every group subscribed to ``topic`` has handled it.

        Do not call it from a handler of the same topic and group: that handler's own
        consumer would wait on itself.
        """
        message_id = envelope.metadata.message_id
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = handled = _Handled(future, 0)
        try:
            await self.publish(topic, envelope)
        finally:
            self._waiting.pop(message_id, None)
        if handled.left <= 0:
            return  # no group: nothing in this process will ever hold it
        await future

    async def _connect(self) -> None:
        pass

    async def _disconnect(self) -> None:
        for groups in self._queues.values():
            for queue in groups.values():
                while not queue.empty():
                    _, _, handled = queue.get_nowait()
                    if handled is not None:
                        handled.dropped()

    async def _ping(self) -> None:
        pass  # in process: reachable while it runs

    async def _prepare(self, sub: Subscription) -> None:
        self._queues[sub.topic].setdefault(sub.group, asyncio.Queue())

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        handled = self._waiting.get(message_id)
        groups = self._queues.get(topic, {})
        if handled is not None:
            handled.left = len(groups)
        for queue in groups.values():
            queue.put_nowait((body, dict(headers), handled))

    async def _listen(self, sub: Subscription) -> None:
        queue = self._queues[sub.topic][sub.group]
        while True:
            body, headers, handled = await queue.get()
            try:
                await self._deliver(sub, _Delivery(body, headers, handled))
            except BaseException:
                if handled is not None:
                    handled.dropped()  # cancelled mid-handling (close timed out)
                raise

    async def _send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None:
        self._dead[(sub.topic, sub.group)].append((body, headers))

    async def _read_dead_letters(
        self, topic: str, group: str, limit: int
    ) -> list[tuple[bytes, Mapping[str, str]]]:
        return list(itertools.islice(self._dead.get((topic, group), ()), limit))
