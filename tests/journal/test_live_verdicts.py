"""Each verdict made to happen for real: on the real brokers, journaled to the Redis and the
PostgreSQL stores, read back through the same verdict logic the route uses."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import msgspec
import pytest
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import connect

import clicktrace
from clicktrace import context as click_context
from clicktrace.bus import Backoff, Bus, MemoryBus, create_bus
from clicktrace.commands._responses import accepted
from clicktrace.envelope import Envelope, decode, encode, new_envelope
from clicktrace.ids import new_id
from clicktrace.journal import Entry, Journal, Thresholds, create_journal, create_store, use
from clicktrace.journal._verdict import line, verdict
from clicktrace.notify import Notifier, TokenSigner, WebSocketTransport
from clicktrace.outbox import OutboxRelay, SqliteOutbox
from clicktrace.projection import confirm
from clicktrace.sampling import ClickSampler
from clicktrace.testing import unique_name

from ..bus.conftest import URLS, cleanup
from ..test_wiring import SECRET, served

pytestmark = pytest.mark.broker

BROKERS = {kind: URLS[kind] for kind in ("redis", "rabbitmq", "nats")}
FAST: dict[str, dict[str, Any]] = {
    "redis": {"block_ms": 100},
    "rabbitmq": {},
    "nats": {"fetch_timeout": 0.2},
}
STORES = {
    "redis": "redis://127.0.0.1:6379/0",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
}
WORKER = str(Path(__file__).with_name("worker.py"))
STUCK_AFTER = Thresholds(stuck_after_ms=200)
TAB = "01JD8X3Q7E8W5V4T2N9R6M0K1C"
MakeBus = Callable[..., Bus]


@pytest.fixture(params=list(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(STORES))
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def name() -> str:
    return unique_name("ctj", sql=True)


def options(kind: str, name: str) -> dict[str, Any]:
    return {"prefix": name} if kind == "redis" else {"table": name}


@pytest.fixture
async def journal(store_kind: str, name: str) -> AsyncIterator[Journal]:
    j = Journal(create_store(STORES[store_kind], **options(store_kind, name)))
    previous = use(j)
    yield j
    use(previous)
    await j.aclose()
    if store_kind == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(STORES["redis"])
        keys = [k async for k in client.scan_iter(match=f"{name}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    else:
        import asyncpg

        conn = await asyncpg.connect(STORES["postgres"])
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.close()


@pytest.fixture
async def make_bus(broker: str, provider: TracerProvider, name: str) -> AsyncIterator[MakeBus]:
    buses: list[Bus] = []

    def make(**kw: Any) -> Bus:
        bus = create_bus(BROKERS[broker], tracer_provider=provider, **{**FAST[broker], **kw})
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()
    await cleanup(broker, name, {(s.topic, s.group) for b in buses for s in b._subscriptions})


def click(deadline_ms: int | None = None) -> click_context.ClickContext:
    return click_context.ClickContext(new_id(), client_id=TAB, deadline_ms=deadline_ms)


async def publish_click(
    bus: Bus, topic: str, provider: TracerProvider, ctx: click_context.ClickContext
) -> Envelope:
    """What the edge does for a click: inside its span, journal it and publish."""
    from clicktrace.journal import record

    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /rename"), click_context.bound(ctx):
        record("accepted", outcome="202")
        envelope = new_envelope("Renamed", {"n": 1})
        await bus.publish(topic, envelope)
    return envelope


def just_after(entries: list[Entry]) -> float:
    """A verdict time right after the last entry: what is judged is the entries, not how
    long the test took to read them back."""
    return max(e.at for e in entries) + 1


async def entries_until(journal: Journal, cid: str, stage: str) -> list[Entry]:
    """Poll the shared store until ``stage`` was journaled for ``cid`` (30 s at most)."""
    for _ in range(300):
        await journal.flush()
        entries = await journal.store.read(cid)
        if any(e.stage == stage for e in entries):
            return entries
        await asyncio.sleep(0.1)
    raise AssertionError(f"{stage} never journaled for {cid}: {entries}")


async def test_a_consumer_killed_mid_flight_is_stuck_at_delivered(
    broker: str,
    store_kind: str,
    name: str,
    journal: Journal,
    make_bus: MakeBus,
    provider: TracerProvider,
) -> None:
    publisher = make_bus()
    await publisher.start()
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        WORKER,
        BROKERS[broker],
        name,
        "g",
        STORES[store_kind],
        name,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        assert (await asyncio.wait_for(worker.stdout.readline(), 30)).startswith(b"ready")
        ctx = click()
        await publish_click(publisher, name, provider, ctx)
        started = await asyncio.wait_for(worker.stdout.readline(), 30)
        assert started.split()[1].decode() == ctx.correlation_id
        entries = await entries_until(journal, ctx.correlation_id, "delivered")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        await worker.wait()
        publisher._subscriptions.append(_declared(name))
    now = max(e.at for e in entries) + 1000
    v = verdict(entries, now, STUCK_AFTER)
    assert (v["state"], v["stage"]) == ("stuck", "delivered")
    delivered = next(e for e in entries if e.stage == "delivered")
    assert (delivered.process, delivered.attempt) == ("doomed-worker", 1)
    # Once the worker is known to have restarted after it wrote `delivered`, the entries it
    # may have had in hand died with it: the journal cannot say stuck.
    restarted = {"doomed-worker": delivered.at + 500}
    v = verdict(entries, now, STUCK_AFTER, restarted=restarted)
    assert (v["state"], v["stage"]) == ("unknown", "delivered")
    assert line(v).startswith("unknown after process doomed-worker restarted")


def _declared(topic: str) -> Any:
    """The worker's subscription, for cleanup of its queue."""
    from clicktrace.bus._types import Subscription

    async def never(envelope: Envelope) -> None:
        return None

    return Subscription(topic=topic, group="g", handler=never)


