"""Redis Streams: one stream per topic, one consumer group per subscription group.

Native headers are stream fields beside ``body``. A consumer that dies leaves its entries
pending. Each bus keeps a heartbeat key ``clicktrace:alive:<consumer>`` (``alive_ms``) while
it is connected; a live consumer takes over at once the pending entries of a consumer whose
key is gone, so a restarted process resumes its dead predecessor's work within seconds instead
of waiting out ``claim_idle_ms``. Entries idle longer than that are still reclaimed from
anyone (XAUTOCLAIM: a consumer alive but stuck). The delivery counter carries the attempts on.
Dead letters go to the stream ``<topic>:dlq:<group>``.

Which consumers are alive: the heartbeat key expires ``alive_ms`` after its last refresh
(refreshed every third of that, in its own task, so a long handler does not make its consumer
look dead). A consumer whose key is gone and that has been idle in the group as long is dead:
its pending entries can be taken at once, without waiting for them to idle for
``claim_idle_ms``.

Bounded: every ``trim_interval`` seconds each consumer trims its stream to what every group
has acked (``XTRIM MINID ~`` at the oldest entry a group still holds pending or has not yet
read), and every XADD carries an approximate ``MAXLEN`` safety cap (``maxlen``) for a stream
whose consumers are all away. Dead-letter streams are capped at ``dead_letter_maxlen`` entries
and trimmed to ``dead_letter_max_age`` seconds.

A Redis that restarts without persistence forgets streams and groups: the consumer sees
NOGROUP (or reconnects), re-creates its group from the stream's start, says so once in the log
and in ``bus.recoveries`` / ``bus.last_recovery``, and reads on; a producer's XADD makes the
stream again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider

from clicktrace._optional import require
from clicktrace.bus._base import DEFAULT_START_TIMEOUT, Bus
from clicktrace.bus._types import Received, Subscription
from clicktrace.ids import new_id

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisBus"]

BODY = b"body"
DEAD_CONSUMER_IDLES = 10  # idle for this many claim periods, nothing pending: gone
DEFAULT_MAXLEN = 1_000_000
TRIM_ROUNDS = 100  # at most a million entries trimmed per stream and pass
DEFAULT_DEAD_LETTER_MAXLEN = 10_000
DEFAULT_DEAD_LETTER_MAX_AGE = 7 * 24 * 3600.0
# Replies meaning the stream or the group is not there (any more).
_LOST = ("NOGROUP", "no such key")
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


def _id(value: Any) -> tuple[int, int]:
    ms, _, seq = text(value).partition("-")
    return int(ms), int(seq or 0)


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
    """``RedisBus("redis://localhost:6379/0")``. ``maxlen``: the approximate safety cap on a
    stream (None: none; reaching it drops entries a slow group has not read, which is why the
    default is high and acked entries are trimmed first, every ``trim_interval`` seconds; 0
    turns that trimming off)."""

    system = "redis"

    def __init__(
        self,
        url: str,
        *,
        tracer_provider: TracerProvider | None = None,
        batch: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        maxlen: int | None = DEFAULT_MAXLEN,
        trim_interval: float = 10.0,
        dead_letter_maxlen: int = DEFAULT_DEAD_LETTER_MAXLEN,
        dead_letter_max_age: float = DEFAULT_DEAD_LETTER_MAX_AGE,
        consumer_name: str | None = None,
        alive_ms: int = 3000,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        """``alive_ms``: how long a consumer's heartbeat key outlives its last refresh (it is
        refreshed every third of that); a consumer silent for longer counts as dead."""
        self._redis = require("redis.asyncio", "redis")
        super().__init__(tracer_provider=tracer_provider, start_timeout=start_timeout)
        if batch < 1 or block_ms < 1 or claim_idle_ms < 1 or alive_ms < 3:
            raise ValueError("batch, block_ms, claim_idle_ms must be >= 1, alive_ms >= 3")
        if (maxlen is not None and maxlen < 1) or dead_letter_maxlen < 1:
            raise ValueError("maxlen and dead_letter_maxlen must be >= 1")
        if trim_interval < 0 or dead_letter_max_age <= 0:
            raise ValueError("trim_interval must be >= 0 and dead_letter_max_age > 0")
        self._url = url
        self._batch, self._block_ms, self._claim_idle_ms = batch, block_ms, claim_idle_ms
        self._maxlen = maxlen
        self._trim_interval = trim_interval
        self._dead_letter_maxlen = dead_letter_maxlen
        self._dead_letter_max_age = dead_letter_max_age
        self._groups_made: set[str] = set()  # subscriptions whose group this bus has ensured
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

    def _is_outage(self, exc: BaseException) -> bool:
        errors = self._redis.ConnectionError, self._redis.TimeoutError
        return isinstance(exc, errors) or super()._is_outage(exc)

    async def _prepare(self, sub: Subscription) -> None:
        try:
            # From the stream's start: entries published before the group existed are
            # not lost (an outbox relay may run before the projection's first start).
            await self._client.xgroup_create(sub.topic, sub.group, id="0", mkstream=True)
        except self._redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        else:
            if sub.consumer in self._groups_made:  # made before, so Redis forgot it
                self._recovered(f"consumer group {sub.group!r} of stream {sub.topic!r}")
        self._groups_made.add(sub.consumer)

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        fields: dict[Any, Any] = {BODY: body, **headers}
        await self._client.xadd(topic, fields, maxlen=self._maxlen, approximate=True)

    async def _listen(self, sub: Subscription) -> None:
        # Again on every (re)start: Redis may have lost the stream and group meanwhile.
        await self._prepare(sub)
        try:
            await self._consume(sub)
        except self._redis.ResponseError as exc:
            if not any(lost in str(exc) for lost in _LOST):
                raise
            # The group (or the whole stream) is gone: return, and _run calls us again at
            # once (no failure counted), which re-creates it.

    async def _consume(self, sub: Subscription) -> None:
        last_claim = last_takeover = last_trim = 0.0
        while self._consuming:
            if self._trim_interval and time.monotonic() - last_trim > self._trim_interval:
                last_trim = time.monotonic()
                await self.trim(sub.topic, sub.group)
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

    async def trim(self, topic: str, group: str) -> None:
        """Drop what every group of ``topic`` has acked, and ``group``'s dead letters older
        than ``dead_letter_max_age`` (what each consumer runs every ``trim_interval``).

        Only groups that exist count: one that has never started (a new projection) does
        not hold entries back, so create groups (start their consumers) before trimming
        matters to them."""
        floor: tuple[int, int] | None = None
        groups: Any = await self._client.xinfo_groups(topic)
        for info in groups:
            # Everything up to last-delivered has been read; of that, what is still pending
            # starts at the pending list's oldest id.
            bound = _id(info["last-delivered-id"])
            if int(info["pending"]):
                summary: Any = await self._client.xpending(topic, info["name"])
                if summary["min"] is not None:
                    bound = min(bound, _id(summary["min"]))
            floor = bound if floor is None else min(floor, bound)
        if floor is not None and floor > (0, 0):
            # MINID keeps ids >= floor; "~" only drops whole nodes, so it never drops more.
            await self._trim_to(topic, f"{floor[0]}-{floor[1]}")
        oldest_ms = int((time.time() - self._dead_letter_max_age) * 1000)
        await self._trim_to(_dlq(topic, group), f"{oldest_ms}-0")

    async def _trim_to(self, key: str, minid: str) -> None:
        # An approximate XTRIM removes at most 10,000 entries a call (Redis's default LIMIT,
        # so that one call never blocks the server long): call again while it removes some.
        for _ in range(TRIM_ROUNDS):
            if not await self._client.xtrim(key, minid=minid, approximate=True):
                return

    async def _send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None:
        fields: dict[Any, Any] = {BODY: body, **headers}
        await self._client.xadd(
            _dlq(sub.topic, sub.group), fields, maxlen=self._dead_letter_maxlen, approximate=True
        )

    async def _read_dead_letters(
        self, topic: str, group: str, limit: int
    ) -> list[tuple[bytes, Mapping[str, str]]]:
        entries: Any = await self._client.xrange(_dlq(topic, group), count=limit)
        return [(fields.get(BODY, b""), _headers(fields)) for _, fields in entries]
