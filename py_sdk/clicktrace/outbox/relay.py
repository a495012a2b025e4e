"""The relay: publishes committed outbox rows, in order, and marks them sent."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from clicktrace.bus.base import Bus
from clicktrace.bus.types import Backoff
from clicktrace.envelope import Envelope
from clicktrace.journal.record import record
from clicktrace.propagation import ATTRIBUTE_GETTER, extract_trace

__all__ = ["Outbox", "OutboxRelay", "PublishEnvelope"]

log = logging.getLogger("clicktrace.outbox")
PublishEnvelope = Callable[[str, Envelope], Awaitable[None]]


class Outbox(Protocol):
    async def relay_batch(self, conn: Any, limit: int, publish: PublishEnvelope) -> int: ...

    async def lag(self, conn: Any) -> tuple[int, float | None]:
        """Unsent rows and the Unix time the oldest was stored (``/clicktrace/health``)."""
        ...


class OutboxRelay:
    """Runs in the background from ``start()`` to ``close()``.

    ``connect`` opens the relay's own database connection (``lambda: aiosqlite.connect(p)``,
    ``lambda: asyncpg.connect(dsn)``); it is reopened after an error. The relay polls every
    ``poll_interval`` seconds; ``wake()`` (call it after committing) makes it look at once.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        connect: Callable[[], Awaitable[Any]],
        bus: Bus,
        batch: int = 100,
        poll_interval: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        if batch < 1 or poll_interval <= 0:
            raise ValueError("batch must be >= 1 and poll_interval > 0")
        self._outbox, self._connect, self._bus = outbox, connect, bus
        self._batch, self._poll = batch, poll_interval
        self._backoff = backoff or Backoff(initial=0.1, maximum=5.0)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._stopping = False

    @property
    def outbox(self) -> Outbox:
        """The outbox it relays (``clicktrace.install`` checks its lag for the health route)."""
        return self._outbox

    @property
    def connect(self) -> Callable[[], Awaitable[Any]]:
        return self._connect

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="clicktrace outbox relay")

    def wake(self) -> None:
        self._wake.set()

    async def close(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (so it is marked sent), then stop; cancel after
        ``timeout`` seconds."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.wait([task], timeout=timeout)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._stopping = False
        await self._disconnect()

    async def run_once(self) -> int:
        """Publish one batch now; the number of rows that went out."""
        if self._conn is None:
            self._conn = await self._connect()
        return await self._outbox.relay_batch(self._conn, self._batch, self._publish)

    async def drain(self) -> int:
        """Publish until nothing is left; the number of rows that went out."""
        total = 0
        while (n := await self.run_once()) > 0:
            total += n
        return total

    async def _publish(self, topic: str, envelope: Envelope) -> None:
        # Durable before the row is marked: on the memory bus that means handled, so a
        # crash never leaves a row marked sent whose message only lived in this process.
        handed_at = time.time() * 1000.0  # on the memory bus, durable means handled
        await self._bus.publish_durable(topic, envelope)
        # The relay runs outside the request: the entry names the trace the row was stored in.
        meta = envelope.metadata
        tp = extract_trace(meta, ATTRIBUTE_GETTER).traceparent
        record(
            "relayed",
            correlation_id=meta.correlation_id,
            client_id=meta.client_id,
            detail=topic,
            at=handed_at,
            trace_id=None if tp is None else f"{tp.trace_id:032x}",
            span_id=None if tp is None else f"{tp.span_id:016x}",
            sampled=None if tp is None else tp.sampled,  # the click's decision, not the relay's
        )

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                sent = await self.run_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.exception("clicktrace outbox relay failed; retrying")
                await self._disconnect()
                with contextlib.suppress(TimeoutError):  # close() wakes it to stop
                    await asyncio.wait_for(self._wake.wait(), self._backoff.delay(failures))
                continue
            if sent >= self._batch or self._stopping:
                continue  # more may be waiting (or it is time to stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            result = conn.close()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.debug("closing the relay's connection failed", exc_info=True)
