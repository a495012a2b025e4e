"""Exactly-once, in-order delivery to each connected socket, whatever the transport.

Every connection of a client gets a :class:`SocketDelivery` that remembers the last ``seq`` it sent.
Live frames reach it through :meth:`Hub.dispatch` (from the local notifier, a python-socketio
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
from collections.abc import Awaitable, Callable, Hashable

from clicktrace.journal.record import record
from clicktrace.notify.frames import Frame, resync_frame
from clicktrace.notify.replay import ReplayBuffer
from clicktrace.propagation import extract_trace

__all__ = [
    "MAX_CONNECTIONS_PER_CLIENT",
    "MAX_HELD_FRAMES",
    "Hub",
    "Send",
    "SocketDelivery",
    "TooManyConnections",
]

MAX_HELD_FRAMES = 1024
MAX_CONNECTIONS_PER_CLIENT = 16

Send = Callable[[Frame], Awaitable[None]]
_log = logging.getLogger("clicktrace.notify")


def _journal(stage: str, client_id: str, frame: Frame, detail: str) -> None:
    """A journal entry for ``frame``, in the trace its traceparent names (the socket side
    runs outside the notifying click's context)."""
    correlation_id = frame.get("correlation_id")
    if not isinstance(correlation_id, str):
        return
    tp = extract_trace(frame).traceparent
    record(
        stage,
        correlation_id=correlation_id,
        client_id=client_id,
        detail=detail,
        outcome=frame.get("status"),
        trace_id=None if tp is None else f"{tp.trace_id:032x}",
        span_id=None if tp is None else f"{tp.span_id:016x}",
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
                await self._send(frame)
                self.last_seq = frame["seq"]
                if isinstance(frame.get("epoch"), str):
                    self.epoch = frame["epoch"]
                _journal("replayed", self.client_id, frame, f"seq {frame['seq']}")


class TooManyConnections(Exception):
    """A client already has ``max_per_client`` connections on this node."""


class Hub:
    """The connections on this node, by client id.

    ``sweep_seconds``: when live frames travel over pub/sub (at most once: a message is lost
    while a subscriber reconnects, and python-socketio's managers subscribe in the background
    after the first connection), every connection also catches up from the buffer this often,
    so a lost frame is late, never missing. ``None`` turns the sweep off.
    """

    def __init__(
        self,
        buffer: ReplayBuffer,
        *,
        sweep_seconds: float | None = None,
        max_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
    ) -> None:
        if sweep_seconds is not None and not sweep_seconds > 0:
            raise ValueError("sweep_seconds must be positive or None")
        if (
            isinstance(max_per_client, bool)
            or not isinstance(max_per_client, int)
            or max_per_client < 1
        ):
            raise ValueError("max_per_client must be a positive int")
        self.buffer = buffer
        self._max_per_client = max_per_client
        self._clients: dict[str, dict[Hashable, SocketDelivery]] = {}
        self._keys: dict[Hashable, str] = {}
        self._sweep_seconds = sweep_seconds
        self._sweeper: asyncio.Task[None] | None = None

    def attach(
        self,
        key: Hashable,
        client_id: str,
        send: Send,
        last_seq: int,
        epoch: str | None = None,
    ) -> SocketDelivery:
        """Register a verified connection; it holds live frames until :meth:`SocketDelivery.resume`.

        Raises :class:`TooManyConnections` when the client is at its cap on this node (one
        stolen or leaked token must not let anyone pin unbounded sockets)."""
        self.detach(key)
        if len(self._clients.get(client_id, ())) >= self._max_per_client:
            raise TooManyConnections(client_id)
        if self._sweep_seconds is not None and self._sweeper is None:
            self._sweeper = asyncio.create_task(
                self._sweep(self._sweep_seconds), name="clicktrace-notify-sweep"
            )
        delivery = SocketDelivery(client_id, send, self.buffer, last_seq, epoch)
        self._clients.setdefault(client_id, {})[key] = delivery
        self._keys[key] = client_id
        return delivery

    def get(self, key: Hashable) -> SocketDelivery | None:
        client_id = self._keys.get(key)
        return None if client_id is None else self._clients[client_id].get(key)

    def detach(self, key: Hashable) -> None:
        client_id = self._keys.pop(key, None)
        if client_id is None:
            return
        conns = self._clients.get(client_id, {})
        conns.pop(key, None)
        if not conns:
            self._clients.pop(client_id, None)

    def connections(self, client_id: str) -> int:
        return len(self._clients.get(client_id, ()))

    def __len__(self) -> int:
        return len(self._keys)

    async def _sweep(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.refresh_all()

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def refresh_all(self) -> None:
        for conns in list(self._clients.values()):
            for delivery in list(conns.values()):
                try:
                    await delivery.refresh()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.warning("clicktrace: catching a socket up failed", exc_info=True)

    async def dispatch(self, client_id: str, frame: Frame) -> None:
        """Offer a live frame to every connection of ``client_id`` on this node."""
        conns = self._clients.get(client_id)
        if not conns:
            return
        sockets = 0
        for delivery in list(conns.values()):
            try:
                await delivery.offer(frame)
                sockets += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                # One broken socket must not starve the client's other tabs or other clients.
                _log.warning("clicktrace: delivery to a socket failed", exc_info=True)
        _journal("pushed", client_id, frame, f"{sockets} socket{'s' * (sockets != 1)}")
