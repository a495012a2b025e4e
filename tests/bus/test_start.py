"""Misuse fails fast: a handler that is not a coroutine function is refused at subscribe time,
and ``start()`` against a broker that is down retries with capped backoff, one log line per
attempt and no traceback, then raises :class:`BusUnavailable` after ``start_timeout``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from clicktrace.bus import BusNotRunning, BusUnavailable, MemoryBus, create_bus
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.testing import free_port, unique_name

CLOSED = {
    "redis": "redis://127.0.0.1:{port}/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:{port}/",
    "nats": "nats://127.0.0.1:{port}",
}


@pytest.mark.parametrize("broker", sorted(CLOSED))
async def test_start_against_a_closed_port_gives_up_after_its_bound_in_one_line_per_try(
    broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # locked for this run, and nothing listens there
    bus = create_bus(CLOSED[broker].format(port=port), start_timeout=1.5)

    async def handler(envelope: Envelope) -> None:
        pass

    topic = unique_name()
    bus.subscribe(topic, handler, group="g")
    with pytest.raises(
        BusUnavailable, match=f"the {bus.system} broker did not answer within 1.5 s"
    ):
        await bus.start()
    with pytest.raises(BusNotRunning):  # and it is left stopped
        await bus.publish(topic, new_envelope("T", {}))
    tries = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert tries, "each attempt says so"
    assert all(r.levelno == logging.WARNING and "\n" not in r.getMessage() for r in tries)
    assert [r.name for r in caplog.records if r.exc_info] == []  # no traceback, from anyone


def test_start_timeout_must_be_positive() -> None:
    for bad in (0, -1.0, True):
        with pytest.raises(ValueError, match="start_timeout"):
            create_bus("redis://127.0.0.1:1/0", start_timeout=bad)


async def plain(envelope: Envelope) -> None:
    pass


class Handlers:
    async def method(self, envelope: Envelope) -> None:
        pass

    def sync_method(self, envelope: Envelope) -> None:
        pass


class AsyncCall:
    async def __call__(self, envelope: Envelope) -> None:
        pass


class AsyncHook:
    async def __call__(self, envelope: Envelope, reason: str) -> None:
        pass


class SyncCall:
    def __call__(self, envelope: Envelope) -> None:
        pass


def sync_function(envelope: Envelope) -> None:
    pass


ACCEPTED: list[Callable[..., Any]] = [plain, Handlers().method, AsyncCall(), partial(plain)]
REFUSED: list[Callable[..., Any]] = [
    sync_function,
    Handlers().sync_method,
    SyncCall(),
    lambda envelope: None,
]


@pytest.mark.parametrize("handler", ACCEPTED)
def test_async_functions_methods_and_async_callables_are_accepted(
    handler: Callable[..., Any],
) -> None:
    MemoryBus().subscribe("t", handler, group="g", on_dead_letter=AsyncHook())


@pytest.mark.parametrize("handler", REFUSED)
def test_a_handler_that_is_not_a_coroutine_function_is_refused_at_subscribe(
    handler: Callable[..., Any],
) -> None:
    bus = MemoryBus()
    with pytest.raises(TypeError, match="must be a coroutine function: define it with 'async def'"):
        bus.subscribe("t", handler, group="g")
    with pytest.raises(TypeError, match="on_dead_letter"):
        bus.subscribe("t", plain, group="g", on_dead_letter=handler)
    with pytest.raises(TypeError, match="async callable"):
        bus.subscribe("t", "not callable", group="g")  # type: ignore[arg-type]
    assert bus._subscriptions == []
