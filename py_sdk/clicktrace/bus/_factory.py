"""``create_bus(url)``: one setting picks the broker."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import TracerProvider

from clicktrace.bus._base import Bus

__all__ = ["SCHEMES", "create_bus"]

SCHEMES = {
    "memory": "memory",
    "redis": "redis",
    "rediss": "redis",
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
    "nats": "nats",
    "tls": "nats",
}


def create_bus(url: str, *, tracer_provider: TracerProvider | None = None, **options: Any) -> Bus:
    """A bus for ``url``: ``memory://``, ``redis://host:6379/0``, ``amqp://user:pw@host/``,
    ``nats://host:4222``. ``options`` go to the broker's class (see each module)."""
    if not isinstance(url, str):
        raise TypeError("the bus url must be a str")
    kind = SCHEMES.get(urlsplit(url).scheme.lower())
    if kind == "memory":
        from clicktrace.bus._memory import MemoryBus

        return MemoryBus(tracer_provider=tracer_provider, **options)
    if kind == "redis":
        from clicktrace.bus._redis import RedisBus

        return RedisBus(url, tracer_provider=tracer_provider, **options)
    if kind == "rabbitmq":
        from clicktrace.bus._rabbitmq import RabbitMQBus

        return RabbitMQBus(url, tracer_provider=tracer_provider, **options)
    if kind == "nats":
        from clicktrace.bus._nats import NatsBus

        return NatsBus(url, tracer_provider=tracer_provider, **options)
    scheme = url.split(":", 1)[0][:20]
    raise ValueError(f"unknown bus url scheme {scheme!r}; use one of {sorted(SCHEMES)}")
