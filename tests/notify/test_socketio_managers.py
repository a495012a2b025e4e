"""The gated python-socketio managers (their behaviour end to end is in the transport tests)."""

from __future__ import annotations

import sys

import pytest
import socketio
from socketio.async_pubsub_manager import AsyncPubSubManager

from clicktrace.notify.socketio_managers import _Gate, gated_manager

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.mark.parametrize(
    ("kwargs", "base"),
    [
        ({}, socketio.AsyncManager),
        ({"redis_url": REDIS_URL}, socketio.AsyncRedisManager),
        ({"amqp_url": AMQP_URL}, socketio.AsyncAioPikaManager),
    ],
)
def test_the_gate_sits_where_pub_sub_managers_deliver_locally(
    kwargs: dict[str, str], base: type
) -> None:
    manager = gated_manager(channel="ct-test", **kwargs)
    mro = type(manager).__mro__
    assert isinstance(manager, base) and isinstance(manager, _Gate)
    # Local delivery is super().emit from the pub/sub manager: the gate must come right after
    # it and before python-socketio's AsyncManager, or frames would bypass the hub.
    assert mro.index(_Gate) == mro.index(socketio.AsyncManager) - 1
    if base is not socketio.AsyncManager:
        assert mro.index(base) < mro.index(AsyncPubSubManager) < mro.index(_Gate)


def test_one_fan_out_only() -> None:
    with pytest.raises(ValueError):
        gated_manager(redis_url=REDIS_URL, amqp_url=AMQP_URL)


def test_without_aio_pika_installed_the_hint_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aio_pika", None)
    with pytest.raises(ImportError) as info:
        gated_manager(amqp_url=AMQP_URL)
    assert str(info.value) == "aio_pika is not installed: pip install 'clicktrace[rabbitmq]'"
