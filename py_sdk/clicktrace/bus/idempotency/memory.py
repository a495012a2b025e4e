"""A bounded in-process record of processed message ids."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

__all__ = ["MemoryDedupe"]


class MemoryDedupe:
    """Remembers the last ``capacity`` message ids per process (not across restarts)."""

    def __init__(self, capacity: int = 100_000) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError("capacity must be an int >= 1")
        self._capacity = capacity
        self._done: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def seen(self, consumer: str, message_id: str) -> bool:
        return (consumer, message_id) in self._done

    async def remember(self, consumer: str, message_id: str) -> None:
        self._done[(consumer, message_id)] = None
        self._done.move_to_end((consumer, message_id))
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)

    async def claimed(self, conn: Any, consumer: str, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` ``consumer`` has processed (``conn`` is ignored)."""
        return {m for m in message_ids if (consumer, m) in self._done}
