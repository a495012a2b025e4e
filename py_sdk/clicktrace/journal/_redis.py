"""The journal in Redis, shared by every process of the app: one list per correlation id
(capped, expiring after ``max_age_seconds``), one sorted set of ids by last activity, capped at
``max_ids`` (the least recently active ids go first, counted as dropped; a click still open is
passed over while a settled one can go instead), and the open-click index: a sorted set of the
clicks not yet settled by the time they opened, with a sorted set of settle times beside it
(store.merge says how entries move a click between the two), and the dead-letter index, a
sorted set of the clicks with a dead letter by its time. The process table is a hash."""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clicktrace._optional import require
from clicktrace.journal._entry import Entry
from clicktrace.journal._store import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_OPEN,
    MAX_ENTRIES_PER_ID,
    MAX_PROCESSES,
    NONE,
    Marks,
    Process,
    dead_letters,
    decode_many,
    encode,
    marks,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DEFAULT_MAX_IDS", "RedisStore"]

DEFAULT_MAX_IDS = 100_000
_ID, _HEAD, _LEN = struct.Struct(">H"), struct.Struct(">dIddd"), struct.Struct(">I")
_NO_MARKS: Marks = (NONE, NONE, NONE)
# KEYS: the sorted set of ids by activity, the open index, the settle times. ARGV: ttl, per-id
# cap, max ids, key prefix, the batch as one framed string (per id: id length, id, last time,
# count, first server time, last settle, last 202, then per entry: length, bytes), now (Unix
# ms), max open. One argument, not one per entry: redis-py's client cost is per argument.
# Returns {ids evicted, open clicks cut}.
_WRITE = """
local ttl, cap, max_ids, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local blob, pos = ARGV[5], 1
local now, max_open = tonumber(ARGV[6]), tonumber(ARGV[7])
local recent, open, settled = KEYS[1], KEYS[2], KEYS[3]
local function ms(t) return string.format('%.3f', t) end
while pos <= #blob do
  local idlen, at, n, first, settle, accept
  idlen, pos = struct.unpack('>I2', blob, pos)
  local cid = string.sub(blob, pos, pos + idlen - 1)
  at, n, first, settle, accept, pos = struct.unpack('>dI4ddd', blob, pos + idlen)
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
  redis.call('ZADD', recent, 'GT', ms(at), cid)
  if first >= 0 then
    local closed = tonumber(redis.call('ZSCORE', settled, cid))
    if settle >= 0 and (not closed or settle > closed) then
      closed = settle
      redis.call('ZADD', settled, ms(settle), cid)
    end
    if not closed then
      redis.call('ZADD', open, 'LT', ms(first), cid)
    elseif accept >= 0 and accept > closed then
      redis.call('ZREM', settled, cid)
      redis.call('ZADD', open, ms(accept), cid)
    else
      redis.call('ZREM', open, cid)
    end
  end
end
local horizon = '(' .. ms(now - ttl * 1000)
redis.call('ZREMRANGEBYSCORE', open, '-inf', horizon)
redis.call('ZREMRANGEBYSCORE', settled, '-inf', horizon)
for _, k in ipairs(KEYS) do redis.call('EXPIRE', k, ttl) end
local evicted, cut = 0, 0
local excess = redis.call('ZCARD', recent) - max_ids
if excess > 0 then
  local seen = redis.call('ZRANGE', recent, 0, excess * 4 + 63)
  local victims, kept = {}, {}
  for _, c in ipairs(seen) do
    if #victims >= excess then break end
    if redis.call('ZSCORE', open, c) then kept[#kept + 1] = c else victims[#victims + 1] = c end
  end
  for _, c in ipairs(kept) do
    if #victims >= excess then break end
    victims[#victims + 1] = c
    cut = cut + 1
  end
  for _, c in ipairs(victims) do
    redis.call('ZREM', recent, c)
    redis.call('ZREM', open, c)
    redis.call('ZREM', settled, c)
    redis.call('ZREM', KEYS[4], c)
    redis.call('DEL', prefix .. c)
  end
  evicted = #victims
end
local over = redis.call('ZCARD', open) - max_open
if over > 0 then
  redis.call('ZPOPMIN', open, over)
  cut = cut + over
end
over = redis.call('ZCARD', settled) - max_open
if over > 0 then redis.call('ZPOPMIN', settled, over) end
return {evicted, cut}
"""


