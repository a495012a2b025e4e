"""The one small interface every journal store implements, and the limits they share.

A store keeps entries by correlation id. It is written in batches by the
:class:`~clicktrace.journal.writer.Journal` (never on the request path, except the memory
ring, whose ``add`` is a few dict operations) and read by the route, ``/clicktrace/health``
and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from clicktrace.journal.entry import Entry

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "DEFAULT_MAX_ENTRIES",
    "MAX_ENTRIES_PER_ID",
    "Store",
    "SyncStore",
]

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_AGE_SECONDS = 3600.0
# A correlation id that loops (a message redelivered forever) must not fill a store alone.
MAX_ENTRIES_PER_ID = 200


class Store(Protocol):
    dropped: int
    """Entries the store itself evicted before their age (its bound was reached)."""

    async def write(self, entries: Sequence[Entry]) -> None:
        """Keep ``entries`` (may raise: the writer counts the failure and drops the batch)."""

    async def read(self, correlation_id: str) -> list[Entry]:
        """The entries of ``correlation_id`` (any order; ``[]`` when unknown)."""
        ...

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        """Correlation ids with an entry recorded at or after ``since_ms`` (Unix ms), the most
        recently active first, at most ``limit``."""
        ...

    async def ping(self) -> None:
        """A real round trip to the backend; raises when it is unreachable."""

    async def aclose(self) -> None: ...


@runtime_checkable
class SyncStore(Protocol):
    """A store cheap enough to be written in place, without the writer's queue."""

    def add(self, entry: Entry) -> None: ...
