"""Faults the demo can be told to have, to show where a click stops (the fault panel).

One small state shared by every process of the demo: a dict in the embedded demo, a Redis
hash in the distributed one (the API node sets it, the relay and the projection worker read
it on each message). ``fail_next`` counts down: the projection fails that many deliveries.
"""

from __future__ import annotations

from typing import Any

import msgspec

from clicktrace.bus import Bus
from clicktrace.envelope import decode, encode

FLAGS = ("slow", "stopped", "drop_context", "no_outbox")
MAX_FAILURES = 20


class InvalidFaults(ValueError):
    pass


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
        if redis_url:
            import redis.asyncio as redis_asyncio

            self._redis = redis_asyncio.Redis.from_url(redis_url)

    async def state(self) -> dict[str, Any]:
        if self._redis is None:
            return shown(self._memory)
        raw = await self._redis.hgetall(self._key)
        return shown({k.decode(): int(v) for k, v in raw.items()})

    async def on(self, flag: str) -> bool:
        if self._redis is None:
            return bool(self._memory.get(flag, 0))
        return bool(int(await self._redis.hget(self._key, flag) or 0))

    async def change(self, changes: dict[str, int]) -> dict[str, Any]:
        if self._redis is None:
            self._memory.update(changes)
        else:
            await self._redis.hset(self._key, mapping=changes)
        return await self.state()

    async def take_failure(self) -> bool:
        """Whether this delivery is one of the next N that must fail (counts it down)."""
        if self._redis is None:
            left = self._memory.get("fail_next", 0)
            if left > 0:
                self._memory["fail_next"] = left - 1
            return left > 0
        left = await self._redis.hincrby(self._key, "fail_next", -1)
        if left < 0:
            await self._redis.hset(self._key, "fail_next", 0)
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
            headers = {k: v for k, v in headers.items() if k not in ("traceparent", "tracestate")}
        await send(topic, body, headers, message_id)

    setattr(bus, "_send", _send)  # noqa: B010
