"""The replay buffer in Redis, shared by every node and worker of a cluster.

Per client: a counter ``<prefix>:seq:<client>`` (INCR gives the gap-free seq) and a sorted set
``<prefix>:buf:<client>`` scored by seq whose members are ``<ms>|<frame JSON>``. Both scripts
run atomically and read the time from Redis, so every process agrees on what has expired.
"""

from __future__ import annotations

import json
from typing import Any

from clicktrace.notify.fanout import connect_redis
from clicktrace.notify.frames import Frame
from clicktrace.notify.replay import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_SEQ_TTL_SECONDS,
    DEFAULT_TTL_SECONDS,
    check_limits,
)

__all__ = ["MAX_REDIS_FRAMES", "RedisReplayBuffer"]

MAX_REDIS_FRAMES = 4096  # the replay script returns them in one reply

_APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local member = now .. '|{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('ZADD', KEYS[2], seq, member)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return seq
"""

_SINCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if tonumber(ARGV[1]) >= current then return {current, now} end
local items = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], current)
return {current, now, unpack(items)}
"""


class RedisReplayBuffer:
    def __init__(
        self,
        redis_url: str | None = None,
        *,
        client: Any = None,
        max_frames: int = DEFAULT_MAX_FRAMES,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        seq_ttl_seconds: float = DEFAULT_SEQ_TTL_SECONDS,
        prefix: str = "clicktrace",
    ) -> None:
        check_limits(max_frames, ttl_seconds, seq_ttl_seconds)
        if max_frames > MAX_REDIS_FRAMES:
            raise ValueError(f"max_frames must be at most {MAX_REDIS_FRAMES}")
        if (redis_url is None) == (client is None):
            raise ValueError("give redis_url or client")
        self._owns = redis_url is not None
        self._redis = connect_redis(redis_url) if redis_url is not None else client
        self._max = max_frames
        self._ttl_ms = int(ttl_seconds * 1000)
        self._seq_ttl_ms = int(seq_ttl_seconds * 1000)
        self._prefix = prefix
        self._append = self._redis.register_script(_APPEND)
        self._since = self._redis.register_script(_SINCE)

    def _keys(self, client_id: str) -> list[str]:
        return [f"{self._prefix}:seq:{client_id}", f"{self._prefix}:buf:{client_id}"]

    async def append(self, client_id: str, frame: Frame) -> Frame:
        body = json.dumps(frame, separators=(",", ":"))
        if not body.startswith("{") or body == "{}":
            raise ValueError("a frame is a non-empty JSON object")
        seq = await self._append(keys=self._keys(client_id),
                                 args=[body, self._max, self._ttl_ms, self._seq_ttl_ms])
        return {"seq": int(seq), **frame}

    async def since(self, client_id: str, last_seq: int) -> list[Frame] | None:
        reply = await self._since(keys=self._keys(client_id), args=[last_seq])
        current, now, items = int(reply[0]), int(reply[1]), reply[2:]
        if last_seq > current:
            return None  # the client saw seqs this buffer never gave
        if last_seq == current:
            return []
        frames: list[Frame] = []
        for item in items:
            text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
            stamp, _, body = text.partition("|")
            if int(stamp) <= now - self._ttl_ms:
                continue  # expired: replay must then fail below, never skip silently
            frames.append(json.loads(body))
        expected = list(range(last_seq + 1, current + 1))
        if [f["seq"] for f in frames] != expected:
            return None
        return frames

    async def current(self, client_id: str) -> int:
        value = await self._redis.get(self._keys(client_id)[0])
        return int(value) if value is not None else 0

    async def aclose(self) -> None:
        if self._owns:
            await self._redis.aclose()
