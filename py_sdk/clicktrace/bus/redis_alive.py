"""Which Redis consumers are alive: each bus keeps a key ``clicktrace:alive:<consumer>`` that
expires ``alive_ms`` after its last refresh (refreshed every third of that, in its own task,
so a long handler does not make its consumer look dead). A consumer whose key is gone and
that has been idle in the group as long is dead: its pending entries can be taken at once,
without waiting for them to idle for ``claim_idle_ms``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

__all__ = ["ALIVE_PREFIX", "Heartbeat", "dead_consumers"]

ALIVE_PREFIX = "clicktrace:alive:"
log = logging.getLogger("clicktrace.bus")


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Heartbeat:
    def __init__(self, client: Any, consumer: str, alive_ms: int) -> None:
        self._client, self._key, self._alive_ms = client, ALIVE_PREFIX + consumer, alive_ms
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._beat()
        self._task = asyncio.create_task(self._beating(), name="clicktrace redis heartbeat")

    async def stop(self) -> None:
        """Stop beating and delete the key: gone on purpose, what the consumer left pending
        is for the others to take now."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._client.delete(self._key)

    async def _beat(self) -> None:
        await self._client.set(self._key, b"1", px=self._alive_ms)

    async def _beating(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._alive_ms / 3000)
            try:
                await self._beat()
            except Exception as exc:
                if not failing:  # one line per outage, not one traceback a second
                    log.warning("clicktrace bus: redis heartbeat failed (%r); retrying", exc)
                failing = True
            else:
                if failing:
                    log.info("clicktrace bus: redis heartbeat back")
                failing = False


async def dead_consumers(client: Any, topic: str, group: str, me: str, alive_ms: int) -> list[str]:
    """Consumers of ``group`` other than ``me`` holding pending entries, idle in the group for
    over ``alive_ms`` and without a heartbeat key (one of a version without heartbeats, or
    one just starting, is not taken for dead while it still reads)."""
    dead = []
    for consumer in await client.xinfo_consumers(topic, group):
        name = text(consumer["name"])
        if name == me or not int(consumer["pending"]) or int(consumer["idle"]) <= alive_ms:
            continue
        if not await client.exists(ALIVE_PREFIX + name):
            dead.append(name)
    return dead
