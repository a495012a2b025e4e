"""The bounded, non-blocking writer in front of a store.

``put`` runs on the request and message paths: it appends to a bounded queue and returns;
a background task writes batches to the store. A full queue drops the entry and counts it; a
store that fails (down, slow, full) costs its batch, counted too, and marks the journal
degraded until a write succeeds again. Nothing is ever raised into the app. The memory ring
is written in place: it is as cheap as the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from clicktrace.journal import record as _record
from clicktrace.journal.entry import Entry
from clicktrace.journal.store import Store, SyncStore

__all__ = ["DEFAULT_BATCH", "DEFAULT_LINGER_SECONDS", "DEFAULT_MAX_QUEUE", "Journal"]

DEFAULT_MAX_QUEUE = 10_000
DEFAULT_BATCH = 500
DEFAULT_LINGER_SECONDS = 0.05  # let a batch gather: one round trip for many entries
RETRY_SECONDS = 1.0  # after a failed write, wait this long before the next one
_log = logging.getLogger("clicktrace.journal")


class Journal:
    """``journal.use(Journal(store))``: what the recording sites write to."""

    def __init__(
        self,
        store: Store,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch: int = DEFAULT_BATCH,
        linger: float = DEFAULT_LINGER_SECONDS,
    ) -> None:
        if max_queue < 1 or batch < 1 or linger < 0:
            raise ValueError("max_queue and batch must be >= 1, linger >= 0")
        self._linger = linger
        self._hurry = asyncio.Event()  # set: stop gathering, write now (flush, a full batch)
        self._flushing = 0
        self.store = store
        self._add = store.add if isinstance(store, SyncStore) else None
        self._queue: deque[Entry] = deque()
        self._max, self._batch = max_queue, batch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.queue_drops = 0
        self.write_failures = 0
        """Entries lost because the store refused their batch."""
        self.last_error: str | None = None
        self.failing_since: float | None = None
        """Unix seconds of the first failed write since the last good one (None: healthy)."""

    @property
    def drops(self) -> int:
        """Every entry lost: queue full, store failed, store bound, recording errors."""
        return self.queue_drops + self.write_failures + self.store.dropped + _record._failures[0]

    @property
    def queued(self) -> int:
        return len(self._queue)

    def put(self, entry: Entry) -> None:
        add = self._add
        if add is not None:
            add(entry)
            return
        queue = self._queue
        if len(queue) >= self._max:
            self.queue_drops += 1
            return
        queue.append(entry)
        if self._task is None:
            self._schedule()
        elif len(queue) == self._batch:
            self._hurry.set()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a thread without a loop: hand over to the loop we know
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._start)
            return
        if loop is not self._loop:
            self._hurry = asyncio.Event()  # an Event belongs to the loop that waits on it
            self._loop = loop
        self._start()

    def _start(self) -> None:
        if self._task is None and self._loop is not None:
            self._task = self._loop.create_task(self._drain(), name="clicktrace journal writer")

    async def _drain(self) -> None:
        try:
            while self._queue:
                if self._linger and len(self._queue) < self._batch:
                    with contextlib.suppress(TimeoutError):  # gather a batch: one round trip
                        await asyncio.wait_for(self._hurry.wait(), self._linger)
                await self._write_batch()
                if len(self._queue) < self._batch and not self._flushing:
                    self._hurry.clear()
        finally:
            self._task = None
        if self._queue:  # added while the last write was being finished
            self._start()

    async def _write_batch(self) -> None:
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(self._batch, len(queue)))]
        try:
            await self.store.write(batch)
        except asyncio.CancelledError:
            self.write_failures += len(batch)
            raise
        except Exception as exc:
            self.write_failures += len(batch)
            if self.failing_since is None:
                self.failing_since = time.time()
                _log.warning(
                    "clicktrace journal: the store failed (%s); entries are dropped "
                    "until it answers again",
                    type(exc).__name__,
                )
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            await asyncio.sleep(RETRY_SECONDS)
        else:
            if self.failing_since is not None:
                _log.warning("clicktrace journal: the store answers again")
            self.failing_since = None

    async def flush(self) -> None:
        """Write what is queued now (tests, shutdown)."""
        self._flushing += 1
        self._hurry.set()
        try:
            await self._flush()
        finally:
            self._flushing -= 1
            if not self._flushing:
                self._hurry.clear()

    async def _flush(self) -> None:
        while self._queue or self._task is not None:
            task = self._task
            if task is None:
                self._schedule()
                task = self._task
            self._hurry.set()
            if task is not None:
                await asyncio.shield(task)

    async def read(self, correlation_id: str) -> list[Entry]:
        return await self.store.read(correlation_id)

    async def aclose(self) -> None:
        """Flush, then close the store."""
        try:
            await asyncio.wait_for(self.flush(), 5)
        except (TimeoutError, Exception):
            _log.warning("clicktrace journal: entries still queued at close were dropped")
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.store.aclose()