class RedisStore:
    """``RedisStore("redis://localhost:6379/0", prefix="clicktrace:journal")``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "clicktrace:journal",
        max_ids: int = DEFAULT_MAX_IDS,
        max_open: int = DEFAULT_MAX_OPEN,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        timeout: float = 2.0,
    ) -> None:
        self._redis = require("redis.asyncio", "redis")
        if max_ids < 1 or max_open < 1 or not max_age_seconds > 0 or not timeout > 0:
            raise ValueError("max_ids, max_open, max_age_seconds and timeout must be positive")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("the key prefix must be a non-empty str")
        self._url, self._prefix = url, prefix
        self._max_ids, self._max_open, self._ttl = max_ids, max_open, max(1, int(max_age_seconds))
        self._timeout = timeout
        self._client_: Redis | None = None
        self._script: Any = None
        self.dropped = 0
        self.open_dropped = 0
        """Open clicks taken out of the index before their age (its bound was reached)."""

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
        index = marks(entries)
        parts: list[bytes] = []
        for cid, rows in by_id.items():
            raw = cid.encode()
            m = index.get(cid, _NO_MARKS)
            parts.append(_ID.pack(len(raw)) + raw + _HEAD.pack(last[cid], len(rows), *m))
            for row in rows:
                parts.append(_LEN.pack(len(row)))
                parts.append(row)
        args = [
            self._ttl,
            MAX_ENTRIES_PER_ID,
            self._max_ids,
            f"{self._prefix}:",
            b"".join(parts),
            f"{time.time() * 1000.0:.3f}",
            self._max_open,
        ]
        if self._script is None:
            self._script = self._client.register_script(_WRITE)
        p = self._prefix
        counts: Any = await self._script(
            keys=[f"{p}:recent", f"{p}:open", f"{p}:settled", f"{p}:dead"], args=args
        )
        self.dropped += int(counts[0])
        self.open_dropped += int(counts[1])
        dead = dead_letters(entries)
        if dead:  # rare: beside the script, which an index of dead letters need not slow
            key = f"{p}:dead"
            horizon = f"({time.time() * 1000.0 - self._ttl * 1000.0:.3f}"
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.zadd(key, dead, gt=True)
                pipe.zremrangebyscore(key, "-inf", horizon)
                pipe.zremrangebyrank(key, 0, -(self._max_open + 1))
                pipe.expire(key, self._ttl)
                await pipe.execute()

    async def read(self, correlation_id: str) -> list[Entry]:
        rows: Any = await self._client.lrange(self._key(correlation_id), 0, -1)
        return decode_many(list(rows))

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        ids: Any = await self._client.zrevrangebyscore(
            f"{self._prefix}:recent", "+inf", since_ms, start=0, num=limit
        )
        return [_text(cid) for cid in ids]

    async def open_clicks(self, before_ms: float, limit: int) -> tuple[list[str], int]:
        key = f"{self._prefix}:open"
        # Entries past the age are gone even if no write has pruned the index since.
        horizon = f"({time.time() * 1000.0 - self._ttl * 1000.0:.3f}"
        upto = f"{before_ms:.3f}"
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(key, horizon, upto, start=0, num=max(0, limit))
            pipe.zcount(key, horizon, upto)
            ids, total = await pipe.execute()
        return ([_text(cid) for cid in ids] if limit > 0 else []), int(total)

    async def dead_lettered(self, limit: int) -> tuple[list[str], int]:
        key = f"{self._prefix}:dead"
        horizon = f"{time.time() * 1000.0 - self._ttl * 1000.0:.3f}"
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(key, horizon, "+inf", start=0, num=max(0, limit))
            pipe.zcount(key, horizon, "+inf")
            ids, total = await pipe.execute()
        return ([_text(cid) for cid in ids] if limit > 0 else []), int(total)

    async def register(self, process: str, info: Process) -> None:
        key = f"{self._prefix}:processes"
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hset(key, process, ",".join(f"{x:.3f}" for x in info))
            pipe.expire(key, self._ttl)
            pipe.hlen(key)
            _, _, size = await pipe.execute()
        if int(size) > MAX_PROCESSES:  # rare: drop the longest silent
            table = await self.processes()
            by_seen = sorted(table, key=lambda name: table[name].seen_at_ms)
            await self._client.hdel(key, *by_seen[: len(table) - MAX_PROCESSES])

    async def unregister(self, process: str) -> None:
        await self._client.hdel(f"{self._prefix}:processes", process)

    async def processes(self) -> dict[str, Process]:
        raw: Any = await self._client.hgetall(f"{self._prefix}:processes")
        table: dict[str, Process] = {}
        for name, value in raw.items():
            try:
                started, seen, beat = (float(x) for x in _text(value).split(","))
            except ValueError:  # a field some other writer put there
                continue
            table[_text(name)] = Process(started, seen, beat)
        return table

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        client, self._client_, self._script = self._client_, None, None
        if client is not None:
            await client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
