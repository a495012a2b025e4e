"""Per-client sequence numbers and a bounded, time-limited replay buffer: in memory for one
node, in Redis for a cluster; :class:`Replay` chooses one.

``append`` gives a frame the client's next ``seq`` (gap-free, from 1) and its ``epoch``, and
keeps it; ``since`` returns what a reconnecting client missed, in order, or ``None`` when the
buffer no longer covers the gap (the client must resync). The epoch names the numbering: a
buffer that lost a client's counter (a restarted process, a flushed Redis) starts a new one,
so a client presenting seqs of another epoch is told to resync instead of having its next
outcomes skipped as already seen.

In Redis, per client: a counter ``<prefix>:seq:<client>`` (INCR gives the gap-free seq), the
name of that counter's numbering ``<prefix>:epoch:<client>`` (made afresh whenever the counter
is created, so a flushed or expired counter never reuses seqs under the old name), and a sorted
set ``<prefix>:buf:<client>`` scored by seq whose members are ``<ms>|<frame JSON>``. The
scripts run atomically and read the time from Redis, so every process agrees on what has
expired.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from clicktrace._optional import require
from clicktrace.ids import new_id
from clicktrace.notify._frames import Notification, decode, encode

REDIS_CONNECTIONS = 50


def import_redis() -> Any:
    return require("redis.asyncio", "redis")


def connect_redis(url: str) -> Any:
    """A client whose pool waits for a free connection instead of failing: a burst of
    concurrent ``notify`` calls must queue, not raise "Too many connections"."""
    redis_asyncio = import_redis()
    pool = redis_asyncio.BlockingConnectionPool.from_url(url, max_connections=REDIS_CONNECTIONS)
    return redis_asyncio.Redis.from_pool(pool)


DEFAULT_MAX_FRAMES = 256


DEFAULT_TTL_SECONDS = 300.0


# A client's seq counter outlives its frames (as long as its token may), so a tab that comes
# back after the frames expired is told to resync instead of seeing seq restart at 1.
DEFAULT_SEQ_TTL_SECONDS = 86400.0


class ReplayBuffer(Protocol):
    async def append(self, client_id: str, frame: Notification) -> Notification:
        """``frame`` with the client's next ``seq`` added, kept for replay."""
        ...

    async def since(
        self, client_id: str, last_seq: int, epoch: str | None = None
    ) -> list[Notification] | None:
        """Notifications after ``last_seq`` in order, or ``None`` if they can no longer be replayed
        (also when ``epoch`` is given and is not the client's current one)."""
        ...

    async def current(self, client_id: str) -> int:
        """The last ``seq`` given to the client (0 when none)."""
        ...

    async def epoch(self, client_id: str) -> str:
        """The name of the client's current numbering (made now if it has none)."""
        ...

    async def aclose(self) -> None: ...


def check_limits(max_frames: int, ttl_seconds: float, seq_ttl_seconds: float) -> None:
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise ValueError("max_frames must be a positive int")
    if not ttl_seconds > 0 or not seq_ttl_seconds >= ttl_seconds:
        raise ValueError("need 0 < ttl_seconds <= seq_ttl_seconds")


def _seq(frame: Notification) -> int:
    return frame.seq or 0  # a stored frame always has one


@dataclass(slots=True)
class _Client:
    seq: int = 0
    touched: float = 0.0
    epoch: str = field(default_factory=new_id)  # each new counter is a new numbering
    frames: deque[tuple[float, Notification]] = field(default_factory=deque)


