"""Command claims in one process's memory (tests, single-process apps without a database)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from clicktrace.commands.retries.base import DEFAULT_TTL_SECONDS, Answer, in_progress

__all__ = ["MemoryRetryStore"]


class MemoryRetryStore:
    """At most ``capacity`` answers for ``ttl_seconds``; lost on restart. A retry that
    arrives while the first attempt runs waits up to ``wait_seconds`` for its answer."""

    transactional = False

    def __init__(
        self,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        capacity: int = 100_000,
        wait_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or capacity < 1 or wait_seconds < 0:
            raise ValueError("ttl_seconds and capacity must be positive, wait_seconds >= 0")
        self._ttl, self._capacity, self._wait, self._clock = (
            ttl_seconds,
            capacity,
            wait_seconds,
            clock,
        )
        self._answers: OrderedDict[str, tuple[float, Answer]] = OrderedDict()
        self._running: dict[str, asyncio.Event] = {}

    async def claim(self, key: str, conn: Any = None) -> Answer | None:
        # Loop: when the first attempt released its claim, only one waiter takes it over.
        while (running := self._running.get(key)) is not None:
            try:
                await asyncio.wait_for(running.wait(), self._wait)
            except TimeoutError:
                return in_progress()
        kept = self._answers.get(key)
        if kept is not None and self._clock() - kept[0] < self._ttl:
            return kept[1]
        self._running[key] = asyncio.Event()
        return None

    async def record(self, key: str, answer: Answer, conn: Any = None) -> None:
        self._answers[key] = (self._clock(), answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self._capacity:
            self._answers.popitem(last=False)
        self._done(key)

    async def release(self, key: str, conn: Any = None) -> None:
        self._done(key)

    def _done(self, key: str) -> None:
        running = self._running.pop(key, None)
        if running is not None:
            running.set()
