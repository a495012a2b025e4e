"""The bounded, non-blocking writer in front of a store.

``put`` runs on the request and message paths: it appends to a bounded queue and returns;
a background task writes batches to the store. A full queue drops the entry and counts it; a
store that fails (down, slow, full) costs its batch, counted too, and marks the journal
degraded until a write succeeds again. Nothing is ever raised into the app. The memory ring
is written in place: it is as cheap as the queue.

``put_later`` takes an entry's parts instead (a function and its arguments: the edge's
command entry, :func:`clicktrace.journal._record.command`): it is built in the writer's batch,
or for the memory ring on the loop's next turn (or the next read or flush, whichever comes
first), so the request pays for a tuple, not for the entry.

What was handed over is written before the process ends, wherever it can be: ``aclose()``
flushes; a loop that stops with entries queued (``asyncio.run`` ending, uvicorn after SIGTERM)
cancels the writer, which then gives the batch in hand and the queue one bounded last write.
A SIGKILL (or SIGTERM with no handler) leaves no such chance, so each writer also keeps its
process in the store's process table, refreshed every ``heartbeat`` seconds: readers learn from
:func:`restarted` after which time a process's unwritten entries may have died with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

from clicktrace.journal import _record
from clicktrace.journal._entry import Entry
from clicktrace.journal._store import Process, Store, SyncStore

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_HEARTBEAT_SECONDS",
    "DEFAULT_LINGER_SECONDS",
    "DEFAULT_MAX_QUEUE",
    "Journal",
    "restarted",
]

DEFAULT_MAX_QUEUE = 10_000
DEFAULT_BATCH = 500
DEFAULT_LINGER_SECONDS = 0.05  # let a batch gather: one round trip for many entries
RETRY_SECONDS = 1.0  # after a failed write, wait this long before the next one
DEFAULT_HEARTBEAT_SECONDS = 5.0
STALE_BEATS = 3  # a process silent for this many heartbeats is taken for dead
LAST_CHANCE_SECONDS = 3.0  # the writer's last write when its loop cancels it
_log = logging.getLogger("clicktrace.journal")

Later = tuple[Callable[..., Entry], tuple[object, ...]]
"""An entry still in parts (``put_later``): the function that builds it and its arguments."""


class Journal:
    """``journal.use(Journal(store))``: what the recording sites write to."""

    def __init__(
        self,
        store: Store,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch: int = DEFAULT_BATCH,
        linger: float = DEFAULT_LINGER_SECONDS,
        heartbeat: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        if max_queue < 1 or batch < 1 or linger < 0 or not heartbeat > 0:
            raise ValueError("max_queue and batch must be >= 1, linger >= 0, heartbeat > 0")
        self._linger, self._heartbeat = linger, heartbeat
        self._beating: asyncio.Task[None] | None = None
        self._writing: tuple[asyncio.Future[None], list[Entry]] | None = None
        self._hurry = asyncio.Event()  # set: stop gathering, write now (flush, a full batch)
        self._flushing = 0
        self.store = store
        self._add = store.add if isinstance(store, SyncStore) else None
        self._settling = False  # the memory ring's queue is to be written on the loop's next turn
        self._queue: deque[Entry | Later] = deque()
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
            if self._queue:  # entries still in parts go first: the ring keeps their order
                self._settle()
            add(entry)
            return
        self._enqueue(entry)

    def put_later(self, build: Callable[..., Entry], args: tuple[object, ...]) -> None:
        """Journal ``build(*args)``, called when the entry is written rather than now."""
        if self._add is None:
            self._enqueue((build, args))
            return
        queue = self._queue
        if len(queue) >= self._max:
            self.queue_drops += 1
            return
        queue.append((build, args))
        if not self._settling:
            self._settling = True
            try:
                asyncio.get_running_loop().call_soon(self._settle)
            except RuntimeError:  # no loop in this thread: now
                self._settle()

    def _enqueue(self, item: Entry | Later) -> None:
        queue = self._queue
        if len(queue) >= self._max:
            self.queue_drops += 1
            return
        queue.append(item)
        if self._task is None:
            self._schedule()
        elif len(queue) == self._batch:
            self._hurry.set()

    def _settle(self) -> None:
        """Write what is queued into the in-place store (the memory ring), in order."""
        self._settling = False
        add, queue = self._add, self._queue
        if add is None:
            return
        items = list(queue)
        queue.clear()
        for entry in _built(items):
            add(entry)

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a thread without a loop: hand over to the loop we know
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._start)
            return
        if loop is not self._loop:
            self._hurry = asyncio.Event()  # an Event belongs to the loop that waits on it
            self._loop, self._beating = loop, None
        self._start()

    def _start(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._task is None:
            self._task = loop.create_task(self._drain(), name="clicktrace journal writer")
        if self._beating is None:
            self._beating = loop.create_task(self._beat(), name="clicktrace journal heartbeat")

    async def _beat(self) -> None:
        """Keep this process in the store's process table while it writes."""
        started = time.time() * 1000.0
        name = None
        try:
            while True:
                current = _record.process_name()
                if name is not None and current != name:  # set_process() renamed it
                    with contextlib.suppress(Exception):
                        await self.store.unregister(name)
                name = current
                info = Process(started, time.time() * 1000.0, self._heartbeat * 1000.0)
                with contextlib.suppress(Exception):  # a store that is down: journal_check says so
                    await self.store.register(name, info)
                await asyncio.sleep(self._heartbeat)
        except asyncio.CancelledError:
            await self._retire(name)
            raise

    async def _retire(self, name: str | None) -> None:
        """Leave the process table once everything handed over is written: a reader may then
        call this process's stuck clicks stuck, not unknown."""
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait({task}, timeout=LAST_CHANCE_SECONDS + 1)
        if name is None or self._queue or self._task is not None or self.failing_since:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.store.unregister(name), 1.0)

    async def _drain(self) -> None:
        try:
            while self._queue:
                if self._linger and len(self._queue) < self._batch:
                    with contextlib.suppress(TimeoutError):  # gather a batch: one round trip
                        await asyncio.wait_for(self._hurry.wait(), self._linger)
                await self._write_batch()
                if len(self._queue) < self._batch and not self._flushing:
                    self._hurry.clear()
        except asyncio.CancelledError:
            await self._last_chance()
            raise
        finally:
            self._task = None
        if self._queue:  # added while the last write was being finished
            self._start()

    async def _last_chance(self) -> None:
        """The loop is stopping with entries handed over: finish the write in flight and
        write the queue, within ``LAST_CHANCE_SECONDS``; what does not make it is counted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LAST_CHANCE_SECONDS
        writing, self._writing = self._writing, None
        try:
            if writing is not None:
                future, batch = writing
                await asyncio.wait({future}, timeout=deadline - loop.time())
                if future.cancelled():  # the loop cancelled it too: write it again
                    self._queue.extendleft(reversed(batch))
                elif not future.done() or future.exception() is not None:
                    self.write_failures += len(batch)
            while self._queue and loop.time() < deadline:
                queue = self._queue
                batch = _built([queue.popleft() for _ in range(min(self._batch, len(queue)))])
                try:
                    await asyncio.wait_for(self.store.write(batch), deadline - loop.time())
                except Exception:
                    self.write_failures += len(batch)
                    break
        finally:
            self.write_failures += len(self._queue)
            if self._queue:
                _log.warning("clicktrace journal: %d entries were not written", len(self._queue))
            self._queue.clear()

    async def _write_batch(self) -> None:
        queue = self._queue
        batch = _built([queue.popleft() for _ in range(min(self._batch, len(queue)))])
        # Shielded: a cancellation (the loop stopping) leaves the write running, and
        # _last_chance waits for it instead of losing a batch the store may half have.
        future: asyncio.Future[None] = asyncio.ensure_future(self.store.write(batch))
        self._writing = (future, batch)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._writing = None
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
            self._writing = None
            if self.failing_since is not None:
                _log.warning("clicktrace journal: the store answers again")
            self.failing_since = None

    async def flush(self) -> None:
        """Write what is queued now (tests, shutdown)."""
        if self._add is not None:
            self._settle()
            return
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
        if self._queue and self._add is not None:
            self._settle()
        return await self.store.read(correlation_id)

    async def restarted(self) -> dict[str, float]:
        """:func:`restarted` over the store's process table, now."""
        return restarted(await self.store.processes(), time.time() * 1000.0)

    async def aclose(self) -> None:
        """Flush, leave the process table (when everything was written), close the store."""
        try:
            await asyncio.wait_for(self.flush(), 5)
        except (TimeoutError, Exception):
            _log.warning("clicktrace journal: entries still queued at close were dropped")
        for task in (self._task, self._beating):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._beating = None
        await self.store.aclose()


def _built(items: Iterable[Entry | Later]) -> list[Entry]:
    """The entries of queued items, those still in parts built now; one whose build fails is
    counted among the recording errors (``Journal.drops``)."""
    out: list[Entry] = []
    for item in items:
        if type(item) is Entry:
            out.append(item)
            continue
        try:
            out.append(item[0](*item[1]))  # type: ignore[index]
        except Exception:
            _record._failures[0] += 1
    return out


def restarted(table: dict[str, Process], now_ms: float) -> dict[str, float]:
    """Per process of a store's process table, the time (Unix ms) after which entries it had
    not yet written may be lost: for one alive, the time it (re)started under that name (an
    earlier process of the same name died before that); for one silent for ``STALE_BEATS``
    heartbeats, ``now_ms`` (it died at some time after it was last seen, so any of its entries
    may have lost successors). A click whose last entry a process recorded before that time
    cannot be told stuck from lost with its writer. What ``verdict(..., restarted=...)``
    takes. A process that stopped cleanly (``Journal.aclose``) is not in the table."""
    out: dict[str, float] = {}
    for name, p in table.items():
        silent = now_ms - p.seen_at_ms > STALE_BEATS * p.heartbeat_ms
        out[name] = now_ms if silent else p.started_at_ms
    return out
