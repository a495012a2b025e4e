"""What the bus base and the broker files share: handler types, subscriptions, deliveries."""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Literal, Protocol

from clicktrace.envelope import Envelope
from clicktrace.protocol import DEAD_LETTER_REASON_HEADER, PUBLISHED_AT_HEADER, TRACE_MODE_HEADER

__all__ = [
    "DEAD_LETTER_REASON",
    "PUBLISHED_AT_HEADER",
    "TRACE_MODE_HEADER",
    "Backoff",
    "DeadLetter",
    "DeadLetterHook",
    "Dedupe",
    "Handler",
    "Received",
    "Recovery",
    "Subscription",
    "TraceMode",
    "bind_attempt",
    "check_name",
    "current_attempt",
    "reset_attempt",
]

Handler = Callable[[Envelope], Awaitable[None]]
DeadLetterHook = Callable[[Envelope, str], Awaitable[None]]
TraceMode = Literal["child", "link", "new"]
TRACE_MODES: frozenset[str] = frozenset({"child", "link", "new"})

# Native header a producer may set to choose how the consumer's span relates to it
# (as MassTransit lets a message choose); it overrides the subscription's setting.
# Unix ms when the bus handed the message to the broker: publish→consume is timed from it.
DEAD_LETTER_REASON = DEAD_LETTER_REASON_HEADER
MAX_REASON_LENGTH = 1000

# Topic and group names end up as NATS subjects, AMQP queue names and Redis keys:
# keep them to what all three accept.
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$")


def is_async_callable(value: object) -> bool:
    """``async def`` functions (or partials of them), bound ``async def`` methods, and objects
    whose ``__call__`` is ``async def``."""
    if inspect.iscoroutinefunction(value):
        return True
    call = getattr(value, "__call__", None)  # noqa: B004 - the method itself is what we test
    return call is not None and inspect.iscoroutinefunction(call)


def check_async(kind: str, value: object) -> None:
    """Refuse, at subscribe time, a callable the bus could only await in vain: a plain ``def``
    would fail on every attempt and be dead-lettered ``max_attempts`` times later."""
    if not callable(value):
        raise TypeError(f"{kind} must be an async callable, not {type(value).__name__}")
    if not is_async_callable(value):
        name = getattr(value, "__qualname__", type(value).__name__)
        raise TypeError(f"{kind} {name} must be a coroutine function: define it with 'async def'")


def check_name(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a str, not {type(value).__name__}")
    if not _NAME.match(value) or value.endswith(".") or ".." in value:
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '_', '-', '.'")
    return value


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff between attempts of a failing handler."""

    initial: float = 0.05
    maximum: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.multiplier < 1:
            raise ValueError("Backoff needs 0 <= initial <= maximum and multiplier >= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))


class Dedupe(Protocol):
    """Remembers which messages a consumer has already processed (``MemoryClaims`` and
    ``RedisClaims`` of :mod:`clicktrace.claims` are one)."""

    async def seen(self, consumer: str, message_id: str) -> bool: ...

    async def remember(self, consumer: str, message_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Subscription:
    topic: str
    group: str
    handler: Handler
    max_attempts: int = 5
    on_dead_letter: DeadLetterHook | None = None
    trace_mode: TraceMode = "child"
    backoff: Backoff = field(default_factory=Backoff)
    dedupe: Dedupe | None = None
    honour_deadline: bool = True
    resample: bool = False

    def __post_init__(self) -> None:
        check_async("handler", self.handler)
        if self.on_dead_letter is not None:
            check_async("on_dead_letter", self.on_dead_letter)
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError("max_attempts must be an int >= 1")
        if self.trace_mode not in TRACE_MODES:
            raise ValueError(f"trace_mode must be one of {sorted(TRACE_MODES)}")
        check_name("topic", self.topic)
        check_name("group", self.group)

    @property
    def consumer(self) -> str:
        """The scope the consumer's claims are kept under (``Dedupe``, ``ClaimsConfirmation``)."""
        return f"{self.topic}:{self.group}"


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a bus re-created by itself after the broker forgot it, and when (Unix seconds)."""

    what: str
    at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that was given up on, as read back from the dead-letter destination."""

    body: bytes
    reason: str
    headers: Mapping[str, str]
    envelope: Envelope | None


# The attempt at the message the current task is handling, with its click's correlation id.
_attempt: ContextVar[tuple[str, int] | None] = ContextVar("clicktrace_attempt", default=None)


def bind_attempt(correlation_id: str, attempt: int) -> Token[tuple[str, int] | None]:
    """Set by the bus around each attempt at a message (undone with :func:`reset_attempt`)."""
    return _attempt.set((correlation_id, attempt))


def reset_attempt(token: Token[tuple[str, int] | None]) -> None:
    _attempt.reset(token)


def current_attempt(correlation_id: str) -> int | None:
    """Which attempt at its message the current task's handler is (1 the first time), when
    that message belongs to the click ``correlation_id``; ``None`` outside a handler, or in
    one of another click's."""
    bound = _attempt.get()
    return bound[1] if bound is not None and bound[0] == correlation_id else None


class Received(ABC):
    """One received message, as a broker file hands it to the base."""

    __slots__ = ("body", "delivery_count", "headers")

    def __init__(self, body: bytes, headers: Mapping[str, str], delivery_count: int = 1) -> None:
        self.body = body
        self.headers = headers
        self.delivery_count = delivery_count
        """How many times the broker has delivered it (1 the first time): attempts count on
        from here after a consumer crash."""

    @abstractmethod
    async def ack(self) -> None:
        """Done with it: the broker must not deliver it again to this group."""

    async def touch(self) -> None:
        """Still working on it (between retries): extend the broker's redelivery timer."""
        return None

    async def release(self) -> None:
        """Not handled here (the bus is closing): let the broker deliver it again soon."""
        return None
