"""The shipped transport factories: what each builds, with which options, and what it loads."""

from __future__ import annotations

import subprocess
import sys

import pytest
import socketio
from socketio.async_pubsub_manager import AsyncPubSubManager

from clicktrace.notify import MemoryReplayBuffer, TokenSigner, TransportFactory, transports
from clicktrace.notify.delivery import Hub
from clicktrace.notify.socketio_transport import SocketIOTransport
from clicktrace.notify.transport import TransportSetup
from clicktrace.notify.websocket_transport import WebSocketTransport
from clicktrace.web._limits import peer_address

from .conftest import AMQP_URL, SECRET

ORIGINS = ["https://app.example"]


def setup(prefix: str = "/clicktrace") -> TransportSetup:
    return TransportSetup(
        hub=Hub(MemoryReplayBuffer()),
        signer=TokenSigner(SECRET),
        user_of=None,
        redis_url=None,
        channel="clicktrace",
        prefix=prefix,
        hello_timeout=10.0,
        max_pending_per_peer=32,
        peer_of=peer_address,
    )


@pytest.mark.parametrize(
    "factory",
    [
        transports.socketio(cors_allowed_origins=ORIGINS, amqp_url=AMQP_URL),
        transports.by_name("socketio", cors_allowed_origins=ORIGINS, amqp_url=AMQP_URL),
    ],
    ids=["object", "shorthand"],
)
async def test_socketio_hands_its_options_to_python_socketio(factory: TransportFactory) -> None:
    built = factory.build(setup())
    try:
        assert isinstance(built, SocketIOTransport)
        assert built.sio.eio.cors_allowed_origins == ORIGINS
        assert isinstance(built.manager, socketio.AsyncAioPikaManager)
    finally:
        await built.aclose()


async def test_socketio_defaults_to_same_origin_and_this_node_only() -> None:
    built = transports.socketio().build(setup())
    try:
        assert isinstance(built, SocketIOTransport)
        assert built.sio.eio.cors_allowed_origins is None
        assert not isinstance(built.manager, AsyncPubSubManager)
    finally:
        await built.aclose()


@pytest.mark.parametrize(
    "factory",
    [transports.websocket(), transports.by_name("websocket")],
    ids=["object", "shorthand"],
)
def test_websocket_builds_its_route_under_the_prefix(factory: TransportFactory) -> None:
    built = factory.build(setup(prefix="/ct"))
    assert isinstance(built, WebSocketTransport)
    assert [getattr(r, "path", None) for r in built.routes] == ["/ct/ws"]


def test_each_factory_says_when_frames_cross_nodes() -> None:
    redis = "redis://127.0.0.1:6379/0"
    assert not transports.socketio().fans_out(None)
    assert transports.socketio().fans_out(redis)
    assert transports.socketio(amqp_url=AMQP_URL).fans_out(None)
    assert not transports.websocket().fans_out(None)
    assert transports.websocket().fans_out(redis)


def test_the_shorthand_keeps_websocket_off_amqp_and_knows_only_two_names() -> None:
    with pytest.raises(ValueError, match="redis_url"):
        transports.by_name("websocket", amqp_url=AMQP_URL)
    with pytest.raises(ValueError, match=r"\['socketio', 'websocket'\].*'sse'"):
        transports.by_name("sse")


def test_the_repr_names_the_factory_but_not_the_amqp_password() -> None:
    factory = transports.socketio(amqp_url="amqp://user:hunter2@broker/")
    assert repr(factory).startswith("socketio(") and "hunter2" not in repr(factory)
    assert repr(transports.websocket()) == "websocket()"


def test_choosing_the_websocket_never_loads_python_socketio() -> None:
    # python-socketio is installed here: only its absence from sys.modules tells.
    code = (
        "import sys\n"
        "from clicktrace.notify import Notifier, TokenSigner, transports\n"
        "Notifier(TokenSigner(None), transports.websocket())\n"
        "Notifier(TokenSigner(None), 'websocket')\n"
        "print(sorted(m for m in ('socketio', 'engineio') if m in sys.modules))\n"
        "Notifier(TokenSigner(None), transports.socketio())\n"
        "print(sorted(m for m in ('socketio', 'engineio') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['engineio', 'socketio']"]
