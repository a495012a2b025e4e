"""The relay: publishes committed outbox rows, in order, and marks them sent; with a
:class:`ClaimsConfirmation`, reconciles them with the consumers' claims (a row is done when
every expected group claimed its message, and is published again when none did in time: the
broker may have lost it); and prunes what is done.

Why claims: a broker's acknowledgement says it *has* the message; a broker that restarts
without its data, or whose stream or queue is deleted, forgets it anyway, and the row would
say "sent" for a command nobody will ever apply. The claims say what the consumers
*processed*, so the relay reads them (one query per group per batch of rows) and publishes
again what no claim covers in time. The re-published message has the same envelope and
message id, so a group that did get the first copy skips the second by its claim."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, NamedTuple, Protocol

from clicktrace._sql import PRUNE_LIMIT
from clicktrace.bus._base import Bus
from clicktrace.bus._types import Backoff
from clicktrace.claims import Claims
from clicktrace.envelope import Envelope
from clicktrace.journal import record
from clicktrace.propagation import ATTRIBUTE_GETTER
from clicktrace.propagation._inject_extract import extract_trace

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "DEFAULT_KEEP_SECONDS",
    "DEFAULT_MAX_REPUBLISH",
    "PRUNE_INTERVAL",
    "PRUNE_LIMIT",
    "Claimed",
    "ClaimsConfirmation",
    "Outbox",
    "OutboxRelay",
    "OutboxStats",
    "PublishEnvelope",
    "Reconciled",
    "Republish",
]

log = logging.getLogger("clicktrace.outbox")
PublishEnvelope = Callable[[str, Envelope], Awaitable[None]]
Republish = Callable[[str, Envelope, int], Awaitable[None]]
"""``(topic, envelope, attempt)``: publish a row again; ``attempt`` counts publications."""
Claimed = Callable[[Sequence[str]], Awaitable[set[str]]]
"""Which of these message ids every expected group has claimed."""

DEFAULT_KEEP_SECONDS: Final = 24 * 3600.0
DEFAULT_GRACE_SECONDS: Final = 30.0
DEFAULT_MAX_REPUBLISH: Final = 3
PRUNE_INTERVAL: Final = 60.0
RECONCILE_BATCHES: Final = 20
PRUNE_STATEMENTS: Final = 10


class Reconciled(NamedTuple):
    """Reconciled rows: the last id checked (None: the end of the table was reached), rows
    checked, found claimed (done), published again, and given up; and the frontier: the
    highest row id the consumers are known to have claimed."""

    last_id: int | None
    checked: int
    confirmed: int
    republished: int
    gave_up: int
    frontier: int = 0


class OutboxStats(NamedTuple):
    """What an outbox table holds: ``rows`` (PostgreSQL: the planner's estimate once
    analysed), ``unsent`` and the Unix time the oldest of them was stored, rows sent that
    wait for their claims (``awaiting_claims``), rows the reconciler gave up on, the time the
    oldest row was stored, and the size on disk with indexes (None where not known)."""

    rows: int
    unsent: int
    oldest_unsent: float | None
    awaiting_claims: int
    gave_up: int
    oldest: float | None
    bytes: int | None = None


class Triage(NamedTuple):
    """What one batch of rows waiting for their claims comes to (:func:`triage`)."""

    confirmed: list[int]
    """Row ids every group claimed: done."""
    resend: dict[int, int]
    """Row ids to publish again, with how many times each was published again already."""
    given_up: list[int]
    """Row ids skipped again after ``max_republish`` re-publications."""
    frontier: int


def triage(
    rows: Sequence[tuple[int, str, int, bool]],
    claimed: set[str],
    frontier: int,
    max_republish: int,
) -> Triage:
    """The reconciler's rule, for every outbox: ``rows`` are ``(id, message id, times
    published again, due)`` in id order, ``due`` when the last publication is older than
    the grace times ``2**republished``. A claimed row is done and moves the frontier; an
    unclaimed, due row below the frontier was skipped (the broker lost it) and is published
    again, or given up after ``max_republish``; one above it waits in the consumers' backlog."""
    confirmed = [row_id for row_id, message_id, _, _ in rows if message_id in claimed]
    frontier = max(frontier, *confirmed) if confirmed else frontier
    resend: dict[int, int] = {}
    given_up: list[int] = []
    for row_id, message_id, republished, due in rows:
        if message_id in claimed or not due or row_id > frontier:
            continue
        if republished >= max_republish:
            given_up.append(row_id)
        else:
            resend[row_id] = republished
    return Triage(confirmed, resend, given_up, frontier)


