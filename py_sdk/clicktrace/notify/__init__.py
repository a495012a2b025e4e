"""Notifications that find their tab: signed client tokens, Socket.IO and WebSocket
transports, per-client seq with replay, traced per message."""

from clicktrace.notify.delivery import Hub, TooManyConnections
from clicktrace.notify.emitter import RedisEmitter
from clicktrace.notify.frames import EVENT, STATUSES, Frame, Hello, Status
from clicktrace.notify.notifier import Notifier
from clicktrace.notify.producer import Notify, Producer
from clicktrace.notify.replay import MemoryReplayBuffer, ReplayBuffer
from clicktrace.notify.replay_redis import RedisReplayBuffer
from clicktrace.notify.session import UserOf
from clicktrace.notify.tokens import Claims, Session, TokenSigner

__all__ = [
    "EVENT",
    "STATUSES",
    "Claims",
    "Frame",
    "Hello",
    "Hub",
    "MemoryReplayBuffer",
    "Notifier",
    "Notify",
    "Producer",
    "RedisEmitter",
    "RedisReplayBuffer",
    "ReplayBuffer",
    "Session",
    "Status",
    "TokenSigner",
    "TooManyConnections",
    "UserOf",
]
