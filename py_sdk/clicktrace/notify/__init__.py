"""Notifications that find their tab: signed client tokens, Socket.IO and WebSocket
transports, per-client seq with replay, traced per message.

.. code-block:: python

    notifier = Notifier(TokenSigner.from_env(), WebSocketTransport(), limits=Limits())
    app = Starlette(routes=[*notifier.routes, ...])
    await notifier.notify(client_id, correlation_id=..., status="confirmed", data={...})
    await notifier.publish("seats", {...}, version=7)  # to every tab watching "seats"

Here: what an app builds or types against. ``TokenSigner``'s ``Claims`` and ``Session``
(what its methods return) and the frame types stay in their modules: ``Claims`` and ``Status``
would read as ``clicktrace.claims`` and OpenTelemetry's ``Status``. The machinery is in the
``_`` modules, one per concept: ``_frames`` (the wire), ``_session`` (tokens and
``POST /clicktrace/session``), ``_replay`` (seq and the buffers), ``_hub`` (a node's
connections, exactly-once per socket, fan-out between nodes), ``_notifier`` (making a
notification, on a socket node or in a worker), ``_transport`` / ``_socketio`` /
``_websocket`` (how frames reach the tab). Names load on first
use, so ``import clicktrace.notify`` loads neither Starlette nor a broker client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clicktrace._lazy import lazy

if TYPE_CHECKING:
    from clicktrace.notify._hub import Limits
    from clicktrace.notify._notifier import Notifier, Notify, PublishUpdate, RedisEmitter
    from clicktrace.notify._replay import (
        MemoryReplayBuffer,
        RedisReplayBuffer,
        Replay,
        ReplayBuffer,
    )
    from clicktrace.notify._session import TokenSigner, UserOf
    from clicktrace.notify._transport import (
        Endpoint,
        SocketIOTransport,
        Transport,
        TransportSetup,
        WebSocketTransport,
    )

_WHERE = {
    "Endpoint": "clicktrace.notify._transport",
    "Limits": "clicktrace.notify._hub",
    "MemoryReplayBuffer": "clicktrace.notify._replay",
    "Notifier": "clicktrace.notify._notifier",
    "Notify": "clicktrace.notify._notifier",
    "PublishUpdate": "clicktrace.notify._notifier",
    "RedisEmitter": "clicktrace.notify._notifier",
    "RedisReplayBuffer": "clicktrace.notify._replay",
    "Replay": "clicktrace.notify._replay",
    "ReplayBuffer": "clicktrace.notify._replay",
    "SocketIOTransport": "clicktrace.notify._transport",
    "TokenSigner": "clicktrace.notify._session",
    "Transport": "clicktrace.notify._transport",
    "TransportSetup": "clicktrace.notify._transport",
    "UserOf": "clicktrace.notify._session",
    "WebSocketTransport": "clicktrace.notify._transport",
}

__all__ = [
    "Endpoint",
    "Limits",
    "MemoryReplayBuffer",
    "Notifier",
    "Notify",
    "PublishUpdate",
    "RedisEmitter",
    "RedisReplayBuffer",
    "Replay",
    "ReplayBuffer",
    "SocketIOTransport",
    "TokenSigner",
    "Transport",
    "TransportSetup",
    "UserOf",
    "WebSocketTransport",
]


__getattr__, __dir__ = lazy(__name__, _WHERE, __all__)
