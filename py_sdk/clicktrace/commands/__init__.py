"""The command edge: what an endpoint that takes a command needs beyond the middleware.

``invalid_client(request)`` (401 for a refused token), ``accepted()`` (the protocol's 202),
``unavailable()`` (503 with ``Retry-After``), ``once(store, request, apply, conn)`` with a
:class:`RetryStore` so a retried command gets its first answer, never a second application.
Request bodies and path integers: :mod:`clicktrace.web._body`.
"""

from clicktrace.commands.responses import accepted, invalid_client, unavailable
from clicktrace.commands.retries import (
    REPLAYED_HEADER,
    Answer,
    MemoryRetryStore,
    PostgresRetryStore,
    RedisRetryStore,
    RetryStore,
    SqliteRetryStore,
    once,
    retry_key,
)

__all__ = [
    "REPLAYED_HEADER",
    "Answer",
    "MemoryRetryStore",
    "PostgresRetryStore",
    "RedisRetryStore",
    "RetryStore",
    "SqliteRetryStore",
    "accepted",
    "invalid_client",
    "once",
    "retry_key",
    "unavailable",
]
