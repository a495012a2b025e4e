"""The outbox in SQLite (aiosqlite)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from clicktrace._optional import require
from clicktrace._sql import check_table
from clicktrace.envelope import Envelope, decode, encode
from clicktrace.journal import record
from clicktrace.outbox._relay import (
    PRUNE_LIMIT,
    Claimed,
    OutboxStats,
    PublishEnvelope,
    Reconciled,
    Republish,
    triage,
)

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SqliteOutbox"]


class SqliteOutbox:
    """Outbox rows in table ``table`` of the caller's aiosqlite database::

        await outbox.add(conn, "products", envelope)  # beside the event's INSERT
        await conn.commit()                            # both, or neither

    Meant for one relay per database file: two relays would publish rows twice (harmless
    with idempotent consumers, but wasteful).
    """

    def __init__(self, table: str = "clicktrace_outbox") -> None:
        require("aiosqlite", "sqlite")
        self.table = check_table(table)

    async def create_tables(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "topic TEXT NOT NULL, envelope BLOB NOT NULL, message_id TEXT NOT NULL, "
            "created_at REAL NOT NULL, sent_at REAL, done_at REAL, "
            "republished INTEGER NOT NULL DEFAULT 0, gave_up INTEGER NOT NULL DEFAULT 0)"
        )
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_unsent ON {self.table} (id) "
            "WHERE sent_at IS NULL"
        )
        # Rows not done yet (unsent, or waiting for their claims): what the relay reads.
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_open ON {self.table} (id) "
            "WHERE done_at IS NULL"
        )
        await conn.commit()

    async def add(self, conn: aiosqlite.Connection, topic: str, envelope: Envelope) -> None:
        """Queue ``envelope`` for ``topic`` in the caller's open transaction (not committed)."""
        if not isinstance(envelope, Envelope):
            raise TypeError(f"add needs an Envelope, not {type(envelope).__name__}")
        await conn.execute(
            f"INSERT INTO {self.table} (topic, envelope, message_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (topic, encode(envelope), envelope.metadata.message_id, time.time()),
        )
        record(
            "stored",
            correlation_id=envelope.metadata.correlation_id,
            client_id=envelope.metadata.client_id,
            detail=topic,
        )

    async def relay_batch(
        self, conn: Any, limit: int, publish: PublishEnvelope, *, done_when_sent: bool = True
    ) -> int:
        """Publish up to ``limit`` unsent rows in order; mark those that went out (and done,
        unless they wait for their claims: ``done_when_sent=False``)."""
        cursor = await conn.execute(
            f"SELECT id, topic, envelope FROM {self.table} WHERE sent_at IS NULL "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        rows = await cursor.fetchall()
        sent: list[int] = []
        try:
            for row_id, topic, body in rows:
                await publish(topic, decode(body))
                sent.append(row_id)
        finally:
            if sent:
                now = time.time()
                done = now if done_when_sent else None
                await conn.executemany(
                    f"UPDATE {self.table} SET sent_at = ?, done_at = ? WHERE id = ?",
                    [(now, done, i) for i in sent],
                )
                await conn.commit()
        return len(sent)

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
    ) -> Reconciled:
        """Check up to ``limit`` rows sent and not done, of id above ``after_id`` (the fresh
        ones too: their claims move the frontier). Done when ``claimed`` says so; else
        published again when a later row was claimed (it is below the ``frontier``) and its
        last publication is older than ``grace_seconds * 2**republished``; given up after
        ``max_republish`` re-publications. A row above the frontier waits: the consumers have
        not got to it yet."""
        t = self.table
        now = time.time()
        async with conn.execute(
            f"SELECT id, message_id, republished, sent_at FROM {t} WHERE done_at IS NULL "
            "AND sent_at IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            return Reconciled(None, 0, 0, 0, 0)
        got = await claimed([str(row[1]) for row in rows])
        confirmed, resend, lost, frontier = triage(
            [(r[0], r[1], r[2], r[3] < now - grace_seconds * 2 ** r[2]) for r in rows],
            got,
            frontier,
            max_republish,
        )
        done: list[int] = []
        try:
            if resend:
                marks = ",".join("?" * len(resend))
                async with conn.execute(
                    f"SELECT id, topic, envelope FROM {t} WHERE id IN ({marks}) ORDER BY id",
                    tuple(resend),
                ) as cursor:
                    bodies = list(await cursor.fetchall())
                for row_id, topic, body in bodies:
                    # attempt counts publications: the first one was attempt 1
                    await republish(topic, decode(body), resend[row_id] + 2)
                    done.append(row_id)
        finally:
            at = time.time()
            await conn.executemany(
                f"UPDATE {t} SET done_at = ? WHERE id = ?", [(at, i) for i in confirmed]
            )
            await conn.executemany(
                f"UPDATE {t} SET done_at = ?, gave_up = 1 WHERE id = ?", [(at, i) for i in lost]
            )
            await conn.executemany(
                f"UPDATE {t} SET sent_at = ?, republished = republished + 1 WHERE id = ?",
                [(at, i) for i in done],
            )
            await conn.commit()
        last = int(rows[-1][0])
        return Reconciled(last, len(rows), len(confirmed), len(done), len(lost), frontier)

    async def newest_sent(self, conn: aiosqlite.Connection, limit: int) -> list[tuple[int, str]]:
        """``(id, message id)`` of the ``limit`` rows sent last (the reconciler's frontier)."""
        async with conn.execute(
            f"SELECT id, message_id FROM {self.table} WHERE sent_at IS NOT NULL "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ) as cursor:
            return [(int(row[0]), str(row[1])) for row in await cursor.fetchall()]

    async def unsent(self, conn: aiosqlite.Connection) -> int:
        cursor = await conn.execute(f"SELECT count(*) FROM {self.table} WHERE sent_at IS NULL")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def lag(self, conn: aiosqlite.Connection) -> tuple[int, float | None]:
        """Unsent rows and the Unix time the oldest was stored (None when there is none)."""
        cursor = await conn.execute(
            f"SELECT count(*), min(created_at) FROM {self.table} WHERE sent_at IS NULL"
        )
        row = await cursor.fetchone()
        if row is None:
            return 0, None
        return int(row[0]), None if row[1] is None else float(row[1])

    async def stats(self, conn: aiosqlite.Connection) -> OutboxStats:
        """What the table holds, for health."""
        t = self.table
        async with conn.execute(
            "SELECT sum(sent_at IS NULL), min(CASE WHEN sent_at IS NULL THEN created_at END), "
            f"sum(sent_at IS NOT NULL), (SELECT count(*) FROM {t}), "
            f"(SELECT count(*) FROM {t} WHERE gave_up), "
            f"(SELECT created_at FROM {t} ORDER BY id LIMIT 1) FROM {t} WHERE done_at IS NULL"
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return OutboxStats(0, 0, None, 0, 0, None)
        return OutboxStats(
            rows=int(row[3]),
            unsent=int(row[0] or 0),
            oldest_unsent=None if row[1] is None else float(row[1]),
            awaiting_claims=int(row[2] or 0),
            gave_up=int(row[4]),
            oldest=None if row[5] is None else float(row[5]),
        )

    async def prune(
        self, conn: aiosqlite.Connection, older_than_seconds: float, *, limit: int = PRUNE_LIMIT
    ) -> int:
        """Delete at most ``limit`` rows done more than ``older_than_seconds`` ago (commits);
        never a row that is unsent or waits for its claims."""
        cursor = await conn.execute(
            f"DELETE FROM {self.table} WHERE id IN (SELECT id FROM {self.table} "
            "WHERE done_at < ? ORDER BY id LIMIT ?)",
            (time.time() - older_than_seconds, limit),
        )
        await conn.commit()
        return cursor.rowcount
