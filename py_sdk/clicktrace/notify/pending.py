"""Connections that have not authenticated yet: a cap per peer address and a deadline.

A socket costs memory from the moment it opens, but only a valid token makes it a client's
(and subject to the per-client cap). Until then it is counted against its peer address, and
it has ``timeout`` seconds to authenticate before ``on_expire`` closes it, so no address can
hold more than ``max_per_peer`` sockets that never present a token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["HELLO_TIMEOUT_SECONDS", "MAX_PENDING_PER_PEER", "Pending"]

HELLO_TIMEOUT_SECONDS = 10.0  # both transports: the socket must present its token by then
MAX_PENDING_PER_PEER = 32

Expire = Callable[[Hashable], Awaitable[None]]


class Pending:
    def __init__(
        self,
        max_per_peer: int = MAX_PENDING_PER_PEER,
        *,
        timeout: float | None = None,
        on_expire: Expire | None = None,
    ) -> None:
        if isinstance(max_per_peer, bool) or not isinstance(max_per_peer, int) or max_per_peer < 1:
            raise ValueError("max_per_peer must be a positive int")
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be positive or None")
        self._max = max_per_peer
        self._timeout = timeout
        self._on_expire = on_expire
        self._peers: dict[Hashable, str] = {}
        self._counts: dict[str, int] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._expiring: set[asyncio.Task[None]] = set()

    def admit(self, key: Hashable, peer: str) -> bool:
        """Count ``key`` against ``peer``; ``False`` (not counted) when the peer is at the cap."""
        if key in self._peers:
            return True
        if self._counts.get(peer, 0) >= self._max:
            return False
        self._peers[key] = peer
        self._counts[peer] = self._counts.get(peer, 0) + 1
        if self._timeout is not None and self._on_expire is not None:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(self._timeout, self._expire, key)
        return True

    def settle(self, key: Hashable) -> None:
        """``key`` authenticated, or is gone: it no longer counts. Idempotent."""
        peer = self._peers.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if peer is not None:
            left = self._counts[peer] - 1
            if left:
                self._counts[peer] = left
            else:
                del self._counts[peer]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._peers

    def count(self, peer: str) -> int:
        return self._counts.get(peer, 0)

    def _expire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        if key not in self._peers or self._on_expire is None:
            return
        self.settle(key)
        task = asyncio.ensure_future(self._on_expire(key))
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._expiring):
            task.cancel()
        await asyncio.gather(*self._expiring, return_exceptions=True)
