"""A real consumer (or outbox relay) process for the crash tests, to be SIGKILLed.

    python worker.py hang URL TOPIC GROUP          print "started <id> <attempt>", then hang
    python worker.py project URL TOPIC GROUP DSN   apply to a PostgreSQL read model, once
    python worker.py relay URL OUTBOX_TABLE DSN    relay a PostgreSQL outbox to the bus
    python worker.py relay-sqlite URL DB_PATH      relay a SQLite outbox to the bus

Prints "ready" once consuming. Not a test module: the tests start it as a subprocess.
"""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

import aiosqlite
import asyncpg

from clicktrace import context as click_context
from clicktrace.bus import Backoff, create_bus
from clicktrace.claims import PostgresClaims
from clicktrace.envelope import Envelope
from clicktrace.outbox import OutboxRelay, PostgresOutbox, SqliteOutbox

# Short timers so a crash is noticed within a test.
FAST: dict[str, dict[str, Any]] = {
    "redis": {"block_ms": 100, "claim_idle_ms": 500},
    "amqp": {"prefetch": 20},
    "nats": {"ack_wait": 1.0, "fetch_timeout": 0.2},
}


def make_bus(url: str) -> Any:
    return create_bus(url, **FAST.get(url.split(":", 1)[0], {}))


async def hang(url: str, topic: str, group: str) -> None:
    bus = make_bus(url)

    async def handler(envelope: Envelope) -> None:
        ctx = click_context.current()
        print("started", envelope.metadata.message_id, ctx and ctx.correlation_id, flush=True)
        await asyncio.Event().wait()  # until SIGKILL

    bus.subscribe(topic, handler, group=group)
    await bus.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def project(url: str, topic: str, group: str, dsn: str) -> None:
    """Applies each event to ``<group>_model`` once: claim and write in one transaction."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    processed = PostgresClaims(table=f"{group}_processed")
    bus = make_bus(url)

    async def handler(envelope: Envelope) -> None:
        async with pool.acquire() as conn:
            async with conn.transaction():
                claimed = await processed.claim(conn, group, envelope.metadata.message_id)
                if claimed:
                    # No unique key here on purpose: a second application would show up.
                    await conn.execute(
                        f"INSERT INTO {group}_model (message_id, command) VALUES ($1, $2)",
                        envelope.metadata.message_id,
                        envelope.payload["command"],
                    )
                    await asyncio.sleep(random.random() / 500)  # widen the crash window
            if not claimed:  # a redelivery or re-publish, absorbed: count it for the report
                await conn.execute(
                    f"INSERT INTO {group}_skipped (message_id) VALUES ($1)",
                    envelope.metadata.message_id,
                )
        await asyncio.sleep(random.random() / 1000)  # between commit and ack, too

    bus.subscribe(
        topic, handler, group=group, max_attempts=50, backoff=Backoff(initial=0.01, maximum=0.2)
    )
    await bus.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def relay(url: str, table: str, dsn: str) -> None:
    bus = make_bus(url)
    await bus.start()
    outbox = PostgresOutbox(table=table)
    relay = OutboxRelay(
        outbox, connect=lambda: asyncpg.connect(dsn), bus=bus, batch=20, poll_interval=0.05
    )
    await relay.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def relay_sqlite(url: str, path: str) -> None:
    bus = make_bus(url)
    await bus.start()
    relay = OutboxRelay(
        SqliteOutbox(),
        connect=lambda: aiosqlite.connect(path),
        bus=bus,
        batch=10,
        poll_interval=0.05,
    )
    await relay.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "hang":
        asyncio.run(hang(*args))
    elif mode == "project":
        asyncio.run(project(*args))
    elif mode == "relay":
        asyncio.run(relay(*args))
    elif mode == "relay-sqlite":
        asyncio.run(relay_sqlite(*args))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
