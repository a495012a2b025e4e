"""Traced, at-least-once messaging: one Bus interface over memory, Redis Streams, RabbitMQ
and NATS JetStream. See docs/bus.md."""

from clicktrace.bus.base import Bus, BusNotRunning, BusUnavailable
from clicktrace.bus.factory import create_bus
from clicktrace.bus.memory import MemoryBus
from clicktrace.bus.types import (
    Backoff,
    DeadLetter,
    DeadLetterHook,
    Dedupe,
    Handler,
    Subscription,
    TraceMode,
)

__all__ = [
    "Backoff",
    "Bus",
    "BusNotRunning",
    "BusUnavailable",
    "DeadLetter",
    "DeadLetterHook",
    "Dedupe",
    "Handler",
    "MemoryBus",
    "Subscription",
    "TraceMode",
    "create_bus",
]
