"""Claims in Redis, shared by every node and consumer, expiring on their own.

Redis is not in the caller's transaction, so a claim and its answer are two commands. A claim
without an answer expires after ``pending_seconds``: a process killed between the two lets a
retry (or a redelivery) do the work again, twice rather than never. Let the work commit
before the answer is kept: keeping it before a commit that then fails would leave an answer
for something never done. Where the work writes to SQL, a SQL backend in the same
transaction has neither window. An answered claim holds ``keep_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clicktrace._optional import require
from clicktrace.claims._base import DEFAULT_KEEP_SECONDS, ClaimsBase, check_keep

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisClaims"]

_PENDING = b"pending"
_ANSWERED = b"="  # an answer is kept behind this byte: it can never read as _PENDING
# Delete the key only while it is still an unanswered claim (never a kept answer).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


class RedisClaims(ClaimsBase):
    """Keys ``<prefix><scope>:<key>``. Also a bus :class:`~clicktrace.bus.Dedupe`
    (``subscribe(..., dedupe=claims)``): the bus asks ``seen`` before the handler and
    ``remember`` after it succeeds, so a crash between the two lets the message be handled
    again (use a SQL backend in the handler's transaction where that would be wrong)."""

    transactional = False

    def __init__(
        self,
        client: Redis | str,
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        pending_seconds: float = 30.0,
        prefix: str = "clicktrace:claims:",
    ) -> None:
        self._keep_ms = int(check_keep(keep_seconds) * 1000)
        if isinstance(pending_seconds, bool) or not pending_seconds > 0:
            raise ValueError("pending_seconds must be > 0")
        self._pending_ms = int(pending_seconds * 1000)
        if isinstance(client, str):
            self._redis: Redis = require("redis.asyncio", "redis").Redis.from_url(client)
        else:
            self._redis = client
        self._prefix = prefix

    def _name(self, scope: str, key: str) -> str:
        return f"{self._prefix}{scope}:{key}"

    async def claim(self, conn: Any, scope: str, key: str) -> bool:
        name = self._name(scope, key)
        return bool(await self._redis.set(name, _PENDING, px=self._pending_ms, nx=True))

    async def keep(self, conn: Any, scope: str, key: str, answer: bytes) -> None:
        # xx: a claim that expired (or was never made) is not brought back by its answer.
        await self._redis.set(self._name(scope, key), _ANSWERED + answer, px=self._keep_ms, xx=True)

    async def kept(self, conn: Any, scope: str, key: str) -> bytes | None:
        value = await self._redis.get(self._name(scope, key))
        if value is None:
            return None
        if isinstance(value, str):
            value = value.encode()
        return value[1:] if value.startswith(_ANSWERED) else None

    async def release(self, conn: Any, scope: str, key: str) -> None:
        await self._redis.eval(_RELEASE, 1, self._name(scope, key), _PENDING)

    async def claimed(self, conn: Any, scope: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are claimed, in one round trip (``conn`` is ignored: the same
        call shape as the SQL backends, for the outbox's reconciler)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(self._name(scope, key))
            found = await pipe.execute()
        return {key for key, there in zip(keys, found, strict=True) if there}

    async def seen(self, consumer: str, message_id: str) -> bool:
        return bool(await self._redis.exists(self._name(consumer, message_id)))

    async def remember(self, consumer: str, message_id: str) -> None:
        await self._redis.set(self._name(consumer, message_id), _ANSWERED, px=self._keep_ms)

    async def aclose(self) -> None:
        await self._redis.aclose()
