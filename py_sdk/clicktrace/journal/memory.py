"""The in-memory ring: the embedded default. Bounded by count and by age; when full, the
oldest entries go first, and each one that goes before its age is counted as dropped."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from clicktrace.journal.entry import Entry
from clicktrace.journal.store import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ENTRIES,
    MAX_ENTRIES_PER_ID,
)

__all__ = ["MemoryStore"]


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
        if len(order) > self._max:
            self._evict_oldest()
            self.dropped += 1

    def _evict_oldest(self) -> None:
        _, cid = self._order.popleft()
        entries = self._by_id[cid]
        del entries[0]  # a correlation id's entries are kept in the order they were added
        if not entries:
            del self._by_id[cid]

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

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
