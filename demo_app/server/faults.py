"""Faults the demo can be told to have, to show where a click stops (the fault panel).

One small state shared by every process of the demo: a dict in the embedded demo, a Redis
hash in the distributed one (the API node sets it, the relay and the projection worker read
it on each message). ``fail_next`` counts down: the projection fails that many deliveries.

The flags are read on every command and every delivery, so a Redis that is down must not
fail them: while it is down the readers see "no fault" (one warning when it goes, one line
when it is back). Only the panel itself, which cannot show or change a state it cannot
reach, answers 503 (:class:`FaultsUnavailable`).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from clicktrace.bus import Bus
from clicktrace.envelope import decode, encode
from clicktrace.protocol import TRACEPARENT_HEADER, TRACESTATE_HEADER

FLAGS = ("slow", "stopped", "drop_context", "no_outbox")
MAX_FAILURES = 20
# A Redis that does not answer within this is down, as far as a flag read is concerned.
REDIS_TIMEOUT_SECONDS = 2.0
log = logging.getLogger("demo.faults")


class InvalidFaults(ValueError):
    pass


class FaultsUnavailable(Exception):
    """The fault state's Redis is down: the panel cannot show or change it."""


def parse(body: Any) -> dict[str, int]:
    """The changes a panel request asks for; raises InvalidFaults on anything else."""
    if not isinstance(body, dict) or not body:
        raise InvalidFaults("send a JSON object of faults to change")
    changes = {}
    for key, value in body.items():
        if key == "fail_next" and type(value) is int and 0 <= value <= MAX_FAILURES:
            changes[key] = value
        elif key in FLAGS and isinstance(value, bool):
            changes[key] = int(value)
        else:
            raise InvalidFaults(f"unknown fault or bad value: {str(key)[:40]!r}")
    return changes


def shown(state: dict[str, int]) -> dict[str, Any]:
    return {
        "fail_next": state.get("fail_next", 0),
        **{flag: bool(state.get(flag, 0)) for flag in FLAGS},
    }


class Faults:
    """The state, in memory or in Redis (``redis_url``, key ``key``)."""

    def __init__(self, redis_url: str | None = None, key: str = "clicktrace-demo:faults"):
        self._key = key
        self._memory: dict[str, int] = {}
        self._redis: Any = None
        self._down = False
        self._errors: tuple[type[BaseException], ...] = ()
        if redis_url:
            import redis.asyncio as redis_asyncio
            from redis.exceptions import RedisError

            self._redis = redis_asyncio.Redis.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._errors = (RedisError, OSError, TimeoutError)

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "fault state unreachable (%s): no faults until it is back", type(exc).__name__
            )

    def _is_up(self) -> None:
        if self._down:
            self._down = False
            log.info("fault state reachable again")

    async def state(self) -> dict[str, Any]:
        """What the panel shows; :class:`FaultsUnavailable` while Redis is down."""
        if self._redis is None:
            return shown(self._memory)
        try:
            raw = await self._redis.hgetall(self._key)
        except self._errors as exc:
            self._went_down(exc)
            raise FaultsUnavailable from None
        self._is_up()
        return shown({k.decode(): int(v) for k, v in raw.items()})

    async def on(self, flag: str) -> bool:
        """Whether ``flag`` is on; ``False`` while the state is unreachable (no fault)."""
        if self._redis is None:
            return bool(self._memory.get(flag, 0))
        try:
            value = await self._redis.hget(self._key, flag)
        except self._errors as exc:
            self._went_down(exc)
            return False
        self._is_up()
        return bool(int(value or 0))

    async def change(self, changes: dict[str, int]) -> dict[str, Any]:
        """Apply ``changes``; :class:`FaultsUnavailable` while Redis is down."""
        if self._redis is None:
            self._memory.update(changes)
            return shown(self._memory)
        try:
            await self._redis.hset(self._key, mapping=changes)
        except self._errors as exc:
            self._went_down(exc)
            raise FaultsUnavailable from None
        return await self.state()

    async def take_failure(self) -> bool:
        """Whether this delivery is one of the next N that must fail (counts it down);
        ``False`` while the state is unreachable."""
        if self._redis is None:
            left = self._memory.get("fail_next", 0)
            if left > 0:
                self._memory["fail_next"] = left - 1
            return left > 0
        try:
            left = await self._redis.hincrby(self._key, "fail_next", -1)
            if left < 0:
                await self._redis.hset(self._key, "fail_next", 0)
        except self._errors as exc:
            self._went_down(exc)
            return False
        self._is_up()
        return bool(left >= 0)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def drop_context_when_asked(bus: Bus, faults: Faults) -> None:
    """While ``drop_context`` is on, ``bus`` loses the trace context on the way, as a broken
    adapter would: the consumer starts a trace of its own (the correlation id still travels).
    Fault injection, so it wraps the instance's byte-moving method rather than the SDK."""
    send = bus._send

    async def _send(topic: str, body: bytes, headers: dict[str, str], message_id: str) -> None:
        if await faults.on("drop_context"):
            envelope = decode(body)
            meta = msgspec.structs.replace(envelope.metadata, traceparent=None, tracestate=None)
            body = encode(msgspec.structs.replace(envelope, metadata=meta))
            headers = {
                k: v for k, v in headers.items() if k not in (TRACEPARENT_HEADER, TRACESTATE_HEADER)
            }
        await send(topic, body, headers, message_id)

    setattr(bus, "_send", _send)  # noqa: B010
