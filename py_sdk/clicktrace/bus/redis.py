"""Redis Streams: one stream per topic, one consumer group per subscription group.

Native headers are stream fields beside ``body``. A consumer that dies leaves its entries
pending. Each bus keeps a heartbeat key ``clicktrace:alive:<consumer>`` (``alive_ms``) while
it is connected; a live consumer takes over at once the pending entries of a consumer whose
key is gone, so a restarted process resumes its dead predecessor's work within seconds instead
of waiting out ``claim_idle_ms``. Entries idle longer than that are still reclaimed from
anyone (XAUTOCLAIM: a consumer alive but stuck). The delivery counter carries the attempts on.
Dead letters go to the stream ``<topic>:dlq:<group>``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider

from clicktrace._optional import require
from clicktrace.bus.base import Bus
from clicktrace.bus.redis_alive import Heartbeat, dead_consumers, text
from clicktrace.bus.types import Received, Subscription
from clicktrace.ids import new_id

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisBus"]

BODY = b"body"
DEAD_CONSUMER_IDLES = 10  # idle for this many claim periods, nothing pending: gone


def _dlq(topic: str, group: str) -> str:
    return f"{topic}:dlq:{group}"  # ':' is not allowed in topic names: no collisions


def _headers(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in fields.items() if k != BODY}


class _Delivery(Received):
    __slots__ = ("_bus", "_id", "_sub")

    def __init__(
        self,
        bus: RedisBus,
        sub: Subscription,
        entry_id: bytes,
        fields: Mapping[bytes, bytes],
        delivery_count: int = 1,
    ) -> None:
        super().__init__(fields.get(BODY, b""), _headers(fields), delivery_count)
        self._bus, self._sub, self._id = bus, sub, entry_id

    async def ack(self) -> None:
        await self._bus._client.xack(self._sub.topic, self._sub.group, self._id)

    async def touch(self) -> None:
        # Re-claiming it for ourselves resets its idle time, so nobody else takes it over.
        await self._bus._client.xclaim(
            self._sub.topic,
            self._sub.group,
            self._bus.consumer_name,
            0,
            [self._id],
            justid=True,
        )


class RedisBus(Bus):
    """``RedisBus("redis://localhost:6379/0")``. ``maxlen`` trims streams approximately
    (None keeps everything: trimming can drop entries a slow group has not read)."""

    system = "redis"

    def __init__(
        self,
        url: str,
        *,
        tracer_provider: TracerProvider | None = None,
        batch: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        maxlen: int | None = None,
        consumer_name: str | None = None,
        alive_ms: int = 3000,
    ) -> None:
        """``alive_ms``: how long a consumer's heartbeat key outlives its last refresh (it is
        refreshed every third of that); a consumer silent for longer counts as dead."""
        self._redis = require("redis.asyncio", "redis")
        super().__init__(tracer_provider=tracer_provider)
        if batch < 1 or block_ms < 1 or claim_idle_ms < 1 or alive_ms < 3:
            raise ValueError("batch, block_ms, claim_idle_ms must be >= 1, alive_ms >= 3")
        self._url = url
        self._batch, self._block_ms, self._claim_idle_ms = batch, block_ms, claim_idle_ms
        self._maxlen = maxlen
        self._alive_ms = alive_ms
        self._close_grace = block_ms / 1000 + 1
        self.consumer_name = consumer_name or new_id()
        self._client_: Redis | None = None
        self._heartbeat: Heartbeat | None = None

    @property
    def _client(self) -> Redis:
        if self._client_ is None:
            raise RuntimeError("RedisBus is not connected")
        return self._client_

    async def _connect(self) -> None:
        client: Redis = self._redis.Redis.from_url(self._url)
        await client.ping()
        self._client_ = client
        self._heartbeat = Heartbeat(client, self.consumer_name, self._alive_ms)
        await self._heartbeat.start()

    async def _disconnect(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            await heartbeat.stop()
        client, self._client_ = self._client_, None
        if client is not None:
            await client.aclose()

    async def _ping(self) -> None:
        await self._client.ping()

    async def _prepare(self, sub: Subscription) -> None:
        try:
            # From the stream's start: entries published before the group existed are
            # not lost (an outbox relay may run before the projection's first start).
            await self._client.xgroup_create(sub.topic, sub.group, id="0", mkstream=True)
        except self._redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        fields: dict[Any, Any] = {BODY: body, **headers}
        await self._client.xadd(topic, fields, maxlen=self._maxlen, approximate=True)

    async def _listen(self, sub: Subscription) -> None:
        await self._prepare(sub)  # again: the stream may have been deleted meanwhile
        last_claim = last_takeover = 0.0
        while self._consuming:
            if time.monotonic() - last_claim > self._claim_idle_ms / 2000:
                last_claim = time.monotonic()
                await self._reclaim(sub)
            if time.monotonic() - last_takeover > self._alive_ms / 5000:
                last_takeover = time.monotonic()
                await self._take_over_dead(sub)
            streams: Any = await self._client.xreadgroup(
                sub.group,
                self.consumer_name,
                {sub.topic: ">"},
                count=self._batch,
                block=self._block_ms,
            )
            for _, entries in streams or ():
                for entry_id, fields in entries:
                    await self._deliver(sub, _Delivery(self, sub, entry_id, fields))

    async def _reclaim(self, sub: Subscription) -> None:
        """Take over what dead consumers left pending, attempts counting on."""
        start: Any = "0-0"
        while True:
            reply: Any = await self._client.xautoclaim(
                sub.topic,
                sub.group,
                self.consumer_name,
                self._claim_idle_ms,
                start_id=start,
                count=self._batch,
            )
            start, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if fields is None:  # deleted from the stream meanwhile (Redis 6.2 reports it so)
                    await self._client.xack(sub.topic, sub.group, entry_id)
                    continue
                pending = await self._client.xpending_range(
                    sub.topic, sub.group, min=entry_id, max=entry_id, count=1
                )
                count = int(pending[0]["times_delivered"]) if pending else 1
                await self._deliver(sub, _Delivery(self, sub, entry_id, fields, count))
            if start in (b"0-0", "0-0"):
                break
        await self._forget_dead_consumers(sub)

    async def _take_over_dead(self, sub: Subscription) -> None:
        """Claim, and handle now, the entries pending on consumers whose heartbeat is gone."""
        for name in await dead_consumers(
            self._client, sub.topic, sub.group, self.consumer_name, self._alive_ms
        ):
            while self._consuming:
                pending: Any = await self._client.xpending_range(
                    sub.topic,
                    sub.group,
                    min="-",
                    max="+",
                    count=self._batch,
                    consumername=name,
                )
                if not pending:
                    break
                ids = [p["message_id"] for p in pending]
                counts = {text(p["message_id"]): int(p["times_delivered"]) for p in pending}
                claimed: Any = await self._client.xclaim(
                    sub.topic, sub.group, self.consumer_name, 0, ids
                )
                for entry_id, fields in claimed:
                    if fields is None:
                        await self._client.xack(sub.topic, sub.group, entry_id)
                        continue
                    # XCLAIM counted one more delivery: the attempts carry on from there.
                    count = counts.get(text(entry_id), 0) + 1
                    await self._deliver(sub, _Delivery(self, sub, entry_id, fields, count))
                if len(pending) < self._batch:
                    break

    async def _forget_dead_consumers(self, sub: Subscription) -> None:
        # Every process start makes a new consumer name; drop the long-idle ones that hold
        # nothing any more, so the group does not grow without bound.
        consumers: Any = await self._client.xinfo_consumers(sub.topic, sub.group)
        for consumer in consumers:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            idle_enough = int(consumer["idle"]) > self._claim_idle_ms * DEAD_CONSUMER_IDLES
            if name != self.consumer_name and not int(consumer["pending"]) and idle_enough:
                await self._client.xgroup_delconsumer(sub.topic, sub.group, name)

    async def _send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None:
        fields: dict[Any, Any] = {BODY: body, **headers}
        await self._client.xadd(_dlq(sub.topic, sub.group), fields)

    async def _read_dead_letters(
        self, topic: str, group: str, limit: int
    ) -> list[tuple[bytes, Mapping[str, str]]]:
        entries: Any = await self._client.xrange(_dlq(topic, group), count=limit)
        return [(fields.get(BODY, b""), _headers(fields)) for _, fields in entries]
