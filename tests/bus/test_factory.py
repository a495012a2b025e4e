"""create_bus picks the backend by URL scheme: one setting switches the broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clicktrace.bus import MemoryBus, NatsBus, RabbitMQBus, RedisBus, create_bus


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", MemoryBus),
        ("redis://localhost:6379/0", RedisBus),
        ("rediss://localhost:6380/0", RedisBus),
        ("amqp://guest:guest@localhost:5672/", RabbitMQBus),
        ("AMQPS://localhost/", RabbitMQBus),
        ("nats://localhost:4222", NatsBus),
        ("tls://localhost:4222", NatsBus),
    ],
)
def test_scheme_picks_the_backend(url: str, kind: type) -> None:
    assert type(create_bus(url)) is kind


def test_options_reach_the_backend_and_are_checked() -> None:
    bus = create_bus("redis://localhost", consumer_name="c1", claim_idle_ms=5)
    assert isinstance(bus, RedisBus) and bus.consumer_name == "c1"
    with pytest.raises(ValueError):
        create_bus("redis://localhost", batch=0)
    with pytest.raises(ValueError):
        create_bus("amqp://localhost", queue_type="lazy")
    with pytest.raises(ValueError):
        create_bus("nats://localhost", ack_wait=0)
    with pytest.raises(TypeError):
        create_bus("memory://", nonsense=True)


@pytest.mark.parametrize("url", ["kafka://localhost", "http://x", "", "localhost:6379"])
def test_unknown_schemes_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unknown bus url scheme"):
        create_bus(url)


def test_the_broker_adapters_load_only_when_named() -> None:
    script = (
        "import sys, clicktrace.bus\n"
        "names = ('_redis', '_rabbitmq', '_nats')\n"
        "print([n for n in names if 'clicktrace.bus.' + n in sys.modules])\n"
        "clicktrace.bus.RedisBus\n"
        "print([n for n in names if 'clicktrace.bus.' + n in sys.modules])\n"
        "print([m for m in ('redis', 'aio_pika', 'nats') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['_redis']", "[]"]  # and no broker client until a bus is built
