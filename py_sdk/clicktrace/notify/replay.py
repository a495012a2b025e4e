"""Per-client sequence numbers and a bounded, time-limited replay buffer.

``append`` gives a frame the client's next ``seq`` (gap-free, from 1) and its ``epoch``, and
keeps it; ``since`` returns what a reconnecting client missed, in order, or ``None`` when the
buffer no longer covers the gap (the client must resync). The epoch names the numbering: a
buffer that lost a client's counter (a restarted process, a flushed Redis) starts a new one,
so a client presenting seqs of another epoch is told to resync instead of having its next
outcomes skipped as already seen. The in-memory buffer serves one node; for many
nodes use :class:`clicktrace.notify.replay_redis.RedisReplayBuffer`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from clicktrace.ids import new_id
from clicktrace.notify.frames import Frame

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_SEQ_TTL_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "MemoryReplayBuffer",
    "ReplayBuffer",
    "check_limits",
]

DEFAULT_MAX_FRAMES = 256
DEFAULT_TTL_SECONDS = 300.0
# A client's seq counter outlives its frames (as long as its token may), so a tab that comes
# back after the frames expired is told to resync instead of seeing seq restart at 1.
DEFAULT_SEQ_TTL_SECONDS = 86400.0


class ReplayBuffer(Protocol):
    async def append(self, client_id: str, frame: Frame) -> Frame:
        """``frame`` with the client's next ``seq`` added, kept for replay."""
        ...

    async def since(
        self, client_id: str, last_seq: int, epoch: str | None = None
    ) -> list[Frame] | None:
        """Frames after ``last_seq`` in order, or ``None`` if they can no longer be replayed
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


@dataclass(slots=True)
class _Client:
    seq: int = 0
    touched: float = 0.0
    epoch: str = field(default_factory=new_id)  # each new counter is a new numbering
    frames: deque[tuple[float, Frame]] = field(default_factory=deque)


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

    async def append(self, client_id: str, frame: Frame) -> Frame:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        state = self._state(client_id, now)
        state.seq += 1
        stamped = {"seq": state.seq, "epoch": state.epoch, **frame}
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
    ) -> list[Frame] | None:
        state = self._clients.get(client_id)
        current = 0 if state is None else state.seq
        if epoch is not None and (state is None or epoch != state.epoch):
            return None  # seqs of another numbering (this process restarted, or forgot it)
        if last_seq > current:
            return None  # the client saw seqs this buffer never gave (e.g. a restart)
        if state is None or last_seq == current:
            return []
        self._prune(state, self._clock())
        if not state.frames or state.frames[0][1]["seq"] > last_seq + 1:
            return None
        return [f for _, f in state.frames if f["seq"] > last_seq]

    async def current(self, client_id: str) -> int:
        state = self._clients.get(client_id)
        return 0 if state is None else state.seq

    async def epoch(self, client_id: str) -> str:
        return self._state(client_id, self._clock()).epoch

    async def aclose(self) -> None:
        self._clients.clear()
