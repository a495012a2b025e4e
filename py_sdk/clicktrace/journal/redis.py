"""The journal in Redis, shared by every process of the app: one list per correlation id
(capped, expiring after ``max_age_seconds``) and one sorted set of ids by last activity,
capped at ``max_ids`` (the least recently active ids go first, counted as dropped)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clicktrace._optional import require
from clicktrace.journal.codec import decode_many, encode
from clicktrace.journal.entry import Entry
from clicktrace.journal.store import DEFAULT_MAX_AGE_SECONDS, MAX_ENTRIES_PER_ID

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DEFAULT_MAX_IDS", "RedisStore"]

DEFAULT_MAX_IDS = 20_000
_ID, _HEAD, _LEN = struct.Struct(">H"), struct.Struct(">dI"), struct.Struct(">I")
# KEYS[1] the sorted set of ids; ARGV: ttl, per-id cap, max ids, key prefix, and the batch as
# one framed string (per id: id length, id, last time, count, then per entry: length, bytes).
# One argument, not one per entry: redis-py's client cost is per argument. Returns how many
# ids were evicted (oldest activity first).
_WRITE = """
local ttl, cap, max_ids, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local blob, pos = ARGV[5], 1
while pos <= #blob do
  local idlen, at, n
  idlen, pos = struct.unpack('>I2', blob, pos)
  local cid = string.sub(blob, pos, pos + idlen - 1)
  at, n, pos = struct.unpack('>dI4', blob, pos + idlen)
  local rows = {}
  for j = 1, n do
    local len
    len, pos = struct.unpack('>I4', blob, pos)
    rows[j] = string.sub(blob, pos, pos + len - 1)
    pos = pos + len
  end
  local key = prefix .. cid
  redis.call('RPUSH', key, unpack(rows))
  redis.call('LTRIM', key, 0, cap - 1)
  redis.call('EXPIRE', key, ttl)
  redis.call('ZADD', KEYS[1], 'GT', string.format('%.3f', at), cid)
end
redis.call('EXPIRE', KEYS[1], ttl)
local excess = redis.call('ZCARD', KEYS[1]) - max_ids
if excess > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[1], excess)
  for j = 1, #gone, 2 do redis.call('DEL', prefix .. gone[j]) end
  return excess
end
return 0
"""


class RedisStore:
    """``RedisStore("redis://localhost:6379/0", prefix="clicktrace:journal")``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "clicktrace:journal",
        max_ids: int = DEFAULT_MAX_IDS,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        timeout: float = 2.0,
    ) -> None:
        self._redis = require("redis.asyncio", "redis")
        if max_ids < 1 or not max_age_seconds > 0 or not timeout > 0:
            raise ValueError("max_ids, max_age_seconds and timeout must be positive")
        self._url, self._prefix = url, prefix
        self._max_ids, self._ttl = max_ids, max(1, int(max_age_seconds))
        self._timeout = timeout
        self._client_: Redis | None = None
        self._script: Any = None
        self.dropped = 0

    @property
    def _client(self) -> Redis:
        if self._client_ is None:
            # Short timeouts: a Redis that hangs must cost the writer a batch, not stall it.
            self._client_ = self._redis.Redis.from_url(
                self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
        return self._client_

    def _key(self, correlation_id: str) -> str:
        return f"{self._prefix}:{correlation_id}"

    async def write(self, entries: Sequence[Entry]) -> None:
        # One script call per batch: redis-py's cost is per command, and a batch of N ids
        # would otherwise be 3N + 2 of them.
        by_id: dict[str, list[bytes]] = {}
        last: dict[str, float] = {}
        for e in entries:
            by_id.setdefault(e.correlation_id, []).append(encode(e))
            if e.at > last.get(e.correlation_id, -1.0):
                last[e.correlation_id] = e.at
        parts: list[bytes] = []
        for cid, rows in by_id.items():
            raw = cid.encode()
            parts.append(_ID.pack(len(raw)) + raw + _HEAD.pack(last[cid], len(rows)))
            for row in rows:
                parts.append(_LEN.pack(len(row)))
                parts.append(row)
        args = [self._ttl, MAX_ENTRIES_PER_ID, self._max_ids, f"{self._prefix}:", b"".join(parts)]
        if self._script is None:
            self._script = self._client.register_script(_WRITE)
        evicted: Any = await self._script(keys=[f"{self._prefix}:recent"], args=args)
        self.dropped += int(evicted)

    async def read(self, correlation_id: str) -> list[Entry]:
        rows: Any = await self._client.lrange(self._key(correlation_id), 0, -1)
        return decode_many(list(rows))

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        ids: Any = await self._client.zrevrangebyscore(
            f"{self._prefix}:recent", "+inf", since_ms, start=0, num=limit
        )
        return [_text(cid) for cid in ids]

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        client, self._client_, self._script = self._client_, None, None
        if client is not None:
            await client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
