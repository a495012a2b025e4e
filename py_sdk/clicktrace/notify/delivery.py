"""The connections on this node, by client id: each one's :class:`SocketDelivery` (see
:mod:`clicktrace.notify.socket_delivery`), the cap per client, the catch-up sweep, and the
dispatch of live frames to a client's connections."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable

from clicktrace.notify.frames import Frame
from clicktrace.notify.replay import ReplayBuffer
from clicktrace.notify.socket_delivery import Send, SocketDelivery, journal_frame

__all__ = ["MAX_CONNECTIONS_PER_CLIENT", "Hub", "TooManyConnections"]

MAX_CONNECTIONS_PER_CLIENT = 16
_log = logging.getLogger("clicktrace.notify")


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
        handed = time.time() * 1000.0  # before the sends: a tab may receive it first
        for delivery in list(conns.values()):
            try:
                await delivery.offer(frame)
                sockets += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                # One broken socket must not starve the client's other tabs or other clients.
                _log.warning("clicktrace: delivery to a socket failed", exc_info=True)
        journal_frame("pushed", client_id, frame, f"{sockets} socket{'s' * (sockets != 1)}", handed)