class Outbox(Protocol):
    async def relay_batch(
        self, conn: Any, limit: int, publish: PublishEnvelope, *, done_when_sent: bool = True
    ) -> int: ...

    async def reconcile_batch(
        self,
        conn: Any,
        after_id: int,
        limit: int,
        *,
        grace_seconds: float,
        max_republish: int,
        claimed: Claimed,
        republish: Republish,
        frontier: int = 0,
    ) -> Reconciled: ...

    async def prune(self, conn: Any, older_than_seconds: float, *, limit: int = ...) -> int: ...

    async def newest_sent(self, conn: Any, limit: int) -> list[tuple[int, str]]:
        """``(id, message id)`` of the ``limit`` rows sent last."""
        ...

    async def lag(self, conn: Any) -> tuple[int, float | None]:
        """Unsent rows and the Unix time the oldest was stored (``/clicktrace/health``)."""
        ...

    async def stats(self, conn: Any) -> OutboxStats: ...


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


class OutboxRelay:
    """Runs in the background from ``start()`` to ``close()``.

    ``connect`` opens the relay's own database connection (``lambda: aiosqlite.connect(p)``,
    ``lambda: asyncpg.connect(dsn)``); it is reopened after an error. The relay polls every
    ``poll_interval`` seconds; ``wake()`` (call it after committing) makes it look at once.

    Without ``confirm`` a row is done once the bus has made its message durable (the relay
    trusts the broker). With ``confirm=ClaimsConfirmation(claims, groups=[...])`` a row is
    done once every group has claimed its message; the relay publishes again what nobody
    claimed in time (docs/bus.md, "End to end"). Every ``prune_interval`` seconds it deletes
    rows done more than ``keep_seconds`` ago (``None``: never); unsent rows are kept, and a
    warning names them.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        connect: Callable[[], Awaitable[Any]],
        bus: Bus,
        batch: int = 100,
        poll_interval: float = 1.0,
        backoff: Backoff | None = None,
        confirm: ClaimsConfirmation | None = None,
        keep_seconds: float | None = DEFAULT_KEEP_SECONDS,
        prune_interval: float = PRUNE_INTERVAL,
    ) -> None:
        if batch < 1 or poll_interval <= 0 or prune_interval <= 0:
            raise ValueError("batch must be >= 1, poll_interval and prune_interval > 0")
        if keep_seconds is not None and not keep_seconds > 0:
            raise ValueError("keep_seconds must be > 0, or None")
        self._outbox, self._connect, self._bus = outbox, connect, bus
        self._batch, self._poll = batch, poll_interval
        self._backoff = backoff or Backoff(initial=0.1, maximum=5.0)
        self._confirm, self._keep, self._prune_every = confirm, keep_seconds, prune_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._stopping = False
        self._next_reconcile = self._next_prune = 0.0
        self._reconcile_after = 0
        # The highest row id every confirming group has claimed. Consumers take messages in
        # about the order they were published, so an unclaimed row below it was skipped (the
        # broker lost it), and one above it is only waiting in a backlog: publishing that again
        # would add to the backlog it waits in, and giving up on it would cry "lost" for a
        # command that is merely late.
        self._frontier = 0
        self._leftovers_done = False

    @property
    def outbox(self) -> Outbox:
        """The outbox it relays (``clicktrace.install`` checks its lag for the health route)."""
        return self._outbox

    @property
    def connect(self) -> Callable[[], Awaitable[Any]]:
        return self._connect

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="clicktrace outbox relay")

    def wake(self) -> None:
        self._wake.set()

    async def close(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (so it is marked sent), then stop; cancel after
        ``timeout`` seconds."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.wait([task], timeout=timeout)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._stopping = False
        await self._disconnect()
        if self._confirm is not None:
            await self._confirm.aclose()

    async def _open(self) -> Any:
        if self._conn is None:
            self._conn = await self._connect()
        return self._conn

    async def run_once(self) -> int:
        """Publish one batch now; the number of rows that went out."""
        conn = await self._open()
        return await self._outbox.relay_batch(
            conn, self._batch, self._publish, done_when_sent=self._confirm is None
        )

    async def drain(self) -> int:
        """Publish until nothing is left; the number of rows that went out."""
        total = 0
        while (n := await self.run_once()) > 0:
            total += n
        return total

    async def reconcile_once(self) -> Reconciled:
        """Check every sent row that is not done yet against the claims, once; the totals
        (``last_id`` is the last row checked). Does nothing without ``confirm``."""
        return await self._reconcile(0, None)

    async def _reconcile(self, after: int, batches: int | None) -> Reconciled:
        """Check rows of id above ``after``, at most ``batches`` batches (None: to the end)."""
        confirm = self._confirm
        if confirm is None:
            return Reconciled(None, 0, 0, 0, 0)
        conn = await self._open()

        async def claimed(message_ids: Sequence[str]) -> set[str]:
            return await confirm.claimed(conn, message_ids)

        # Where the consumers are now: the newest rows they claimed. A row walked below is
        # judged against it, not only against the claims its own batch happens to hold.
        newest = await self._outbox.newest_sent(conn, self._batch)
        if newest:
            got = await claimed([message_id for _, message_id in newest])
            reached = [row_id for row_id, message_id in newest if message_id in got]
            self._frontier = max(self._frontier, *reached) if reached else self._frontier
        last = None
        checked = confirmed = republished = gave_up = 0
        while batches is None or batches > 0:
            batch = await self._outbox.reconcile_batch(
                conn,
                after,
                self._batch,
                grace_seconds=confirm.grace_seconds,
                max_republish=confirm.max_republish,
                claimed=claimed,
                republish=self._republish,
                frontier=self._frontier,
            )
            self._frontier = max(self._frontier, batch.frontier)
            # Only a batch with nothing claimed counts against the bound: rows the consumers
            # claimed are work done (a steady stream of them must all be marked, or the
            # outbox grows), while a consumer that is down leaves every row unclaimed.
            if batches is not None and not batch.confirmed:
                batches -= 1
            if batch.last_id is None:
                last = None
                break
            after = last = batch.last_id
            checked += batch.checked
            confirmed += batch.confirmed
            republished += batch.republished
            gave_up += batch.gave_up
            if batch.gave_up:
                log.warning(
                    "clicktrace outbox: %d message(s) never claimed by %s after %d "
                    "re-publications, while later ones were; given up (dead-lettered by the "
                    "consumer, or lost again)",
                    batch.gave_up,
                    ", ".join(confirm.groups),
                    confirm.max_republish,
                )
            if batch.checked < self._batch:
                last = None  # the end of the table
                break
        return Reconciled(last, checked, confirmed, republished, gave_up, self._frontier)

    async def prune_once(self) -> int:
        """Delete rows done more than ``keep_seconds`` ago (all of them, a batch at a time);
        the number deleted. Warns about unsent rows older than a prune interval: they are
        kept, but they mean the relay cannot publish."""
        return await self._prune(None)

    async def _prune(self, statements: int | None) -> int:
        """Prune at most ``statements`` batches (None: until nothing is due)."""
        if self._keep is None:
            return 0
        conn = await self._open()
        total = 0
        while statements is None or statements > 0:
            if statements is not None:
                statements -= 1
            n = await self._outbox.prune(conn, self._keep, limit=PRUNE_LIMIT)
            total += n
            if n < PRUNE_LIMIT:
                break
        count, oldest = await self._outbox.lag(conn)
        if oldest is not None and time.time() - oldest > self._prune_every:
            log.warning(
                "clicktrace outbox: %d unsent row(s), the oldest stored %.0f s ago, are kept "
                "until they are published (unsent rows are never pruned)",
                count,
                time.time() - oldest,
            )
        return total

    async def stats(self) -> OutboxStats:
        """What the outbox table holds (for health: compare ``oldest`` with ``keep_seconds``,
        ``unsent`` / ``awaiting_claims`` / ``gave_up`` with your thresholds). Over a
        connection of its own: the relay's is busy in its own task."""
        conn = await self._connect()
        try:
            return await self._outbox.stats(conn)
        finally:
            await _close(conn)

    @property
    def keep_seconds(self) -> float | None:
        return self._keep

    async def _publish(self, topic: str, envelope: Envelope) -> None:
        # Durable before the row is marked: on the memory bus that means handled, so a
        # crash never leaves a row marked sent whose message only lived in this process.
        handed_at = time.time() * 1000.0  # on the memory bus, durable means handled
        await self._bus.publish_durable(topic, envelope)
        # The relay runs outside the request: the entry names the trace the row was stored in.
        meta = envelope.metadata
        tp = extract_trace(meta, ATTRIBUTE_GETTER).traceparent
        record(
            "relayed",
            correlation_id=meta.correlation_id,
            client_id=meta.client_id,
            detail=topic,
            at=handed_at,
            trace_id=None if tp is None else f"{tp.trace_id:032x}",
            span_id=None if tp is None else f"{tp.span_id:016x}",
            sampled=None if tp is None else tp.sampled,  # the click's decision, not the relay's
        )

    async def _republish(self, topic: str, envelope: Envelope, attempt: int) -> None:
        # The same envelope and message id: a group that did get it skips it by its claim.
        handed_at = time.time() * 1000.0
        await self._bus.publish_durable(topic, envelope)
        meta = envelope.metadata
        tp = extract_trace(meta, ATTRIBUTE_GETTER).traceparent
        confirm = self._confirm
        groups = ", ".join(confirm.groups) if confirm is not None else "?"
        record(
            "relayed",
            correlation_id=meta.correlation_id,
            client_id=meta.client_id,
            attempt=attempt,
            outcome="republished",
            detail=f"{topic}: published again, not claimed by {groups}",
            at=handed_at,
            trace_id=None if tp is None else f"{tp.trace_id:032x}",
            span_id=None if tp is None else f"{tp.span_id:016x}",
        )

    async def _maintain(self) -> None:
        """Reconcile and prune when each is due. A check covers at most
        ``RECONCILE_BATCHES`` batches and the next one goes on from there, so a consumer that
        is down for long (every row waits for its claim) costs a bounded query load."""
        now = time.monotonic()
        if self._confirm is None and not self._leftovers_done:
            await self._trust_leftovers()
            self._leftovers_done = True
        if self._confirm is not None and now >= self._next_reconcile:
            self._next_reconcile = now + self._confirm.check_interval
            # From the oldest row first, as long as the consumers claimed something in each
            # batch: what they did since the last check is marked however far behind the
            # cursor it is (the oldest rows not done are where they are). Then on from the
            # cursor, a bounded number of batches nobody claimed.
            swept = await self._reconcile(0, 1)
            if swept.last_id is None:  # the end of the table: everything was looked at
                self._reconcile_after = 0
            else:
                start = max(self._reconcile_after, swept.last_id)
                done = await self._reconcile(start, RECONCILE_BATCHES)
                self._reconcile_after = done.last_id or 0  # None: start over next time
        if self._keep is not None and now >= self._next_prune:
            self._next_prune = now + self._prune_every
            # A bounded share per pass: a big table from before retention is caught up over
            # several passes, never by holding back publishing.
            await self._prune(PRUNE_STATEMENTS)

    async def _trust_leftovers(self) -> None:
        """Rows a relay with ``confirm`` left waiting for their claims, now relayed by one
        without: done, as this relay trusts the broker (else they would never be pruned)."""
        conn = await self._open()

        async def everything(message_ids: Sequence[str]) -> set[str]:
            return set(message_ids)

        async def never(topic: str, envelope: Envelope, attempt: int) -> None:
            raise RuntimeError("nothing is published again without confirm")

        after = 0
        while True:
            batch = await self._outbox.reconcile_batch(
                conn,
                after,
                self._batch,
                grace_seconds=0.0,
                max_republish=0,
                claimed=everything,
                republish=never,
            )
            if batch.last_id is None or batch.checked < self._batch:
                return
            after = batch.last_id

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                sent = await self.run_once()
                if not self._stopping:
                    await self._maintain()  # when due, even in a burst
                if failures:
                    log.warning(
                        "clicktrace outbox relay: publishing again after %d failures", failures
                    )
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = self._backoff.delay(failures)
                # A broker or database that is away fails every attempt the same way: one line
                # each, the traceback only at DEBUG (an outage is not a bug to trace).
                log.warning(
                    "clicktrace outbox relay failed (%s: %s); retrying in %.1f s",
                    type(exc).__name__,
                    str(exc)[:200],
                    delay,
                )
                log.debug("clicktrace outbox relay failure", exc_info=True)
                await self._disconnect()
                if self._confirm is not None:
                    await self._confirm.reset()
                with contextlib.suppress(TimeoutError):  # close() wakes it to stop
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            if sent >= self._batch or self._stopping:
                continue  # more may be waiting (or it is time to stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        await _close(conn)


async def _close(conn: Any) -> None:
    if conn is None:
        return
    try:
        result = conn.close()
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.debug("closing the relay's connection failed", exc_info=True)
