"""The demo switches broker by one setting (the bus URL): the same click goes through each
real broker on this machine, lands in the read model, and keeps one trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from clicktrace.bus import create_bus
from clicktrace.ids import new_id
from e2e.test_trace_check import click_through

BROKERS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}


@pytest.mark.parametrize("url", BROKERS.values(), ids=BROKERS.keys())
def test_demo_runs_on_each_broker(tmp_path: Path, url: str) -> None:
    name = f"Via broker {new_id()}"
    problems, products = click_through(
        tmp_path, lambda tp: create_bus(url, tracer_provider=tp), name
    )
    assert problems == []
    assert products[0]["name"] == name
