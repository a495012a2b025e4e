"""Command claims in Redis, shared by every node, expiring after a TTL.

Redis is not in the command's transaction, so let ``apply`` commit its own writes before it
returns: the answer is recorded only after that. A process killed between the commit and the
record leaves a claim without an answer, which expires after ``pending_seconds`` and then lets
a retry apply the command again (twice, never lost). Recording before a transaction commits
would be worse: a failed commit would leave an answer for a command never applied. Where the
command writes to SQL, a SQL store in the same transaction has neither window.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from clicktrace._optional import require
from clicktrace.commands.retries.base import (
    DEFAULT_TTL_SECONDS,
    Answer,
    check_ttl,
    in_progress,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisRetryStore"]

_PENDING = b"pending"
# Delete the key only while it is still an unanswered claim (never a recorded answer).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
_POLL_SECONDS = 0.05


class RedisRetryStore:
    """Answers kept ``ttl_seconds``; a retry that finds the first attempt still running
    polls for its answer up to ``wait_seconds``, then gets ``409 command_in_progress``."""

    transactional = False

    def __init__(
        self,
        client: Redis | str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        pending_seconds: float = 30.0,
        wait_seconds: float = 5.0,
        prefix: str = "clicktrace:command:",
    ) -> None:
        if isinstance(client, str):
            self._redis: Redis = require("redis.asyncio", "redis").Redis.from_url(client)
        else:
            self._redis = client
        self._ttl_ms = int(check_ttl(ttl_seconds) * 1000)
        self._pending_ms = int(check_ttl(pending_seconds) * 1000)
        if wait_seconds < 0:
            raise ValueError("wait_seconds must be >= 0")
        self._polls = int(wait_seconds / _POLL_SECONDS)
        self._prefix = prefix

    async def claim(self, key: str, conn: Any = None) -> Answer | None:
        name = self._prefix + key
        if await self._redis.set(name, _PENDING, px=self._pending_ms, nx=True):
            return None
        for poll in range(self._polls + 1):
            value = await self._redis.get(name)
            if value is None:  # the first attempt released its claim (or it expired)
                if await self._redis.set(name, _PENDING, px=self._pending_ms, nx=True):
                    return None
            elif value != _PENDING:
                return _decode(value if isinstance(value, bytes) else value.encode())
            if poll < self._polls:
                await asyncio.sleep(_POLL_SECONDS)
        return in_progress()

    async def record(self, key: str, answer: Answer, conn: Any = None) -> None:
        await self._redis.set(self._prefix + key, _encode(answer), px=self._ttl_ms)

    async def release(self, key: str, conn: Any = None) -> None:
        await self._redis.eval(_RELEASE, 1, self._prefix + key, _PENDING)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _encode(answer: Answer) -> bytes:
    return json.dumps(
        {"s": answer.status, "t": answer.content_type, "b": answer.body.decode("latin-1")}
    ).encode()


def _decode(value: bytes) -> Answer:
    fields = json.loads(value)
    return Answer(int(fields["s"]), str(fields["b"]).encode("latin-1"), str(fields["t"]))
