"""Claims in one process's memory (tests, single-process apps without a database): bounded
by count and age, lost on restart."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from clicktrace.claims._base import DEFAULT_KEEP_SECONDS, ClaimsBase, check_keep

__all__ = ["MemoryClaims"]

_NO_ANSWER = b""
"""What ``claim`` holds until ``keep``: distinct from any kept answer (those are wrapped)."""


class MemoryClaims(ClaimsBase):
    """At most ``capacity`` claims (the oldest go first), each for ``keep_seconds``.

    Also a bus :class:`~clicktrace.bus.Dedupe` (``subscribe(..., dedupe=claims)``): the bus
    asks ``seen`` before the handler and ``remember`` after it.
    """

    transactional = False

    def __init__(
        self,
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        capacity: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError("capacity must be an int >= 1")
        self._keep, self._capacity, self._clock = check_keep(keep_seconds), capacity, clock
        # (scope, key) -> (claimed at, b"" while unanswered, else b"=" + the answer)
        self._claims: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()

    def _live(self, name: tuple[str, str]) -> bytes | None:
        held = self._claims.get(name)
        if held is None:
            return None
        if self._clock() - held[0] >= self._keep:
            del self._claims[name]
            return None
        return held[1]

    def _put(self, name: tuple[str, str], value: bytes) -> None:
        self._claims[name] = (self._clock(), value)
        self._claims.move_to_end(name)
        while len(self._claims) > self._capacity:
            self._claims.popitem(last=False)

    async def claim(self, conn: Any, scope: str, key: str) -> bool:
        if self._live((scope, key)) is not None:
            return False
        self._put((scope, key), _NO_ANSWER)
        return True

    async def keep(self, conn: Any, scope: str, key: str, answer: bytes) -> None:
        if self._live((scope, key)) is not None:
            self._claims[(scope, key)] = (self._claims[(scope, key)][0], b"=" + answer)

    async def kept(self, conn: Any, scope: str, key: str) -> bytes | None:
        value = self._live((scope, key))
        return value[1:] if value else None

    async def release(self, conn: Any, scope: str, key: str) -> None:
        if self._live((scope, key)) == _NO_ANSWER:
            del self._claims[(scope, key)]

    async def claimed(self, conn: Any, scope: str, keys: Sequence[str]) -> set[str]:
        return {key for key in keys if self._live((scope, key)) is not None}

    async def seen(self, consumer: str, message_id: str) -> bool:
        return self._live((consumer, message_id)) is not None

    async def remember(self, consumer: str, message_id: str) -> None:
        self._put((consumer, message_id), b"=")
