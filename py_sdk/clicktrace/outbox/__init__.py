"""Transactional outbox: write an event's envelope in the same database transaction as the
event itself; a relay publishes what was committed, in order, and marks it sent once the
bus has made it durable (on the memory bus: once it was handled). A crash loses nothing
(unsent rows are published again; consumer idempotency absorbs the duplicates). With a
:class:`ClaimsConfirmation` the relay also checks the consumers' claims
(:mod:`clicktrace.claims`) and publishes again what a broker lost. See docs/bus.md."""

from clicktrace.outbox._postgres import PostgresOutbox
from clicktrace.outbox._relay import ClaimsConfirmation, Outbox, OutboxRelay, OutboxStats
from clicktrace.outbox._sqlite import SqliteOutbox

__all__ = [
    "ClaimsConfirmation",
    "Outbox",
    "OutboxRelay",
    "OutboxStats",
    "PostgresOutbox",
    "SqliteOutbox",
]
