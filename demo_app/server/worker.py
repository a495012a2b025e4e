"""The distributed demo's worker processes: the outbox relay, and the projection worker.

Each runs until SIGTERM / SIGINT (honcho sends it), then finishes the message or batch in
hand and stops. Given a port (``CLICKTRACE_HEALTH_PORT``), each answers
``GET /clicktrace/health`` there, as the API nodes do (``clicktrace.health.serve``): its bus,
its journal, and the relay's outbox lag or the projection's replay store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from opentelemetry.sdk.trace import TracerProvider

from clicktrace.health import Check, bus_check, journal_check, outbox_check, replay_check, serve
from clicktrace.journal import use as use_journal
from clicktrace.notify import RedisEmitter, RedisReplayBuffer

from .settings import Settings
from .wiring import (
    make_bus,
    make_faults,
    make_journal,
    make_relay,
    make_replay,
    make_store,
    make_transport,
    subscribe_projection,
)

RELAY_POLL_SECONDS = 0.1
log = logging.getLogger("demo.worker")


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@asynccontextmanager
async def _health(
    settings: Settings, port: int | None, checks: Sequence[Check]
) -> AsyncIterator[None]:
    """This process's health listener while the block runs (none without a port)."""
    if port is None:
        yield
        return
    async with await serve(checks, settings.host, port) as listener:
        log.info("health on http://%s:%d/clicktrace/health", settings.host, listener.port)
        yield


async def run_relay(
    settings: Settings, tracer_provider: TracerProvider, health_port: int | None = None
) -> None:
    store, faults = make_store(settings), make_faults(settings)
    bus = make_bus(settings, faults, tracer_provider)
    relay = make_relay(store, bus, RELAY_POLL_SECONDS)
    journal = make_journal(settings)
    use_journal(journal)
    await store.start()
    await bus.start()
    await relay.start()
    checks = [
        bus_check(bus),
        outbox_check(store.outbox, store.connect_relay),
        journal_check(journal),
    ]
    try:
        async with _health(settings, health_port, checks):
            log.info("outbox relay publishing to %s", settings.topic)
            await _until_stopped()
    finally:
        await relay.close()
        await bus.close()
        await faults.aclose()
        await store.aclose()
        use_journal(None)
        await journal.aclose()


async def run_projection(
    settings: Settings, tracer_provider: TracerProvider, health_port: int | None = None
) -> None:
    if not settings.redis_url:
        raise ValueError("the projection worker needs CLICKTRACE_REDIS_URL to reach the tabs")
    store, faults = make_store(settings), make_faults(settings)
    bus = make_bus(settings, faults, tracer_provider)
    emitter = RedisEmitter(
        make_transport(settings), make_replay(settings), tracer_provider=tracer_provider
    )
    subscribe_projection(
        bus, settings, store, emitter.notify, faults, tracer_provider, emitter.publish
    )
    journal = make_journal(settings)
    use_journal(journal)
    await store.start()
    await bus.start()
    # The tabs' replay store, read the way the nodes read it: where the projection's
    # notifications wait for a tab that reconnects.
    replay = RedisReplayBuffer(settings.redis_url, prefix=settings.channel)
    checks = [bus_check(bus), journal_check(journal), replay_check(replay)]
    try:
        async with _health(settings, health_port, checks):
            log.info("projection consuming %s", settings.topic)
            await _until_stopped()
    finally:
        await bus.close()
        await replay.aclose()
        await emitter.aclose()
        await faults.aclose()
        await store.aclose()
        use_journal(None)
        await journal.aclose()
