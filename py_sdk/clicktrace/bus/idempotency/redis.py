"""Processed message ids in Redis, expiring after a TTL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clicktrace._optional import require
from clicktrace.bus.idempotency.outcome import Outcome, decode_outcome, encode_outcome

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisIdempotency"]


class RedisIdempotency:
    """A :class:`~clicktrace.bus.types.Dedupe` shared by every consumer process.

    The record is written after the handler succeeds, so a crash between the handler and
    the record lets the message be handled again: use a SQL store in the handler's
    transaction where a second application would be wrong. ``record_outcome`` keeps the
    outcome in the claimed key (its TTL unchanged), for the same reason as the SQL stores, but
    it is a command of its own: a crash between the write and it loses the outcome.
    """

    def __init__(
        self,
        client: Redis | str,
        *,
        ttl_seconds: int = 7 * 24 * 3600,
        prefix: str = "clicktrace:done:",
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be >= 1")
        if isinstance(client, str):
            self._redis: Redis = require("redis.asyncio", "redis").Redis.from_url(client)
        else:
            self._redis = client
        self._ttl = ttl_seconds
        self._prefix = prefix

    def _key(self, consumer: str, message_id: str) -> str:
        return f"{self._prefix}{consumer}:{message_id}"

    async def seen(self, consumer: str, message_id: str) -> bool:
        return bool(await self._redis.exists(self._key(consumer, message_id)))

    async def remember(self, consumer: str, message_id: str) -> None:
        await self._redis.set(self._key(consumer, message_id), b"1", ex=self._ttl)

    async def claim(self, consumer: str, message_id: str) -> bool:
        """Record it now; False when it was already there (for handlers that claim first)."""
        key = self._key(consumer, message_id)
        return bool(await self._redis.set(key, b"1", ex=self._ttl, nx=True))

    async def claimed(self, conn: Any, consumer: str, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` ``consumer`` has claimed, in one round trip (``conn`` is
        ignored: the same call shape as the SQL stores, for the outbox's reconciler)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.exists(self._key(consumer, message_id))
            found = await pipe.execute()
        return {m for m, there in zip(message_ids, found, strict=True) if there}

    async def record_outcome(self, consumer: str, message_id: str, outcome: Outcome) -> None:
        await self._redis.set(
            self._key(consumer, message_id), encode_outcome(outcome), xx=True, keepttl=True
        )

    async def recorded_outcome(self, consumer: str, message_id: str) -> Outcome | None:
        return decode_outcome(await self._redis.get(self._key(consumer, message_id)))

    async def aclose(self) -> None:
        await self._redis.aclose()
