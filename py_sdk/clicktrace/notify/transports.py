"""The socket transports clicktrace ships, chosen by an object as the plugin chooses its own:

.. code-block:: python

    from clicktrace.notify import Notifier, transports

    Notifier(signer, transport=transports.socketio(cors_allowed_origins=["https://app.example"]))
    Notifier(signer, transport=transports.websocket())

Short names in a module of their own, the Python spelling of ``socketIoTransport()`` /
``webSocketTransport()``: read as ``transports.socketio``, they cannot shadow python-socketio's
``import socketio`` nor the ``socketio_transport`` module. Each factory only holds options and
imports its transport when the Notifier builds it, so choosing the WebSocket never loads
python-socketio (the ``socketio`` extra), and a missing extra fails at ``Notifier(...)``.
"""

from __future__ import annotations

from collections.abc import Callable

from clicktrace._optional import require
from clicktrace.notify.transport import Transport, TransportFactory, TransportSetup

__all__ = ["by_name", "socketio", "websocket"]


class _SocketIO:
    def __init__(self, cors_allowed_origins: str | list[str] | None, amqp_url: str | None) -> None:
        self.cors_allowed_origins = cors_allowed_origins
        self.amqp_url = amqp_url

    def __repr__(self) -> str:  # not the AMQP URL: it may hold a password
        amqp = ", amqp_url=..." if self.amqp_url else ""
        return f"socketio(cors_allowed_origins={self.cors_allowed_origins!r}{amqp})"

    def fans_out(self, redis_url: str | None) -> bool:
        return bool(redis_url or self.amqp_url)

    def build(self, setup: TransportSetup) -> Transport:
        require("socketio", "socketio", package="python-socketio")
        from clicktrace.notify.socketio_transport import SocketIOTransport

        return SocketIOTransport(
            setup.hub,
            setup.signer,
            user_of=setup.user_of,
            redis_url=setup.redis_url,
            amqp_url=self.amqp_url,
            channel=setup.channel,
            cors_allowed_origins=self.cors_allowed_origins,
            hello_timeout=setup.hello_timeout,
            max_pending_per_peer=setup.max_pending_per_peer,
            peer_of=setup.peer_of,
            max_connections_per_peer=setup.max_connections_per_peer,
        )


class _WebSocket:
    def __repr__(self) -> str:
        return "websocket()"

    def fans_out(self, redis_url: str | None) -> bool:
        return bool(redis_url)

    def build(self, setup: TransportSetup) -> Transport:
        from clicktrace.notify.websocket_transport import WebSocketTransport

        return WebSocketTransport(
            setup.hub,
            setup.signer,
            user_of=setup.user_of,
            redis_url=setup.redis_url,
            channel=setup.channel,
            path=setup.prefix + "/ws",
            hello_timeout=setup.hello_timeout,
            max_pending_per_peer=setup.max_pending_per_peer,
            peer_of=setup.peer_of,
            max_connections_per_peer=setup.max_connections_per_peer,
        )


def socketio(
    *, cors_allowed_origins: str | list[str] | None = None, amqp_url: str | None = None
) -> TransportFactory:
    """python-socketio's ``AsyncServer`` in front of the app (the plugin's ``socketIoTransport()``).

    ``cors_allowed_origins``: python-socketio's setting (``None``: same origin only).
    ``amqp_url``: fan out through RabbitMQ (python-socketio's ``AsyncAioPikaManager``) instead
    of the Notifier's ``redis_url``; seq needs a shared replay buffer, so give the Notifier
    ``redis_url`` too (it then holds only the buffer) or a ``buffer`` of your own.
    """
    return _SocketIO(cors_allowed_origins, amqp_url)


def websocket() -> TransportFactory:
    """The plain WebSocket route ``<prefix>/ws`` (the plugin's ``webSocketTransport()``); it fans
    out through the Notifier's ``redis_url``."""
    return _WebSocket()


def _socketio_named(
    cors_allowed_origins: str | list[str] | None, amqp_url: str | None
) -> TransportFactory:
    return socketio(cors_allowed_origins=cors_allowed_origins, amqp_url=amqp_url)


def _websocket_named(
    cors_allowed_origins: str | list[str] | None, amqp_url: str | None
) -> TransportFactory:
    if amqp_url:
        raise ValueError("the WebSocket transport fans out through Redis (redis_url)")
    return websocket()  # cors_allowed_origins never applied to it


# The shorthand strings, each with the Notifier's own Socket.IO keywords (the form before
# factories, kept for apps and settings that name the transport by a string).
_NAMED: dict[str, Callable[[str | list[str] | None, str | None], TransportFactory]] = {
    "socketio": _socketio_named,
    "websocket": _websocket_named,
}


def by_name(
    name: str, *, cors_allowed_origins: str | list[str] | None = None, amqp_url: str | None = None
) -> TransportFactory:
    """The factory a shorthand string names; ``ValueError`` for any other string."""
    make = _NAMED.get(name)
    if make is None:
        raise ValueError(f"transport must be one of {sorted(_NAMED)} or a factory, not {name!r}")
    return make(cors_allowed_origins, amqp_url)
