"""python-socketio managers with the clicktrace gate: in memory, Redis, RabbitMQ.

python-socketio's pub/sub managers carry an emit to every node and deliver it locally through
``super().emit``. Each class here lists :class:`_Gate` after the pub/sub manager, so the gate
sits exactly there: clicktrace frames go to the node's :class:`Hub` (exactly once, in order,
per socket), everything else to python-socketio unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio

from clicktrace._optional import require
from clicktrace.notify.delivery import Hub
from clicktrace.notify.frames import EVENT, Frame
from clicktrace.notify.socket_delivery import SocketDelivery

__all__ = ["gated_manager"]

_log = logging.getLogger("clicktrace.notify")
_RETRY_START, _RETRY_MAX = 0.5, 10.0


class _Gate(socketio.AsyncManager):  # type: ignore[misc]
    """Local delivery of clicktrace frames goes through the hub; everything else is untouched.

    Pub/sub managers deliver locally through ``super().emit``; listing this class after them
    puts the gate exactly there, on every node.
    """

    hub: Hub | None = None
    _retries: set[asyncio.Task[None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._retries = set()

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> Any:
        target = to or room
        if (
            self.hub is not None
            and event == EVENT
            and callback is None
            and (namespace or "/") == "/"
            and isinstance(target, str)
            and isinstance(data, dict)
            and "seq" in data
        ):
            await self.hub.dispatch(target, data)
            return None
        return await super().emit(
            event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
        )

    async def connect(self, sid: str, namespace: str) -> Any:
        # Called after the CONNECT packet is queued, so replayed frames follow it.
        result = await super().connect(sid, namespace)
        delivery = self.hub.get(sid) if self.hub is not None else None
        if delivery is not None and not await _resumed(delivery):
            # e.g. Redis unreachable. socket.io-client does not reconnect after a server-side
            # disconnect, so keep the socket (holding its live frames, bounded) and retry.
            task = asyncio.create_task(self._resume_later(sid, delivery))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        return result

    async def _resume_later(self, sid: str, delivery: SocketDelivery) -> None:
        delay = _RETRY_START
        while self.hub is not None and self.hub.get(sid) is delivery:
            await asyncio.sleep(delay)
            if await _resumed(delivery):
                return
            delay = min(delay * 2, _RETRY_MAX)

    async def cancel_retries(self) -> None:
        for task in list(self._retries):
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)

    async def send_to(self, sid: str, frame: Frame) -> None:
        await socketio.AsyncManager.emit(self, EVENT, frame, "/", to=sid)


async def _resumed(delivery: SocketDelivery) -> bool:
    try:
        await delivery.resume()
    except asyncio.CancelledError:
        raise
    except Exception:
        _log.warning("clicktrace: replay failed; retrying", exc_info=True)
        return False
    return True


class _LocalManager(_Gate):
    pass


class _RedisManager(socketio.AsyncRedisManager, _Gate):  # type: ignore[misc]
    pass


class _AioPikaManager(socketio.AsyncAioPikaManager, _Gate):  # type: ignore[misc]
    pass


def gated_manager(
    *, redis_url: str | None = None, amqp_url: str | None = None, channel: str = "clicktrace"
) -> _Gate:
    """An in-memory, Redis or RabbitMQ python-socketio manager with the clicktrace gate."""
    if redis_url and amqp_url:
        raise ValueError("give redis_url or amqp_url, not both")
    if redis_url:
        require("redis.asyncio", "redis")
        return _RedisManager(redis_url, channel=channel)
    if amqp_url:
        require("aio_pika", "rabbitmq")
        return _AioPikaManager(amqp_url, channel=channel)
    return _LocalManager()