class MemoryReplayBuffer:
    """One node's buffer. Not shared between processes."""

    def __init__(
        self,
        max_frames: int = DEFAULT_MAX_FRAMES,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        seq_ttl_seconds: float = DEFAULT_SEQ_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_limits(max_frames, ttl_seconds, seq_ttl_seconds)
        self._max = max_frames
        self._ttl = ttl_seconds
        self._seq_ttl = seq_ttl_seconds
        self._clock = clock
        self._clients: dict[str, _Client] = {}
        self._next_sweep = clock() + ttl_seconds

    def _prune(self, state: _Client, now: float) -> None:
        frames = state.frames
        while frames and (len(frames) > self._max or frames[0][0] <= now - self._ttl):
            frames.popleft()

    def _sweep(self, now: float) -> None:
        # Amortised: forget idle clients and expired frames at most once per ttl.
        self._next_sweep = now + self._ttl
        for cid in list(self._clients):
            state = self._clients[cid]
            self._prune(state, now)
            if state.touched <= now - self._seq_ttl:
                del self._clients[cid]

    async def append(self, client_id: str, frame: Notification) -> Notification:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        state = self._state(client_id, now)
        state.seq += 1
        stamped = msgspec.structs.replace(frame, seq=state.seq, epoch=state.epoch)
        state.frames.append((now, stamped))
        self._prune(state, now)
        return stamped

    def _state(self, client_id: str, now: float) -> _Client:
        state = self._clients.get(client_id)
        if state is None:
            state = self._clients[client_id] = _Client()
        state.touched = now
        return state

    async def since(
        self, client_id: str, last_seq: int, epoch: str | None = None
    ) -> list[Notification] | None:
        state = self._clients.get(client_id)
        current = 0 if state is None else state.seq
        if epoch is not None and (state is None or epoch != state.epoch):
            return None  # seqs of another numbering (this process restarted, or forgot it)
        if last_seq > current:
            return None  # the client saw seqs this buffer never gave (e.g. a restart)
        if state is None or last_seq == current:
            return []
        self._prune(state, self._clock())
        if not state.frames or _seq(state.frames[0][1]) > last_seq + 1:
            return None
        return [f for _, f in state.frames if _seq(f) > last_seq]

    async def current(self, client_id: str) -> int:
        state = self._clients.get(client_id)
        return 0 if state is None else state.seq

    async def epoch(self, client_id: str) -> str:
        return self._state(client_id, self._clock()).epoch

    async def aclose(self) -> None:
        self._clients.clear()


# The buffer in Redis, shared by every node and worker of a cluster.

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
        self._pending: list[tuple[str, bytes, asyncio.Future[tuple[int, str]]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    def _keys(self, client_id: str) -> list[str]:
        p = self._prefix
        return [f"{p}:seq:{client_id}", f"{p}:buf:{client_id}", f"{p}:epoch:{client_id}"]

    async def append(self, client_id: str, frame: Notification) -> Notification:
        if frame.seq is not None or frame.epoch is not None:
            frame = msgspec.structs.replace(frame, seq=None, epoch=None)  # the script adds them
        body = encode(frame)
        # Appends made in the same event-loop turn go to Redis in one pipeline: under load one
        # round trip serves many notifications, and INCR still runs in call order.
        future: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._pending.append((client_id, body, future))
        if len(self._pending) == 1:
            task = asyncio.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        seq, epoch = await future
        return msgspec.structs.replace(frame, seq=seq, epoch=epoch)

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
        self, batch: list[tuple[str, bytes, asyncio.Future[tuple[int, str]]]]
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
    ) -> list[Notification] | None:
        reply = await self._since(
            keys=self._keys(client_id), args=[last_seq, epoch or "", self._seq_ttl_ms, new_id()]
        )
        current, now, replayable, items = int(reply[0]), int(reply[1]), int(reply[3]), reply[4:]
        if not replayable:
            return None  # seqs this numbering never gave, or of another numbering
        if last_seq == current:
            return []
        frames: list[Notification] = []
        for item in items:
            stamp, _, body = _text(item).partition("|")
            if int(stamp) <= now - self._ttl_ms:
                continue  # expired: replay must then fail below, never skip silently
            frame = decode(body)
            if frame is not None:  # one that does not decode is a gap: resync below
                frames.append(frame)
        expected = list(range(last_seq + 1, current + 1))
        if [f.seq for f in frames] != expected:
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


DEFAULT_SWEEP_SECONDS = 15.0


@dataclass(frozen=True, kw_only=True)
class Replay:
    """How outcomes are numbered and kept for a tab that comes back: ``Notifier(replay=...)``
    and ``RedisEmitter(replay=...)``.

    The defaults keep them in this process's memory (one node). A cluster shares one
    numbering: give ``redis_url`` (the :class:`RedisReplayBuffer`, keys under ``prefix``; every
    node and worker must name the same) or a shared ``buffer`` of your own. ``seq_ttl_seconds``
    is how long a client's counter outlives its frames (``None``: the token lifetime, or a day
    in a worker). ``sweep_seconds``: when frames fan out over pub/sub, which may drop one, each
    socket also catches up from the buffer this often (``None``: never).
    """

    max_frames: int = DEFAULT_MAX_FRAMES
    ttl_seconds: float = DEFAULT_TTL_SECONDS
    redis_url: str | None = field(default=None, repr=False)  # it may hold a password
    buffer: ReplayBuffer | None = None
    prefix: str = "clicktrace"
    seq_ttl_seconds: float | None = None
    sweep_seconds: float | None = DEFAULT_SWEEP_SECONDS

    def __post_init__(self) -> None:
        if self.redis_url and self.buffer is not None:
            raise ValueError("give redis_url or buffer, not both")
        if self.sweep_seconds is not None and not self.sweep_seconds > 0:
            raise ValueError("sweep_seconds must be positive or None")
        seq_ttl = DEFAULT_SEQ_TTL_SECONDS if self.seq_ttl_seconds is None else self.seq_ttl_seconds
        check_limits(self.max_frames, self.ttl_seconds, max(seq_ttl, self.ttl_seconds))

    @property
    def shared(self) -> bool:
        """Whether every node numbers from the same buffer (what fan-out needs)."""
        return bool(self.redis_url) or self.buffer is not None

    def make(self, seq_ttl_seconds: float = DEFAULT_SEQ_TTL_SECONDS) -> ReplayBuffer:
        """The buffer; ``seq_ttl_seconds`` unless :attr:`seq_ttl_seconds` is set."""
        if self.buffer is not None:
            return self.buffer
        seq_ttl = seq_ttl_seconds if self.seq_ttl_seconds is None else self.seq_ttl_seconds
        seq_ttl = max(seq_ttl, self.ttl_seconds)
        if self.redis_url:
            return RedisReplayBuffer(
                self.redis_url,
                max_frames=self.max_frames,
                ttl_seconds=self.ttl_seconds,
                seq_ttl_seconds=seq_ttl,
                prefix=self.prefix,
            )
        return MemoryReplayBuffer(self.max_frames, self.ttl_seconds, seq_ttl_seconds=seq_ttl)
