"""The outbox in PostgreSQL (asyncpg)."""

from __future__ import annotations

import hashlib
from typing import Any

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

__all__ = ["PostgresOutbox"]


class PostgresOutbox:
    """Outbox rows in table ``table``, over asyncpg connections::

        async with conn.transaction():
            await conn.execute("INSERT INTO events ...")
            await outbox.add(conn, "products", envelope)

    Several relays may run: a transaction-scoped advisory lock lets one publish at a time,
    so rows go out in id order.
    """

    def __init__(self, table: str = "clicktrace_outbox") -> None:
        require("asyncpg", "postgres")
        self.table = check_table(table)
        digest = hashlib.sha1(self.table.encode(), usedforsecurity=False).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)

    async def create_tables(self, conn: Any) -> None:
        t = self.table
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (id BIGINT GENERATED ALWAYS AS IDENTITY "
            "PRIMARY KEY, topic TEXT NOT NULL, envelope BYTEA NOT NULL, message_id TEXT NOT NULL, "
            "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), sent_at TIMESTAMPTZ, "
            "done_at TIMESTAMPTZ, republished INTEGER NOT NULL DEFAULT 0, "
            "gave_up BOOLEAN NOT NULL DEFAULT false);"
            f"CREATE INDEX IF NOT EXISTS {t}_unsent ON {t} (id) WHERE sent_at IS NULL"
        )
        # Rows not done yet (unsent, or waiting for their claims): what the relay reads.
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {t}_open ON {t} (id) WHERE done_at IS NULL;"
            f"CREATE INDEX IF NOT EXISTS {t}_gave_up ON {t} (id) WHERE gave_up"
        )

    async def add(self, conn: Any, topic: str, envelope: Envelope) -> None:
        """Queue ``envelope`` for ``topic`` in the caller's transaction."""
        if not isinstance(envelope, Envelope):
            raise TypeError(f"add needs an Envelope, not {type(envelope).__name__}")
        await conn.execute(
            f"INSERT INTO {self.table} (topic, envelope, message_id) VALUES ($1, $2, $3)",
            topic,
            encode(envelope),
            envelope.metadata.message_id,
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
        sent: list[int] = []
        failure: Exception | None = None
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                return 0  # another relay is at it
            rows = await conn.fetch(
                f"SELECT id, topic, envelope FROM {self.table} WHERE sent_at IS NULL "
                "ORDER BY id LIMIT $1",
                limit,
            )
            try:
                for row in rows:
                    await publish(row["topic"], decode(row["envelope"]))
                    sent.append(row["id"])
            except Exception as exc:
                failure = exc  # still mark what went out, then report it
            if sent:
                done = "now()" if done_when_sent else "NULL"
                await conn.execute(
                    f"UPDATE {self.table} SET sent_at = now(), done_at = {done} "
                    "WHERE id = ANY($1::bigint[])",
                    sent,
                )
        if failure is not None:
            raise failure
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
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                return Reconciled(None, 0, 0, 0, 0)  # another relay is at it
            rows = await conn.fetch(
                f"SELECT id, message_id, republished, sent_at < now() - $2::float8 "
                "* power(2, republished) * interval '1 second' AS due "
                f"FROM {t} WHERE done_at IS NULL AND sent_at IS NOT NULL AND id > $1 "
                "ORDER BY id LIMIT $3",
                after_id,
                grace_seconds,
                limit,
            )
            if not rows:
                return Reconciled(None, 0, 0, 0, 0)
            got = await claimed([row["message_id"] for row in rows])
            confirmed, resend, lost, frontier = triage(
                [(r["id"], r["message_id"], int(r["republished"]), r["due"]) for r in rows],
                got,
                frontier,
                max_republish,
            )
            if confirmed:
                await conn.execute(
                    f"UPDATE {t} SET done_at = now() WHERE id = ANY($1::bigint[])", confirmed
                )
            if lost:
                await conn.execute(
                    f"UPDATE {t} SET done_at = now(), gave_up = true WHERE id = ANY($1::bigint[])",
                    lost,
                )
            done: list[int] = []
            failure: Exception | None = None
            if resend:
                bodies = await conn.fetch(
                    f"SELECT id, topic, envelope FROM {t} WHERE id = ANY($1::bigint[]) ORDER BY id",
                    list(resend),
                )
                try:
                    for body in bodies:
                        attempt = resend[body["id"]] + 2  # the first publication was attempt 1
                        await republish(body["topic"], decode(body["envelope"]), attempt)
                        done.append(body["id"])
                except Exception as exc:
                    failure = exc  # still count what went out, then report it
            if done:
                await conn.execute(
                    f"UPDATE {t} SET sent_at = now(), republished = republished + 1 "
                    "WHERE id = ANY($1::bigint[])",
                    done,
                )
        if failure is not None:
            raise failure
        last = int(rows[-1]["id"])
        return Reconciled(last, len(rows), len(confirmed), len(done), len(lost), frontier)

    async def newest_sent(self, conn: Any, limit: int) -> list[tuple[int, str]]:
        """``(id, message id)`` of the ``limit`` rows sent last (the reconciler's frontier)."""
        rows = await conn.fetch(
            f"SELECT id, message_id FROM {self.table} WHERE sent_at IS NOT NULL "
            "ORDER BY id DESC LIMIT $1",
            limit,
        )
        return [(int(row["id"]), str(row["message_id"])) for row in rows]

    async def unsent(self, conn: Any) -> int:
        return int(await conn.fetchval(f"SELECT count(*) FROM {self.table} WHERE sent_at IS NULL"))

    async def lag(self, conn: Any) -> tuple[int, float | None]:
        """Unsent rows and the Unix time the oldest was stored (None when there is none)."""
        row = await conn.fetchrow(
            f"SELECT count(*), extract(epoch FROM min(created_at)) FROM {self.table} "
            "WHERE sent_at IS NULL"
        )
        return int(row[0]), None if row[1] is None else float(row[1])

    async def stats(self, conn: Any) -> OutboxStats:
        """What the table holds, for health: cheap on a big table (the open rows through
        their index, the total from the planner's estimate, the oldest by the primary key)."""
        t = self.table
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE sent_at IS NULL), "
            "extract(epoch FROM min(created_at) FILTER (WHERE sent_at IS NULL)), "
            "count(*) FILTER (WHERE sent_at IS NOT NULL), "
            f"(SELECT count(*) FROM {t} WHERE gave_up), "
            f"(SELECT extract(epoch FROM created_at) FROM {t} ORDER BY id LIMIT 1), "
            "(SELECT reltuples FROM pg_class WHERE oid = $1::regclass), "
            "pg_total_relation_size($1::regclass) "
            f"FROM {t} WHERE done_at IS NULL",
            t,
        )
        rows = int(row[5])
        if rows < 0:  # never analysed yet: count (the table is young, so small)
            rows = int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
        return OutboxStats(
            rows=rows,
            unsent=int(row[0]),
            oldest_unsent=None if row[1] is None else float(row[1]),
            awaiting_claims=int(row[2]),
            gave_up=int(row[3]),
            oldest=None if row[4] is None else float(row[4]),
            bytes=int(row[6]),
        )

    async def prune(self, conn: Any, older_than_seconds: float, *, limit: int = PRUNE_LIMIT) -> int:
        """Delete at most ``limit`` rows done more than ``older_than_seconds`` ago; never a
        row that is unsent or waits for its claims."""
        status: str = await conn.execute(
            f"DELETE FROM {self.table} WHERE id = ANY(ARRAY(SELECT id FROM {self.table} "
            "WHERE done_at < now() - $1::float8 * interval '1 second' ORDER BY id LIMIT $2))",
            older_than_seconds,
            limit,
        )
        return int(status.rsplit(" ", 1)[-1])
