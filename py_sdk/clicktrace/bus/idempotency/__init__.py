"""Consumer idempotency: skip a message whose id a consumer has already processed.

Two shapes. A :class:`~clicktrace.bus.types.Dedupe` store (``MemoryDedupe``,
``RedisIdempotency``) is passed to ``bus.subscribe(..., dedupe=store)`` and the bus checks it
before and records it after the handler. A SQL store (``SqliteIdempotency``,
``PostgresIdempotency``) is used by the handler itself: ``claim()`` inside the projection's
own transaction, so the record and the projection's write commit (or roll back) together;
that is what makes "applied exactly once" hold across crashes. The SQL stores also keep the
:class:`Outcome` the projection decided with the claim (``record_outcome`` /
``recorded_outcome``), so a redelivery after a crash between the commit and the notification
can still tell the tab.
"""

from clicktrace.bus.idempotency.memory import MemoryDedupe
from clicktrace.bus.idempotency.outcome import Outcome
from clicktrace.bus.idempotency.redis import RedisIdempotency
from clicktrace.bus.idempotency.sql import PostgresIdempotency, SqliteIdempotency

__all__ = [
    "MemoryDedupe",
    "Outcome",
    "PostgresIdempotency",
    "RedisIdempotency",
    "SqliteIdempotency",
]
