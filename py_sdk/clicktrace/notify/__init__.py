"""Notifications that find their tab: signed client tokens, Socket.IO and WebSocket
transports, per-client seq with replay, traced per message.

Here: what an app builds or types against; ``transports.socketio(...)`` /
``transports.websocket()`` choose how frames reach the tab. The machinery (``delivery.Hub``,
``producer.Producer``, ``frames.Frame`` / ``Hello`` / ``EVENT``) stays in its module.
"""

from clicktrace.notify import transports
from clicktrace.notify.delivery import TooManyConnections
from clicktrace.notify.emitter import RedisEmitter
from clicktrace.notify.frames import Status
from clicktrace.notify.notifier import Notifier
from clicktrace.notify.producer import Notify
from clicktrace.notify.replay import MemoryReplayBuffer, ReplayBuffer
from clicktrace.notify.replay_redis import RedisReplayBuffer
from clicktrace.notify.session import UserOf
from clicktrace.notify.tokens import Claims, Session, TokenSigner
from clicktrace.notify.transport import Transport, TransportFactory, TransportName, TransportSetup

__all__ = [
    "Claims",
    "MemoryReplayBuffer",
    "Notifier",
    "Notify",
    "RedisEmitter",
    "RedisReplayBuffer",
    "ReplayBuffer",
    "Session",
    "Status",
    "TokenSigner",
    "TooManyConnections",
    "Transport",
    "TransportFactory",
    "TransportName",
    "TransportSetup",
    "UserOf",
    "transports",
]
