"""The shipped transport objects: what each builds, with which options, what it loads, and
how a worker publishes through it; and the rate-limited warning line both endpoints write."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import socketio
from socketio.async_pubsub_manager import AsyncPubSubManager

from clicktrace.notify import (
    Limits,
    MemoryReplayBuffer,
    SocketIOTransport,
    TokenSigner,
    Transport,
    TransportSetup,
    WebSocketTransport,
)
from clicktrace.notify._hub import Hub
from clicktrace.notify._socketio import SocketIOEndpoint
from clicktrace.notify._transport import QuietLog
from clicktrace.notify._websocket import WebSocketEndpoint

from .conftest import AMQP_URL, REDIS_URL, SECRET

ORIGINS = ["https://app.example"]


def setup(prefix: str = "/clicktrace") -> TransportSetup:
    return TransportSetup(
        hub=Hub(MemoryReplayBuffer()),
        signer=TokenSigner(SECRET),
        user_of=None,
        prefix=prefix,
        limits=Limits(),
    )


async def test_socketio_hands_its_options_to_python_socketio() -> None:
    transport: Transport = SocketIOTransport(cors_allowed_origins=ORIGINS, amqp_url=AMQP_URL)
    built = transport.build(setup())
    try:
        assert isinstance(built, SocketIOEndpoint)
        assert built.sio.eio.cors_allowed_origins == ORIGINS
        assert isinstance(built.manager, socketio.AsyncAioPikaManager)
    finally:
        await built.aclose()


async def test_socketio_defaults_to_same_origin_and_this_node_only() -> None:
    built = SocketIOTransport().build(setup())
    try:
        assert isinstance(built, SocketIOEndpoint)
        assert built.sio.eio.cors_allowed_origins is None
        assert not isinstance(built.manager, AsyncPubSubManager)
    finally:
        await built.aclose()


def test_websocket_builds_its_route_under_the_prefix() -> None:
    built = WebSocketTransport().build(setup(prefix="/ct"))
    assert isinstance(built, WebSocketEndpoint)
    assert [getattr(r, "path", None) for r in built.routes] == ["/ct/ws"]


def test_each_transport_says_when_frames_cross_nodes() -> None:
    assert not SocketIOTransport().fans_out()
    assert SocketIOTransport(redis_url=REDIS_URL).fans_out()
    assert SocketIOTransport(amqp_url=AMQP_URL).fans_out()
    assert not WebSocketTransport().fans_out()
    assert WebSocketTransport(redis_url=REDIS_URL).fans_out()


def test_socketio_fans_out_over_one_broker_and_a_worker_needs_one() -> None:
    with pytest.raises(ValueError, match="not both"):
        SocketIOTransport(redis_url=REDIS_URL, amqp_url=AMQP_URL)
    with pytest.raises(ValueError, match="redis_url or amqp_url"):
        SocketIOTransport().publisher()
    with pytest.raises(ValueError, match="redis_url"):
        WebSocketTransport().publisher()


def test_the_repr_names_the_transport_but_not_the_broker_passwords() -> None:
    transport = SocketIOTransport(amqp_url="amqp://user:hunter2@broker/")
    assert repr(transport).startswith("SocketIOTransport(") and "hunter2" not in repr(transport)
    websocket = WebSocketTransport(redis_url="redis://:hunter2@redis/")
    assert repr(websocket).startswith("WebSocketTransport(") and "hunter2" not in repr(websocket)


def test_choosing_the_websocket_never_loads_python_socketio() -> None:
    # python-socketio is installed here: only its absence from sys.modules tells.
    code = (
        "import sys\n"
        "from clicktrace.notify import Notifier, SocketIOTransport, TokenSigner\n"
        "from clicktrace.notify import WebSocketTransport\n"
        "Notifier(TokenSigner(None), WebSocketTransport())\n"
        "print(sorted(m for m in ('socketio', 'engineio') if m in sys.modules))\n"
        "Notifier(TokenSigner(None), SocketIOTransport())\n"
        "print(sorted(m for m in ('socketio', 'engineio') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['engineio', 'socketio']"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_and_a_count_of_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    quiet = QuietLog(logging.getLogger("test.quiet"), 10.0, clock=clock)
    with caplog.at_level(logging.WARNING, "test.quiet"):
        for _ in range(2000):
            quiet.warn("bad frame", "203.0.113.7")
        clock.now = 10.0
        quiet.warn("bad frame", "203.0.113.7\n" + "x" * 500)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "clicktrace: bad frame from '203.0.113.7'",
        "clicktrace: bad frame from '203.0.113.7\\n"
        + "x" * 52
        + "'; 1999 more since the last line",
    ]
    assert not any(r.exc_info for r in caplog.records)
