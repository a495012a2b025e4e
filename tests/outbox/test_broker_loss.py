"""A broker that forgets, mid-burst, loses no accepted command: the whole loop as a real
process (tests/outbox/crash_app.py: 202 with the event and its outbox row in one SQLite
transaction, the relay confirming delivery by the projection's claims, the projection applying
each message once) while the broker loses its data:

- Redis restarted without persistence (a private ``redis-server`` on the test's own port);
- NATS restarted with its JetStream store wiped (a private ``nats-server``);
- the RabbitMQ queue deleted (this test's own prefixed queue on the shared broker).

Every accepted command must be applied exactly once, with no restart of the app: the buses
re-create what the broker forgot, the relay's reconciler publishes again what no claim covers
after the grace, and the claims absorb the duplicates. Prints per case: accepted, applied at
the loss, lost, applied twice, re-published, and the recovery time (the loss until the last
accepted command is applied; printed, not asserted: it depends on the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from clicktrace.testing import free_port, unique_name

from ..bus.conftest import URLS, cleanup
from ..bus.private import PrivateNats, PrivateRedis
from .test_sigkill_mid_burst import CONSUMER, applied, kill_app, start_app

POSTERS = 4
BEFORE_LOSS = 100  # applied commands before the broker forgets
AFTER_LOSS = 150  # commands accepted after the loss, at least
GRACE_SECONDS = 2.0  # the relay's reconciler: short, so the test does not wait 30 s
GIVE_UP_AFTER = 180.0  # seconds: a hang guard, not a timing assertion


@contextlib.asynccontextmanager
async def broker(case: str, topic: str) -> AsyncIterator[tuple[str, Callable[[], Awaitable[None]]]]:
    """The bus URL for ``case`` and how to make that broker forget."""
    if case == "redis":
        redis = PrivateRedis()
        await redis.start()

        async def restart_empty() -> None:
            await redis.kill()
            await redis.start()

        try:
            yield redis.url, restart_empty
        finally:
            await redis.kill()
    elif case == "nats":
        nats = PrivateNats()
        await nats.start()

        async def wipe() -> None:
            await nats.kill()
            nats.wipe()
            await nats.start()

        try:
            yield nats.url, wipe
        finally:
            await nats.kill()
            nats.remove()
    else:
        import aio_pika

        async def delete_queue() -> None:
            connection = await aio_pika.connect(URLS["rabbitmq"])
            async with connection:
                channel = await connection.channel()
                await channel.queue_delete(f"{topic}:{CONSUMER}")  # this test's own queue

        try:
            yield URLS["rabbitmq"], delete_queue
        finally:
            await cleanup("rabbitmq", topic, {(topic, CONSUMER)})


@pytest.mark.timeout(360)
@pytest.mark.parametrize("case", ["redis", "nats", "rabbitmq"])
async def test_a_broker_that_forgets_mid_burst_loses_no_accepted_command(
    case: str, tmp_path: Path
) -> None:
    topic, port = unique_name("loss"), free_port()
    db = tmp_path / "crash.sqlite3"
    accepted: dict[str, float] = {}  # correlation id -> when it was accepted
    async with broker(case, topic) as (url, forget):
        proc = await start_app(
            url, topic, tmp_path, port, "websocket", CRASH_CONFIRM_GRACE=str(GRACE_SECONDS)
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                stop = asyncio.Event()

                async def post(worker: int) -> None:
                    n = worker
                    while not stop.is_set():
                        response = await http.post("/commands", json={"n": n})
                        if response.status_code == 202:
                            accepted[response.json()["correlation_id"]] = time.monotonic()
                        n += POSTERS

                posters = [asyncio.create_task(post(w)) for w in range(POSTERS)]
                started = time.monotonic()
                while len(applied(db)[0]) < BEFORE_LOSS:
                    if any(p.done() for p in posters) or time.monotonic() - started > 120:
                        raise RuntimeError("the burst stopped before the loss")
                    await asyncio.sleep(0.05)
                await forget()
                lost_at = time.monotonic()
                applied_at_loss = len(applied(db)[0])
                while sum(1 for at in accepted.values() if at > lost_at) < AFTER_LOSS:
                    if any(p.done() for p in posters):
                        raise RuntimeError("a poster stopped after the loss")
                    await asyncio.sleep(0.05)
                stop.set()
                await asyncio.gather(*posters)

                def done() -> bool:
                    return accepted.keys() <= applied(db)[0]

                while not done() and time.monotonic() - lost_at < GIVE_UP_AFTER:
                    await asyncio.sleep(0.1)
                recovery = time.monotonic() - lost_at
                await asyncio.sleep(1.0)  # room for a late duplicate to show up
                alive = proc.returncode is None
        finally:
            kill_app(proc)
            await proc.wait()
    applied_ids, rows, distinct = applied(db)
    lost = [c for c in accepted if c not in applied_ids]
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        (again,) = conn.execute("SELECT COALESCE(SUM(republished), 0) FROM clicktrace_outbox")
    print(
        f"\nbroker loss [{case}]: accepted={len(accepted)} applied at the loss={applied_at_loss} "
        f"lost={len(lost)} twice={rows - distinct} republished={again[0]} "
        f"recovery={recovery:.2f}s"
    )
    assert alive, "the app died during the loss"
    assert lost == []
    assert rows == distinct  # none applied twice
