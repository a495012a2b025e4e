"""The replay buffer in Redis, shared by every node and worker of a cluster.

Per client: a counter ``<prefix>:seq:<client>`` (INCR gives the gap-free seq), the name of
that counter's numbering ``<prefix>:epoch:<client>`` (made afresh whenever the counter is
created, so a flushed or expired counter never reuses seqs under the old name), and a sorted
set ``<prefix>:buf:<client>`` scored by seq whose members are ``<ms>|<frame JSON>``. The
scripts run atomically and read the time from Redis, so every process agrees on what has
expired.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from clicktrace.ids import new_id
from clicktrace.notify.fanout import connect_redis, import_redis
from clicktrace.notify.frames import Frame
from clicktrace.notify.replay import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_SEQ_TTL_SECONDS,
    DEFAULT_TTL_SECONDS,
    check_limits,
)

__all__ = ["MAX_REDIS_FRAMES", "RedisReplayBuffer"]

MAX_REDIS_FRAMES = 4096  # the replay script returns them in one reply

# ARGV: frame JSON, max frames, frame ttl ms, seq ttl ms, a fresh epoch (used if none).
_APPEND = """
local existed = redis.call('EXISTS', KEYS[1])
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local epoch = false
if existed == 1 then epoch = redis.call('GET', KEYS[3]) end
if not epoch then epoch = ARGV[5] end
redis.call('SET', KEYS[3], epoch, 'PX', ARGV[4])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local member = now .. '|{"seq":' .. seq .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
redis.call('ZADD', KEYS[2], seq, member)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {seq, epoch}
"""

# ARGV: last seq, the client's epoch ('' when it sent none), seq ttl ms, a fresh epoch.
# Reply: {current, now, epoch, replayable (0/1), members...}. A resync names the numbering
# to continue in, so one is made (with the counter at 0) for a client that has none.
_SINCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = redis.call('GET', KEYS[3])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local last = tonumber(ARGV[1])
if last > current or (ARGV[2] ~= '' and ARGV[2] ~= epoch) then
  if not epoch then
    epoch = ARGV[4]
    redis.call('SET', KEYS[1], current, 'PX', ARGV[3])
    redis.call('SET', KEYS[3], epoch, 'PX', ARGV[3])
  end
  return {current, now, epoch, 0}
end
if last >= current then return {current, now, epoch or '', 1} end
local items = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], current)
return {current, now, epoch or '', 1, unpack(items)}
"""


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _no_script_error() -> type[Exception]:
    import_redis()  # the hint, if redis is missing
    from redis.exceptions import NoScriptError

    return NoScriptError


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
        self._since = self._redis.register_script(_SINCE)
        self._append_sha: str | None = None
        self._no_script = _no_script_error()
        self._pending: list[tuple[str, str, asyncio.Future[tuple[int, str]]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    def _keys(self, client_id: str) -> list[str]:
        p = self._prefix
        return [f"{p}:seq:{client_id}", f"{p}:buf:{client_id}", f"{p}:epoch:{client_id}"]

    async def append(self, client_id: str, frame: Frame) -> Frame:
        body = json.dumps(frame, separators=(",", ":"))
        if not body.startswith("{") or body == "{}":
            raise ValueError("a frame is a non-empty JSON object")
        # Appends made in the same event-loop turn go to Redis in one pipeline: under load one
        # round trip serves many notifications, and INCR still runs in call order.
        future: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._pending.append((client_id, body, future))
        if len(self._pending) == 1:
            task = asyncio.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        seq, epoch = await future
        return {"seq": seq, "epoch": epoch, **frame}

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let this turn's other appends join the batch
        batch, self._pending = self._pending, []
        try:
            replies = await self._run_appends(batch)
        except Exception as exc:
            replies = [exc] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue  # the caller was cancelled; its frame is stored all the same
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result((int(reply[0]), _text(reply[1])))

    async def _run_appends(
        self, batch: list[tuple[str, str, asyncio.Future[tuple[int, str]]]]
    ) -> list[Any]:
        fresh = new_id()  # the epoch of any counter this batch creates (unique per client)
        for attempt in range(2):
            if self._append_sha is None:
                self._append_sha = await self._redis.script_load(_APPEND)
            pipe = self._redis.pipeline(transaction=False)
            for client_id, body, _ in batch:
                pipe.evalsha(
                    self._append_sha,
                    3,
                    *self._keys(client_id),
                    body,
                    self._max,
                    self._ttl_ms,
                    self._seq_ttl_ms,
                    fresh,
                )
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            # NOSCRIPT (Redis restarted or flushed its scripts) fails every command alike,
            # before any ran: load the script again and resend the batch once.
            if attempt == 0 and any(isinstance(r, self._no_script) for r in replies):
                self._append_sha = None
                continue
            return replies
        raise RuntimeError("unreachable")  # pragma: no cover

    async def since(
        self, client_id: str, last_seq: int, epoch: str | None = None
    ) -> list[Frame] | None:
        reply = await self._since(
            keys=self._keys(client_id), args=[last_seq, epoch or "", self._seq_ttl_ms, new_id()]
        )
        current, now, replayable, items = int(reply[0]), int(reply[1]), int(reply[3]), reply[4:]
        if not replayable:
            return None  # seqs this numbering never gave, or of another numbering
        if last_seq == current:
            return []
        frames: list[Frame] = []
        for item in items:
            stamp, _, body = _text(item).partition("|")
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

    async def epoch(self, client_id: str) -> str:
        # since() made one whenever it asked for a resync; a counter of an older version
        # without one gets it here.
        epoch_key = self._keys(client_id)[2]
        value = await self._redis.get(epoch_key)
        if value is None:
            await self._redis.set(epoch_key, new_id(), px=self._seq_ttl_ms, nx=True)
            value = await self._redis.get(epoch_key)
        return _text(value) if value is not None else ""

    async def aclose(self) -> None:
        await asyncio.gather(*self._flushes, return_exceptions=True)  # let batches finish
        if self._owns:
            await self._redis.aclose()
