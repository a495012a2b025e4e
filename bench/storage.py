"""What the write path's bounded tables cost per million clicks, in PostgreSQL.

N rows in their final state (an outbox row relayed and done, a claim with its outcome, a
retry claim with its 202 answer) in fresh tables, compacted (``VACUUM FULL``), then
``pg_total_relation_size`` (heap, indexes and TOAST) / N. Multiply by the clicks a retention
window holds: docs/bus.md, "Retention".

    PYTHONPATH=py_sdk .venv/bin/python bench/storage.py [--rows 20000] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from clicktrace.claims import Answer, Outcome, PostgresClaims
from clicktrace.claims._base import encode_answer
from clicktrace.commands._once import COMMANDS
from clicktrace.envelope import encode, new_envelope
from clicktrace.ids import new_id
from clicktrace.outbox import PostgresOutbox
from clicktrace.testing import unique_name

PAYLOAD = {"id": 7, "name": "Assam tea, loose leaf, 250 g"}
ANSWER = b'{"accepted":true,"correlation_id":"01JEXAMPLE0000000000000000"}'
OUTCOME = Outcome.confirmed({**PAYLOAD, "price": 4.5, "version": 12})


async def measure(dsn: str, rows: int) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    prefix = unique_name("storage", sql=True)
    outbox = PostgresOutbox(table=f"{prefix}_outbox")
    claims = PostgresClaims(table=f"{prefix}_processed")
    retries = PostgresClaims(f"{prefix}_commands")
    tables = {"outbox": outbox.table, "claims": claims.table, "retries": retries.table}
    try:
        await outbox.create_tables(conn)
        await claims.create_tables(conn)
        await retries.create_tables(conn)
        async with conn.transaction():
            for _ in range(rows):
                envelope = new_envelope("ProductRenamed", PAYLOAD)
                await outbox.add(conn, "products", envelope)
                message_id = envelope.metadata.message_id
                await claims.claim(conn, "projection", message_id)
                await claims.record_outcome(conn, "projection", message_id, OUTCOME)
                key = (new_id() * 3)[:64]  # retry keys are SHA-256 hex digests
                await retries.claim(conn, COMMANDS, key)
                await retries.keep(conn, COMMANDS, key, encode_answer(Answer(202, ANSWER)))
            await conn.execute(f"UPDATE {outbox.table} SET sent_at = now(), done_at = now()")
        sizes = {}
        for name, table in tables.items():
            await conn.execute(f"VACUUM FULL {table}")
            sizes[name] = int(
                await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
            )
        return sizes
    finally:
        for table in tables.values():
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    size = len(encode(new_envelope("ProductRenamed", PAYLOAD)))
    print(f"{args.rows} rows each; the envelope encodes to {size} bytes")
    for name, total in asyncio.run(measure(args.dsn, args.rows)).items():
        per_row = total / args.rows
        print(f"{name:8} {total:>10} bytes  {per_row:6.0f} B/row  {per_row:6.0f} MB per million")


if __name__ == "__main__":
    main()
