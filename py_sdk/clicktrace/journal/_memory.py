"""The in-memory ring: the embedded default. Bounded by count and by age; when full, the
oldest entries go first, and each one that goes before its age is counted as dropped, except
that an entry of a click still open is passed over (a few at a time): a flood of clicks that
settle must not push out the stuck ones, which are the reason to keep a journal."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from clicktrace.journal._entry import BROWSER_STAGES, STAGES, Entry
from clicktrace.journal._store import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_OPEN,
    MAX_ENTRIES_PER_ID,
    MAX_PROCESSES,
    NONE,
    Process,
    settles,
)

__all__ = ["MemoryStore"]

# When the ring is full, at most this many entries of open clicks are moved to the back before
# the oldest entry goes whatever its click: the cost of one add stays bounded.
_SPARE = 8
# Server stages that neither settle a click nor reopen it.
_PLAIN = (
    frozenset(STAGES)
    - BROWSER_STAGES
    - {
        "notified",
        "accepted",
        "dead_lettered",
        "refused",
        "resent",
    }
)
# How many dead-lettered clicks the index keeps (the oldest go first).
MAX_DEAD = DEFAULT_MAX_OPEN


class MemoryStore:
    """One process's journal. ``max_entries`` bounds the whole ring, ``max_age_seconds``
    how long an entry is kept; times are taken from ``clock`` (monotonic), not from the
    entries, whose browser times may be skewed."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError("max_entries must be a positive int")
        if not max_age_seconds > 0:
            raise ValueError("max_age_seconds must be positive")
        self._max, self._age, self._clock = max_entries, max_age_seconds, clock
        self._by_id: dict[str, list[Entry]] = {}
        self._order: deque[tuple[float, str]] = deque()
        self._open: dict[str, float] = {}  # correlation id -> its first server entry (Unix ms)
        self._closed: dict[str, float] = {}  # correlation id -> its last settling entry
        self._dead: dict[str, float] = {}  # correlation id -> its last dead_lettered entry
        self._processes: dict[str, Process] = {}
        self.dropped = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._order)

    def add(self, entry: Entry) -> None:
        now = self._clock()
        order = self._order
        if order and order[0][0] < now - self._age:
            self._expire(now - self._age)
        cid = entry.correlation_id
        entries = self._by_id.get(cid)
        if entries is None:
            self._by_id[cid] = [entry]
        elif len(entries) >= MAX_ENTRIES_PER_ID:
            self.dropped += 1
            return
        else:
            entries.append(entry)
        order.append((now, cid))
        stage = entry.stage
        if stage not in BROWSER_STAGES:  # the open index: store.merge, one entry at a time
            at = entry.at
            closed = self._closed.get(cid)
            if stage in _PLAIN:  # most entries: no settle() call on the hot path
                if closed is None:
                    opened = self._open.get(cid)
                    if opened is None or at < opened:
                        self._open[cid] = at
            elif settles(entry):
                if closed is None or at > closed:
                    self._closed[cid] = at
                self._open.pop(cid, None)
            elif closed is None:
                opened = self._open.get(cid)
                if opened is None or at < opened:
                    self._open[cid] = at
            elif stage in ("accepted", "resent") and at > closed:  # a retry, a resend
                del self._closed[cid]
                self._open[cid] = at
            if stage == "dead_lettered":
                dead = self._dead
                if at > dead.get(cid, NONE):
                    dead[cid] = at
                if len(dead) > MAX_DEAD:  # rare: the oldest goes
                    del dead[min(dead, key=dead.__getitem__)]
        if len(order) > self._max:
            for _ in range(_SPARE):
                if order[0][1] not in self._open:
                    break
                order.rotate(-1)  # an open click's entry: to the back, keeping its time
            self._evict_oldest()
            self.dropped += 1

    def _evict_oldest(self) -> None:
        _, cid = self._order.popleft()
        entries = self._by_id[cid]
        del entries[0]  # a correlation id's entries are kept in the order they were added
        if not entries:
            del self._by_id[cid]
            self._open.pop(cid, None)
            self._closed.pop(cid, None)
            self._dead.pop(cid, None)

    def _expire(self, before: float) -> None:
        order = self._order
        while order and order[0][0] < before:
            self._evict_oldest()
            self.expired += 1

    async def write(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            self.add(entry)

    async def read(self, correlation_id: str) -> list[Entry]:
        self._expire(self._clock() - self._age)
        return list(self._by_id.get(correlation_id, ()))

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        self._expire(self._clock() - self._age)
        last = [(max(e.at for e in entries), cid) for cid, entries in self._by_id.items()]
        last.sort(reverse=True)
        return [cid for at, cid in last if at >= since_ms][:limit]

    async def open_clicks(self, before_ms: float, limit: int) -> tuple[list[str], int]:
        self._expire(self._clock() - self._age)
        found = sorted((at, cid) for cid, at in self._open.items() if at <= before_ms)
        return [cid for _, cid in found[: max(0, limit)]], len(found)

    async def dead_lettered(self, limit: int) -> tuple[list[str], int]:
        self._expire(self._clock() - self._age)
        found = sorted((at, cid) for cid, at in self._dead.items())
        return [cid for _, cid in found[: max(0, limit)]], len(found)

    async def register(self, process: str, info: Process) -> None:
        table = self._processes
        table.pop(process, None)
        table[process] = info  # dicts keep insertion order: the least recently seen first
        while len(table) > MAX_PROCESSES:
            del table[next(iter(table))]

    async def unregister(self, process: str) -> None:
        self._processes.pop(process, None)

    async def processes(self) -> dict[str, Process]:
        return dict(self._processes)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
