"""Retried commands answered with their first answer and never applied twice.

One interface (:class:`RetryStore`), one file per store: ``MemoryRetryStore`` (one process),
``SqliteRetryStore`` and ``PostgresRetryStore`` (claimed in the command's own transaction:
nothing can apply twice, even across a crash), ``RedisRetryStore`` (shared by nodes, outside
the command's transaction). :func:`once` drives any of them.
"""

from clicktrace.commands.retries.base import REPLAYED_HEADER, Answer, RetryStore, once, retry_key
from clicktrace.commands.retries.memory import MemoryRetryStore
from clicktrace.commands.retries.postgres import PostgresRetryStore
from clicktrace.commands.retries.redis import RedisRetryStore
from clicktrace.commands.retries.sqlite import SqliteRetryStore

__all__ = [
    "REPLAYED_HEADER",
    "Answer",
    "MemoryRetryStore",
    "PostgresRetryStore",
    "RedisRetryStore",
    "RetryStore",
    "SqliteRetryStore",
    "once",
    "retry_key",
]