async def test_a_bus_that_strips_the_context_breaks_the_trace_at_consume(
    broker: str,
    journal: Journal,
    make_bus: MakeBus,
    provider: TracerProvider,
    name: str,
) -> None:
    bus = make_bus()
    done: asyncio.Queue[str] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await done.put(envelope.metadata.correlation_id)

    bus.subscribe(name, handler, group="g")
    await bus.start()
    send = bus._send

    async def stripping(topic: str, body: bytes, headers: dict[str, str], mid: str) -> None:
        envelope = decode(body)
        meta = msgspec.structs.replace(envelope.metadata, traceparent=None, tracestate=None)
        body = encode(msgspec.structs.replace(envelope, metadata=meta))
        kept = {k: v for k, v in headers.items() if k not in ("traceparent", "tracestate")}
        await send(topic, body, kept, mid)

    bus._send = stripping  # type: ignore[method-assign,assignment]
    ctx = click()
    await publish_click(bus, name, provider, ctx)
    assert await asyncio.wait_for(done.get(), 30) == ctx.correlation_id
    entries = await entries_until(journal, ctx.correlation_id, "acked")
    v = verdict(entries, just_after(entries), STUCK_AFTER)
    assert (v["state"], v["stage"]) == ("trace_broken", "delivered")


async def test_a_deadline_passed_is_timed_out(
    broker: str,
    journal: Journal,
    make_bus: MakeBus,
    provider: TracerProvider,
    name: str,
) -> None:
    bus = make_bus()
    handled: list[str] = []

    async def handler(envelope: Envelope) -> None:
        handled.append(envelope.metadata.message_id)

    bus.subscribe(name, handler, group="g")
    await bus.start()
    ctx = click(deadline_ms=int(time.time() * 1000) - 1)  # already past when it is consumed
    await publish_click(bus, name, provider, ctx)
    entries = await entries_until(journal, ctx.correlation_id, "dead_lettered")
    v = verdict(entries, just_after(entries), STUCK_AFTER)
    assert (v["state"], v["stage"], v["outcome"]) == ("dead_lettered", "dead_lettered", "timed_out")
    assert handled == []


