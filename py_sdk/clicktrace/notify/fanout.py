"""Redis pub/sub fan-out for the WebSocket transport (Socket.IO uses python-socketio's managers).

Every node subscribes to one channel; a message is ``{"client_id", "frame"}`` JSON. Publishing
is write-only, so worker processes use :func:`publish_frame` with no listener. The listener
reconnects with capped backoff and, once subscribed again, asks every local connection to catch
up from the replay buffer, since frames published during the outage never arrived live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from clicktrace._optional import require
from clicktrace.ids import parse_id
from clicktrace.notify.frames import Frame

__all__ = [
    "MAX_MESSAGE_BYTES",
    "REDIS_CONNECTIONS",
    "RedisFanout",
    "connect_redis",
    "import_redis",
    "publish_frame",
]

MAX_MESSAGE_BYTES = 1 << 20
REDIS_CONNECTIONS = 50
_BACKOFF_START, _BACKOFF_MAX = 0.1, 5.0
_log = logging.getLogger("clicktrace.notify")


def import_redis() -> Any:
    return require("redis.asyncio", "redis")


def connect_redis(url: str) -> Any:
    """A client whose pool waits for a free connection instead of failing: a burst of
    concurrent ``notify`` calls must queue, not raise "Too many connections"."""
    redis_asyncio = import_redis()
    pool = redis_asyncio.BlockingConnectionPool.from_url(url, max_connections=REDIS_CONNECTIONS)
    return redis_asyncio.Redis.from_pool(pool)


async def publish_frame(client: Any, channel: str, client_id: str, frame: Frame) -> None:
    await client.publish(channel, json.dumps({"client_id": client_id, "frame": frame}))


def _decode(data: object) -> tuple[str, Frame] | None:
    if not isinstance(data, bytes | str) or len(data) > MAX_MESSAGE_BYTES:
        return None
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    client_id, frame = message.get("client_id"), message.get("frame")
    cid = parse_id(client_id) if isinstance(client_id, str) else None
    if cid is None or not isinstance(frame, dict) or not isinstance(frame.get("seq"), int):
        return None
    return cid, frame


class RedisFanout:
    def __init__(
        self,
        redis_url: str,
        channel: str,
        dispatch: Callable[[str, Frame], Awaitable[None]],
        on_resubscribe: Callable[[], Awaitable[None]],
    ) -> None:
        self._redis = connect_redis(redis_url)
        self._channel = channel
        self._dispatch = dispatch
        self._on_resubscribe = on_resubscribe
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def publish(self, client_id: str, frame: Frame) -> None:
        await publish_frame(self._redis, self._channel, client_id, frame)

    async def start(self) -> None:
        """Start listening (once) and wait until subscribed, so nothing published after this
        returns is missed."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="clicktrace-notify-fanout")
        await self._subscribed.wait()

    async def _listen(self) -> None:
        backoff, first = _BACKOFF_START, True
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                if not first:
                    await self._on_resubscribe()
                first, backoff = False, _BACKOFF_START
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    decoded = _decode(message.get("data"))
                    if decoded is None:
                        _log.warning("clicktrace: dropped a malformed fan-out message")
                        continue
                    await self._dispatch(*decoded)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.warning("clicktrace: fan-out listener lost Redis; retrying", exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            finally:
                await pubsub.aclose()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()
