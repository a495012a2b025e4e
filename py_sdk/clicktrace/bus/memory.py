"""In-process bus: the embedded default. Same semantics as the brokers (groups, retries,
dead-letters, spans), without durability: messages live as long as the process."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping

from opentelemetry.trace import TracerProvider

from clicktrace.bus.base import Bus
from clicktrace.bus.types import Delivery, Subscription

__all__ = ["MemoryBus"]

_Message = tuple[bytes, dict[str, str]]


class _Delivery(Delivery):
    __slots__ = ()

    async def ack(self) -> None:
        pass  # nothing to release: a message leaves the group's queue when it is taken


class MemoryBus(Bus):
    """Every group of a topic gets its own FIFO queue; subscriptions of a group compete.

    A message published to a topic that no group subscribes to is dropped, as nothing in
    this process could ever consume it.
    """

    system = "memory"

    def __init__(self, *, tracer_provider: TracerProvider | None = None) -> None:
        super().__init__(tracer_provider=tracer_provider)
        self._queues: dict[str, dict[str, asyncio.Queue[_Message]]] = defaultdict(dict)
        self._dead: dict[tuple[str, str], list[_Message]] = defaultdict(list)

    async def _connect(self) -> None:
        pass

    async def _disconnect(self) -> None:
        pass

    async def _prepare(self, sub: Subscription) -> None:
        self._queues[sub.topic].setdefault(sub.group, asyncio.Queue())

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        for queue in self._queues.get(topic, {}).values():
            queue.put_nowait((body, dict(headers)))

    async def _listen(self, sub: Subscription) -> None:
        queue = self._queues[sub.topic][sub.group]
        while True:
            body, headers = await queue.get()
            await self._deliver(sub, _Delivery(body, headers))

    async def _send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None:
        self._dead[(sub.topic, sub.group)].append((body, headers))

    async def _read_dead_letters(
        self, topic: str, group: str, limit: int
    ) -> list[tuple[bytes, Mapping[str, str]]]:
        return list(self._dead.get((topic, group), [])[:limit])