async def test_a_handler_failing_n_times_is_dead_lettered_after_n_attempts(
    broker: str,
    journal: Journal,
    make_bus: MakeBus,
    provider: TracerProvider,
    name: str,
) -> None:
    bus = make_bus()

    async def handler(envelope: Envelope) -> None:
        raise ValueError("the projection refuses")

    bus.subscribe(name, handler, group="g", max_attempts=3, backoff=Backoff(initial=0.01))
    await bus.start()
    ctx = click()
    await publish_click(bus, name, provider, ctx)
    entries = await entries_until(journal, ctx.correlation_id, "dead_lettered")
    assert [e.attempt for e in entries if e.stage == "delivered"] == [1, 2, 3]
    assert [e.attempt for e in entries if e.stage == "retried"] == [1, 2]
    v = verdict(entries, just_after(entries), STUCK_AFTER)
    assert (v["state"], v["outcome"]) == ("dead_lettered", "failed")
    assert line(v).startswith("dead-lettered after 3 attempts (ValueError: the projection")


SAMPLED_CLICKS = 40


async def test_clicks_sampled_out_at_ten_percent_read_sampled_out(tmp_path: Path) -> None:
    """An app inline, served for real: a real sampler at 10 %, the outbox relay, the memory
    bus, a projection that confirms, a tab's WebSocket. Every server entry of a click carries
    the click's decision (the relay's ``relayed`` and the node's ``pushed`` included), so an
    unsampled click reads ``sampled out`` with its outcome, a sampled one ``confirmed``."""
    provider = TracerProvider(sampler=ClickSampler(0.1))
    db = str(tmp_path / "app.db")
    outbox = SqliteOutbox()
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        await conn.commit()
    bus = MemoryBus(tracer_provider=provider)
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport(), tracer_provider=provider)
    relay = OutboxRelay(outbox, connect=lambda: aiosqlite.connect(db), bus=bus, poll_interval=0.05)

    async def rename(request: Request) -> Response:
        envelope = new_envelope("Renamed", {"id": 1})
        async with aiosqlite.connect(db) as conn:
            await outbox.add(conn, "products", envelope)
            await conn.commit()
        relay.wake()
        return accepted(envelope.metadata.correlation_id)

    async def project(envelope: Envelope) -> None:
        await confirm(notifier.notify, envelope)

    bus.subscribe("products", project, group="projection")
    journal = create_journal("memory://")
    app = clicktrace.install(
        Starlette(routes=[Route("/rename", rename, methods=["POST"])]),
        notifier=notifier,
        bus=bus,
        relay=relay,
        tracer_provider=provider,
        journal=journal,
    )
    ids: list[str] = []
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/clicktrace/session")).json()["token"]
        async with connect(url.replace("http", "ws") + "/clicktrace/ws") as ws:
            await ws.send(msgspec.json.encode({"token": token, "last_seq": 0}).decode())
            for _ in range(SAMPLED_CLICKS):
                cid = new_id()  # a click names itself: the edge journals only those
                tab = {"x-clicktrace-client": token, "x-correlation-id": cid}
                assert (await http.post("/rename", headers=tab)).status_code == 202
                ids.append(cid)
            for _ in ids:
                await asyncio.wait_for(ws.recv(), 30)
        judged = {cid: await entries_until(journal, cid, "pushed") for cid in ids}
    verdicts = {cid: verdict(es, just_after(es), STUCK_AFTER) for cid, es in judged.items()}
    out = [
        cid
        for cid, es in judged.items()
        if next(e for e in es if e.stage == "accepted").sampled is False
    ]
    assert out  # at 10 %, forty clicks all sampled: one chance in 10^40
    for cid, entries in judged.items():
        flags = {e.stage: e.sampled for e in entries}
        assert {
            "accepted",
            "stored",
            "relayed",
            "published",
            "delivered",
            "notified",
            "pushed",
        } <= set(flags)
        sampled = cid not in out
        assert set(flags.values()) == {sampled}, (cid, flags)
        v = verdicts[cid]
        if sampled:
            assert v["state"] == "confirmed", v
        else:
            assert (v["state"], v["outcome"]) == ("sampled_out", "confirmed"), v
            assert line(v).startswith("sampled out (confirmed in ")
