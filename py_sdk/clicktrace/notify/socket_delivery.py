"""Exactly-once, in-order delivery to one connected socket, whatever the transport.

A :class:`SocketDelivery` remembers the last ``seq`` it sent. Live frames reach it through
:meth:`~clicktrace.notify.delivery.Hub.dispatch` (from the local notifier, a python-socketio
manager, or Redis pub/sub); frames it already sent are dropped, and a gap (frames published
out of order by two processes, or published while the socket was connecting) is filled from
the replay buffer. While a connection replays what it missed, live frames are held, then
offered in order, so replay and live traffic never interleave or repeat. Seqs are compared
only within one ``epoch`` (the buffer's name for a numbering): a client that presents another
epoch than the buffer's gets a resync naming the current one at seq 0, then everything that
numbering still holds; a live frame of a new epoch (the buffer lost its counter meanwhile)
restarts the comparison at 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from clicktrace.journal import record
from clicktrace.notify.frames import Frame, resync_frame
from clicktrace.notify.replay import ReplayBuffer
from clicktrace.propagation._inject_extract import extract_trace

__all__ = ["MAX_HELD_FRAMES", "Send", "SocketDelivery", "journal_frame"]

MAX_HELD_FRAMES = 1024

Send = Callable[[Frame], Awaitable[None]]
_log = logging.getLogger("clicktrace.notify")


def journal_frame(
    stage: str, client_id: str, frame: Frame, detail: str, at: float | None = None
) -> None:
    """A journal entry for ``frame``, in the trace its traceparent names (the socket side
    runs outside the notifying click's context), with its sampled flag; ``at`` (Unix ms) is
    when the frame was handed to the socket(s): the tab may receive it before the entry is
    written, and the verdict orders the tab's ``received`` after it."""
    correlation_id = frame.get("correlation_id")
    if not isinstance(correlation_id, str):
        return
    tp = extract_trace(frame).traceparent
    record(
        stage,
        correlation_id=correlation_id,
        client_id=client_id,
        detail=detail,
        at=at,
        outcome=frame.get("status"),
        trace_id=None if tp is None else f"{tp.trace_id:032x}",
        span_id=None if tp is None else f"{tp.span_id:016x}",
        sampled=None if tp is None else tp.sampled,
    )


class SocketDelivery:
    def __init__(
        self,
        client_id: str,
        send: Send,
        buffer: ReplayBuffer,
        last_seq: int,
        epoch: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.last_seq = last_seq
        self.epoch = epoch
        """The numbering ``last_seq`` belongs to (``None``: a client that sends none)."""
        self._send = send
        self._buffer = buffer
        self._held: list[Frame] | None = []
        self._lock = asyncio.Lock()

    async def resume(self) -> None:
        """Replay what the client missed since its ``last_seq``, then go live."""
        async with self._lock:
            await self._catch_up()
            held, self._held = self._held or [], None
            overflowed = len(held) >= MAX_HELD_FRAMES
            for frame in held:
                await self._offer(frame)
            if overflowed:
                await self._catch_up()  # frames past the cap were not held: fetch them

    async def offer(self, frame: Frame) -> None:
        if self._held is not None:
            # Bounded: a replay stuck on a slow buffer must not grow memory without limit.
            if len(self._held) < MAX_HELD_FRAMES:
                self._held.append(frame)
            return
        async with self._lock:
            await self._offer(frame)

    async def refresh(self) -> None:
        """Catch up from the buffer (after live frames may have been lost, e.g. an outage)."""
        if self._held is not None:
            return  # resume() is about to catch up anyway
        async with self._lock:
            await self._catch_up()

    async def _offer(self, frame: Frame) -> None:
        seq, epoch = frame.get("seq"), frame.get("epoch")
        if isinstance(epoch, str) and epoch != self.epoch:
            if self.epoch is not None:
                self.last_seq = 0  # a new numbering: its seqs start again at 1
            self.epoch = epoch
        if not isinstance(seq, int) or seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            await self._catch_up()
            if seq <= self.last_seq:
                return
        await self._send(frame)
        self.last_seq = seq

    async def _catch_up(self) -> None:
        missed = await self._buffer.since(self.client_id, self.last_seq, self.epoch)
        if missed is None:
            epoch = await self._buffer.epoch(self.client_id)
            fresh = None
            if epoch != self.epoch and self.epoch is not None:
                # Another numbering (the buffer restarted): resync to its start and replay all
                # of it, so an outcome numbered before this hello was read is not skipped.
                fresh = await self._buffer.since(self.client_id, 0, epoch)
            current = 0 if fresh is not None else await self._buffer.current(self.client_id)
            await self._send(resync_frame(current, epoch))
            self.last_seq, self.epoch = current, epoch
            missed = fresh or []
        for frame in missed:
            if frame["seq"] > self.last_seq:
                handed = time.time() * 1000.0
                await self._send(frame)
                self.last_seq = frame["seq"]
                if isinstance(frame.get("epoch"), str):
                    self.epoch = frame["epoch"]
                journal_frame("replayed", self.client_id, frame, f"seq {frame['seq']}", handed)
