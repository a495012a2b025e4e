"""What tells the relay that a message arrived: the consumers' idempotency claims.

A broker's acknowledgement says it *has* the message; a broker that restarts without its
data, or whose stream or queue is deleted, forgets it anyway, and the row would say "sent"
for a command nobody will ever apply. The claims say what the consumers *processed*, so the
relay reads them (one query per group per batch of rows) and publishes again what no claim
covers in time. The re-published message has the same envelope and message id, so a group
that did get the first copy skips the second by its claim.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

from clicktrace.outbox.relay import _close

__all__ = ["DEFAULT_GRACE_SECONDS", "DEFAULT_MAX_REPUBLISH", "Claims", "ClaimsConfirmation"]

DEFAULT_GRACE_SECONDS: Final = 30.0
DEFAULT_MAX_REPUBLISH: Final = 3


class Claims(Protocol):
    """``SqliteIdempotency``, ``PostgresIdempotency``, ``RedisIdempotency``, ``MemoryDedupe``."""

    async def claimed(self, conn: Any, consumer: str, message_ids: Sequence[str]) -> set[str]: ...


class ClaimsConfirmation:
    """Rows are done when each of ``groups`` has claimed their message in ``claims``.

    A row whose message is not claimed while a later row's is (the consumers went past it:
    the broker lost it) is published again ``grace_seconds`` after its publication; the next
    time after twice as long, at most ``max_republish`` times, then the relay gives up on it
    with a warning (a message the consumer dead-lettered never has a claim: claim it in the
    dead-letter hook). A row no later claim has passed waits in the consumers' backlog and is
    never published again (docs/bus.md, "Lost, or only late"). Pick ``grace_seconds`` above
    the time a consumer may take to claim a message once it reached the ones after it (its
    retries and their backoff included).

    ``groups`` are the names the claims are kept under: what the handler passes to
    ``claim(conn, group, message_id)``, or, for a store the bus checks (``subscribe(...,
    dedupe=store)``), ``"<topic>:<group>"``.

    SQL claims are read over the relay's own connection: the claims table must live in the
    outbox's database, or pass ``connect`` to open a connection to the claims' database.
    Redis and memory claims ignore the connection. The relay checks every
    ``check_interval`` seconds (a third of the grace by default).
    """

    def __init__(
        self,
        claims: Claims,
        *,
        groups: Sequence[str],
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        max_republish: int = DEFAULT_MAX_REPUBLISH,
        check_interval: float | None = None,
        connect: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        if not callable(getattr(claims, "claimed", None)):
            raise TypeError(f"{type(claims).__name__} has no claimed(conn, consumer, ids)")
        if isinstance(groups, str) or not groups or not all(isinstance(g, str) for g in groups):
            raise ValueError("groups must be a non-empty list of group names")
        if isinstance(grace_seconds, bool) or not grace_seconds > 0:
            raise ValueError("grace_seconds must be > 0")
        if isinstance(max_republish, bool) or not isinstance(max_republish, int):
            raise ValueError("max_republish must be an int >= 0")
        if max_republish < 0:
            raise ValueError("max_republish must be an int >= 0")
        interval = grace_seconds / 3 if check_interval is None else check_interval
        if not interval > 0:
            raise ValueError("check_interval must be > 0")
        self.claims, self.groups = claims, tuple(groups)
        self.grace_seconds, self.max_republish = float(grace_seconds), max_republish
        self.check_interval = float(interval)
        self._connect = connect
        self._conn: Any = None

    async def claimed(self, conn: Any, message_ids: Sequence[str]) -> set[str]:
        """The ids among ``message_ids`` that every group claimed (``conn``: the relay's)."""
        if self._connect is not None:
            if self._conn is None:
                self._conn = await self._connect()
            conn = self._conn
        found: set[str] | None = None
        for group in self.groups:
            got = await self.claims.claimed(conn, group, message_ids)
            found = got if found is None else found & got
            if not found:
                break
        return found or set()

    async def reset(self) -> None:
        """Drop the claims connection (after an error; reopened when next needed)."""
        conn, self._conn = self._conn, None
        await _close(conn)

    async def aclose(self) -> None:
        await self.reset()
