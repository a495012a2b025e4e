"""Traced, at-least-once messaging: one Bus interface over memory, Redis Streams, RabbitMQ
and NATS JetStream. See docs/bus.md.

``create_bus(url)`` picks the broker; the broker classes themselves (``RedisBus``,
``RabbitMQBus``, ``NatsBus``) are PEP 562 lazy attributes: an app on the memory bus (or one
that only names a class in a type) never loads the other adapters. Their clients (redis-py,
aio-pika, nats-py) are imported only when a bus is built, with the ``pip install`` hint when
missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clicktrace._lazy import lazy
from clicktrace.bus._base import Bus, BusNotRunning, BusUnavailable
from clicktrace.bus._factory import create_bus
from clicktrace.bus._memory import MemoryBus
from clicktrace.bus._types import (
    Backoff,
    DeadLetter,
    DeadLetterHook,
    Dedupe,
    Handler,
)

if TYPE_CHECKING:
    from clicktrace.bus._nats import NatsBus
    from clicktrace.bus._rabbitmq import RabbitMQBus
    from clicktrace.bus._redis import RedisBus

# name -> the adapter module that defines it
_LAZY = {
    "NatsBus": "clicktrace.bus._nats",
    "RabbitMQBus": "clicktrace.bus._rabbitmq",
    "RedisBus": "clicktrace.bus._redis",
}

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
    "NatsBus",
    "RabbitMQBus",
    "RedisBus",
    "create_bus",
]


__getattr__, __dir__ = lazy(__name__, _LAZY, __all__)
