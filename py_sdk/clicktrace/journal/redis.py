"""The journal in Redis, shared by every process of the app: one list per correlation id
(capped, expiring after ``max_age_seconds``) and one sorted set of ids by last activity,
capped at ``max_ids`` (the least recently active ids go first, counted as dropped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clicktrace.bus._optional import require
from clicktrace.journal.codec import decode_many, encode
from clicktrace.journal.entry import Entry
from clicktrace.journal.store import DEFAULT_MAX_AGE_SECONDS, MAX_ENTRIES_PER_ID

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DEFAULT_MAX_IDS", "RedisStore"]

DEFAULT_MAX_IDS = 20_000


class RedisStore:
    """``RedisStore("redis://localhost:6379/0", prefix="clicktrace:journal")``."""

    def __init__(
        self, url: str, *, prefix: str = "clicktrace:journal", max_ids: int = DEFAULT_MAX_IDS,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS, timeout: float = 2.0,
    ) -> None:
        self._redis = require("redis.asyncio", "redis")
        if max_ids < 1 or not max_age_seconds > 0 or not timeout > 0:
            raise ValueError("max_ids, max_age_seconds and timeout must be positive")
        self._url, self._prefix = url, prefix
        self._max_ids, self._ttl = max_ids, max(1, int(max_age_seconds))
        self._timeout = timeout
        self._client_: Redis | None = None
        self.dropped = 0

    @property
    def _client(self) -> Redis:
        if self._client_ is None:
            # Short timeouts: a Redis that hangs must cost the writer a batch, not stall it.
            self._client_ = self._redis.Redis.from_url(
                self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout)
        return self._client_

    def _key(self, correlation_id: str) -> str:
        return f"{self._prefix}:{correlation_id}"

    async def write(self, entries: Sequence[Entry]) -> None:
        recent = f"{self._prefix}:recent"
        last: dict[str, float] = {}
        pipe: Any = self._client.pipeline(transaction=False)
        for e in entries:
            pipe.rpush(self._key(e.correlation_id), encode(e))
            last[e.correlation_id] = max(e.at, last.get(e.correlation_id, 0.0))
        for cid in last:
            key = self._key(cid)
            pipe.ltrim(key, 0, MAX_ENTRIES_PER_ID - 1)
            pipe.expire(key, self._ttl)
        pipe.zadd(recent, last, gt=True)
        pipe.expire(recent, self._ttl)
        pipe.zcard(recent)
        results = await pipe.execute()
        excess = int(results[-1]) - self._max_ids
        if excess > 0:
            oldest: Any = await self._client.zpopmin(recent, excess)
            if oldest:
                await self._client.delete(*(self._key(_text(cid)) for cid, _ in oldest))
                self.dropped += len(oldest)

    async def read(self, correlation_id: str) -> list[Entry]:
        rows: Any = await self._client.lrange(self._key(correlation_id), 0, -1)
        return decode_many(list(rows))

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        ids: Any = await self._client.zrevrangebyscore(
            f"{self._prefix}:recent", "+inf", since_ms, start=0, num=limit)
        return [_text(cid) for cid in ids]

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        client, self._client_ = self._client_, None
        if client is not None:
            await client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
