"""The distributed demo's worker processes: the outbox relay, and the projection worker.

Each runs until SIGTERM / SIGINT (honcho sends it), then finishes the message or batch in
hand and stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from opentelemetry.sdk.trace import TracerProvider

from clicktrace.journal import use as use_journal
from clicktrace.notify import RedisEmitter
from clicktrace.outbox import OutboxRelay

from .settings import Settings
from .wiring import make_bus, make_faults, make_journal, make_store, subscribe_projection

RELAY_POLL_SECONDS = 0.1
log = logging.getLogger("demo.worker")


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_relay(settings: Settings, tracer_provider: TracerProvider) -> None:
    store, faults = make_store(settings), make_faults(settings)
    bus = make_bus(settings, faults, tracer_provider)
    relay = OutboxRelay(
        store.outbox, connect=store.connect_relay, bus=bus, poll_interval=RELAY_POLL_SECONDS
    )
    journal = make_journal(settings)
    use_journal(journal)
    await store.start()
    await bus.start()
    await relay.start()
    log.info("outbox relay publishing to %s", settings.topic)
    try:
        await _until_stopped()
    finally:
        await relay.close()
        await bus.close()
        await faults.aclose()
        await store.aclose()
        use_journal(None)
        await journal.aclose()


async def run_projection(settings: Settings, tracer_provider: TracerProvider) -> None:
    if not settings.redis_url:
        raise ValueError("the projection worker needs CLICKTRACE_REDIS_URL to reach the tabs")
    store, faults = make_store(settings), make_faults(settings)
    bus = make_bus(settings, faults, tracer_provider)
    emitter = RedisEmitter(
        settings.redis_url,
        settings.transport,
        channel=settings.channel,
        tracer_provider=tracer_provider,
    )
    subscribe_projection(bus, settings, store, emitter.notify, faults, tracer_provider)
    journal = make_journal(settings)
    use_journal(journal)
    await store.start()
    await bus.start()
    log.info("projection consuming %s", settings.topic)
    try:
        await _until_stopped()
    finally:
        await bus.close()
        await emitter.aclose()
        await faults.aclose()
        await store.aclose()
        use_journal(None)
        await journal.aclose()
