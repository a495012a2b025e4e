"""A token bucket per key (client id, peer address), bounded in memory.

The routes that face the browser (session, span ingest) key one limiter on the verified client
and another on the peer address: sessions are free to mint, so a per-client limit alone is
multiplied by every session a sender mints; the per-peer one is not.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_TRACKED_KEYS", "RateLimit", "RateLimiter"]

MAX_TRACKED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``per_second`` units (requests, spans) on average, with bursts of up to ``burst``."""

    per_second: float = 2.0
    burst: int = 20

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1:
            raise ValueError("RateLimit needs per_second > 0 and burst >= 1")


class RateLimiter:
    """Not thread-safe: one per event loop, which is how the routes use it."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._limit = limit
        self._clock = clock
        self._max_keys = max_keys
        # key -> (tokens, time of last refill); oldest-used first, so eviction is O(1).
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def limit(self) -> RateLimit:
        return self._limit

    def allow(self, key: str, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket; ``False`` (taking none) when it has
        fewer. A cost above the burst is never allowed."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self._limit.burst), now))
        tokens = min(self._limit.burst, tokens + (now - last) * self._limit.per_second)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        # Forgetting the least recently seen key only ever gives it a fresh (full) bucket.
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return allowed
