"""What every process of the demo builds the same way: the store, the bus, the faults, the
dead-letter hook, the notify transport and replay buffer, JSON logs."""

from __future__ import annotations

import logging
import sys

from opentelemetry.sdk.trace import TracerProvider

from clicktrace.bus import Backoff, Bus, DeadLetterHook, create_bus
from clicktrace.envelope import Envelope
from clicktrace.journal import Journal, create_journal
from clicktrace.logs import ClicktraceFilter, JsonFormatter
from clicktrace.notify import (
    Notify,
    PublishUpdate,
    Replay,
    SocketIOTransport,
    WebSocketTransport,
)
from clicktrace.outbox import ClaimsConfirmation, OutboxRelay
from clicktrace.projection import dead_letter_outcome, reject_on_dead_letter

from .catalogue import RENAMED
from .database import SqliteStore
from .faults import Faults, drop_context_when_asked
from .projection import CONSUMER, Projection
from .settings import Settings
from .store import Store

MAX_ATTEMPTS = 3
BACKOFF = Backoff(initial=0.2, maximum=1.0)


def make_store(settings: Settings) -> Store:
    if settings.database_url:
        from .postgres import PostgresStore

        return PostgresStore(settings.database_url, settings.pg_schema)
    return SqliteStore(settings.database)


def make_journal(settings: Settings) -> Journal:
    """The journal every process of this demo writes to (keys of its own on a shared Redis)."""
    if settings.journal_url.startswith(("redis://", "rediss://")):
        return create_journal(settings.journal_url, prefix=f"{settings.channel}:journal")
    return create_journal(settings.journal_url)


def make_faults(settings: Settings) -> Faults:
    return Faults(settings.redis_url, key=f"{settings.channel}:demo-faults")


def make_bus(settings: Settings, faults: Faults, tracer_provider: TracerProvider | None) -> Bus:
    bus = create_bus(settings.bus_url, tracer_provider=tracer_provider)
    drop_context_when_asked(bus, faults)
    return bus


def make_transport(settings: Settings) -> SocketIOTransport | WebSocketTransport:
    """The nodes' transport; the projection worker publishes through the same one. With
    ``CLICKTRACE_REDIS_URL`` frames fan out between nodes over Redis, on the demo's channel."""
    if settings.transport == "socketio":
        return SocketIOTransport(redis_url=settings.redis_url, channel=settings.channel)
    return WebSocketTransport(redis_url=settings.redis_url, channel=settings.channel)


def make_replay(settings: Settings) -> Replay:
    """Where outcomes wait for a tab that reconnects: Redis when the demo has one (every node
    and the worker number from it), else this process's memory."""
    return Replay(redis_url=settings.redis_url, prefix=settings.channel)


def make_relay(store: Store, bus: Bus, poll_interval: float) -> OutboxRelay:
    """The outbox relay, done with a row only once the projection has claimed its message: a
    broker that loses the message (restarted without its data, a queue deleted) costs a
    re-publication after the grace, never the command (docs/bus.md, "End to end")."""
    return OutboxRelay(
        store.outbox,
        connect=store.connect_relay,
        bus=bus,
        poll_interval=poll_interval,
        confirm=ClaimsConfirmation(store.claims, groups=[CONSUMER]),
    )


def settle_and_reject(store: Store, notify: Notify) -> DeadLetterHook:
    """Claim a dead-lettered rename with the rejection, then tell its tab: the relay's
    reconciler then sees it done, and a later copy of it is never applied after the tab heard
    "rejected". A message applied before (its claim exists) is not rejected."""
    reject = reject_on_dead_letter(notify, types=[RENAMED])

    async def hook(envelope: Envelope, reason: str) -> None:
        outcome = dead_letter_outcome(reason)
        if await store.settle_dead_letter(CONSUMER, envelope.metadata.message_id, outcome):
            await reject(envelope, reason)

    return hook


def subscribe_projection(
    bus: Bus,
    settings: Settings,
    store: Store,
    notify: Notify,
    faults: Faults,
    tracer_provider: TracerProvider | None,
    publish: PublishUpdate | None = None,
) -> None:
    projection = Projection(store, notify, faults, tracer_provider, publish)

    # A message the projection gave up on (or that came after its deadline) is rejected to
    # its tab, which must not wait in vain.
    bus.subscribe(
        settings.topic,
        projection.handle,
        group=CONSUMER,
        on_dead_letter=settle_and_reject(store, notify),
        max_attempts=MAX_ATTEMPTS,
        backoff=BACKOFF,
    )


class _Process(logging.Filter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self._name
        return True


def setup_logging(process: str) -> None:
    """JSON lines on stdout, each with the click's correlation fields and the process name."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(ClicktraceFilter())
    handler.addFilter(_Process(process))
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
