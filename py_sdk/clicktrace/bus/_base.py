"""The Bus: everything brokers share, so a broker file only moves bytes (``_connect``,
``_send``, ``_listen``, dead-letter send and read).

Lifecycle, subscriptions and checks; the producing half (one envelope sent inside a PRODUCER
span, its context in the broker's native headers and in the envelope, stamped with the time
it left, journaled as ``published``); the consuming half (one delivery handled to the end:
decode, dedupe, restore the message's context, run the handler in a CONSUMER span per
attempt, retry with capped exponential backoff, honour the deadline, dead-letter with the
reason, and ack last). Span and header details: :mod:`clicktrace.bus._tracing`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import ClassVar

import msgspec
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider

from clicktrace import context as click_context
from clicktrace._version import __version__
from clicktrace.bus import _tracing as tracing
from clicktrace.bus._types import (
    DEAD_LETTER_REASON,
    MAX_REASON_LENGTH,
    PUBLISHED_AT_HEADER,
    TRACE_MODE_HEADER,
    TRACE_MODES,
    Backoff,
    DeadLetter,
    DeadLetterHook,
    Dedupe,
    Handler,
    Received,
    Recovery,
    Subscription,
    TraceMode,
    bind_attempt,
    check_async,
    check_name,
    reset_attempt,
)
from clicktrace.envelope import Envelope, decode, encode
from clicktrace.journal._record import enabled, record
from clicktrace.protocol import GROUP_HEADER
from clicktrace.spans import get_tracer

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "Bus",
    "BusNotRunning",
    "BusUnavailable",
    "Send",
    "SendDeadLetter",
    "deliver",
    "send",
]

log = logging.getLogger("clicktrace.bus")
RESTART_BACKOFF = Backoff(initial=0.1, maximum=5.0)
START_BACKOFF = Backoff(initial=0.2, maximum=5.0)
DEFAULT_START_TIMEOUT = 30.0
MAX_CHECKED_TOPICS = 1024  # topic names publish() remembers as valid, so as not to check again
"""Seconds ``start()`` keeps trying to reach a broker that is down before it gives up."""


class BusNotRunning(RuntimeError):
    """Publishing before ``start()`` or after ``close()``."""


class BusUnavailable(ConnectionError):
    """``start()`` could not reach the broker within ``start_timeout`` seconds."""


def describe(exc: BaseException) -> str:
    """One short line for a log: the type and the first 200 characters of the message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


class Bus(ABC):
    """Publish envelopes to topics; subscribe handlers with a consumer group.

    At least once: a message is acked only after its handler returns (or after it has been
    dead-lettered); a failing handler is retried ``max_attempts`` times in all, then the
    message goes to the topic's dead-letter destination with the reason, and the
    subscription's ``on_dead_letter`` hook runs (the notifier sends ``rejected`` from it).
    """

    system: ClassVar[str]
    _close_grace: float = 0.0
    """Seconds ``close()`` lets listeners stop by themselves before cancelling them."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        if isinstance(start_timeout, bool) or not start_timeout > 0:
            raise ValueError("start_timeout must be a positive number of seconds")
        self._start_timeout = float(start_timeout)
        self.recoveries = 0
        """How many times this bus re-created a stream, group, consumer or queue the broker
        had lost (a restart without persistence, a wiped store, a deleted queue)."""
        self.last_recovery: Recovery | None = None
        self._tracer = get_tracer("clicktrace.bus", __version__, tracer_provider=tracer_provider)
        self._subscriptions: list[Subscription] = []
        self._dead_letter_default: DeadLetterHook | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False  # publishing allowed
        self._consuming = False  # listeners keep receiving
        self._accepting = False  # deliveries are handled (else released to the broker)
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._topics: set[str] = set()  # names publish() has checked (up to a bound)

    def subscribe(
        self,
        topic: str,
        handler: Handler,
        *,
        group: str,
        max_attempts: int = 5,
        on_dead_letter: DeadLetterHook | None = None,
        trace_mode: TraceMode = "child",
        backoff: Backoff | None = None,
        dedupe: Dedupe | None = None,
        honour_deadline: bool = True,
        resample: bool = False,
    ) -> Subscription:
        """Register ``handler`` for ``topic`` in consumer ``group`` (before ``start()``).

        Each group gets every message once; subscriptions sharing a group compete.
        ``honour_deadline``: a message whose deadline has passed is dead-lettered with
        reason ``deadline_exceeded`` instead of being handled. ``resample``: in ``link`` /
        ``new`` trace mode, let the sampler decide the new trace afresh instead of following
        the click's decision (see :mod:`clicktrace.sampling`).
        """
        if self._running:
            raise RuntimeError("subscribe before start()")
        sub = Subscription(  # which checks its arguments
            topic=topic,
            group=group,
            handler=handler,
            max_attempts=max_attempts,
            on_dead_letter=on_dead_letter or self._dead_letter_default,
            trace_mode=trace_mode,
            backoff=backoff or Backoff(),
            dedupe=dedupe,
            honour_deadline=honour_deadline,
            resample=resample,
        )
        self._subscriptions.append(sub)
        return sub

    def default_dead_letter(self, hook: DeadLetterHook | None) -> None:
        """The ``on_dead_letter`` hook of every subscription that names none, made before or
        after this call (``clicktrace.install`` sets its notifier's ``reject_on_dead_letter``
        here). Before ``start()``; ``None`` stops giving it to later subscriptions."""
        if self._running:
            raise RuntimeError("set the default dead-letter hook before start()")
        if hook is not None:
            check_async("on_dead_letter", hook)
            self._subscriptions = [
                sub if sub.on_dead_letter is not None else replace(sub, on_dead_letter=hook)
                for sub in self._subscriptions
            ]
        self._dead_letter_default = hook

    async def start(self) -> None:
        """Connect and declare every subscription; on return, publishes reach them.

        A broker that is down is retried with capped backoff, one log line per attempt, for
        up to ``start_timeout`` seconds; then :class:`BusUnavailable` is raised."""
        if self._running:
            return
        try:
            await self._connect_within(self._start_timeout)
            self._running = self._consuming = self._accepting = True
            for sub in self._subscriptions:
                await self._prepare(sub)
        except BaseException:
            await self.close()  # do not leave a half-started bus connected
            raise
        for sub in self._subscriptions:
            name = f"clicktrace {sub.consumer}"
            self._tasks.append(asyncio.create_task(self._run(sub), name=name))

    async def _connect_within(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                await asyncio.wait_for(self._connect(), max(0.05, deadline - loop.time()))
                return
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await self._disconnect()  # drop what the failed attempt opened
                left = deadline - loop.time()
                if left <= 0:
                    message = (
                        f"the {self.system} broker did not answer within {timeout:g} s "
                        f"({attempt} attempts; last: {describe(exc)})"
                    )
                    raise BusUnavailable(message) from exc
                delay = min(START_BACKOFF.delay(attempt), left)
                log.warning(
                    "clicktrace bus: %s broker unreachable (%s); attempt %d, next in %.1f s",
                    self.system,
                    describe(exc),
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)

    def _recovered(self, what: str) -> None:
        """Say, once, that the bus re-created ``what`` after the broker lost it."""
        self.recoveries += 1
        self.last_recovery = Recovery(what, time.time())
        log.warning("clicktrace bus: %s had lost %s; re-created it", self.system, what)

    async def close(self, drain_timeout: float = 10.0) -> None:
        """Stop consuming and disconnect. A message being handled is finished and acked
        (up to ``drain_timeout`` seconds); any other unacked one goes back to the broker."""
        self._consuming = False
        tasks, self._tasks = self._tasks, []
        if tasks and self._close_grace > 0:
            # Listeners check ``_consuming`` between receives: let them finish the batch in
            # hand rather than cancel a client in the middle of a blocking read (redis-py
            # sometimes loses the cancellation there and hangs).
            await asyncio.wait(tasks, timeout=self._close_grace)
        self._accepting = False  # from here on, deliveries are released, not handled
        if self._in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self._close_grace + 1)
        self._running = False
        await self._disconnect()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Bus:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def publish(
        self,
        topic: str,
        envelope: Envelope,
        *,
        trace_mode: TraceMode | None = None,
        group: str | None = None,
    ) -> None:
        """Send ``envelope`` to ``topic`` inside a PRODUCER span.

        ``trace_mode`` asks consumers to start their span as ``link`` or ``new`` (or
        ``child``) whatever their subscription says. ``group`` sends it to that consumer
        group only: the others ack it unhandled (a dead letter sent again goes to the group
        that gave up on it, not to those that applied it).
        """
        if group is not None:
            check_name("group", group)
        if type(topic) is not str or topic not in self._topics:
            check_name("topic", topic)
            if len(self._topics) < MAX_CHECKED_TOPICS:
                self._topics.add(topic)
        if not isinstance(envelope, Envelope):
            raise TypeError(f"publish needs an Envelope, not {type(envelope).__name__}")
        if trace_mode is not None and trace_mode not in TRACE_MODES:
            raise ValueError(f"trace_mode must be one of {sorted(TRACE_MODES)}")
        if not self._running:
            raise BusNotRunning("publish on a bus that is not started")
        await send(self._tracer, self.system, topic, envelope, trace_mode, self._send, group)

    async def ping(self) -> None:
        """One real round trip to the broker (for ``/clicktrace/health``); raises
        :class:`BusNotRunning` before ``start()``, the client's error when it is unreachable."""
        if not self._running:
            raise BusNotRunning("the bus is not started")
        await self._ping()

    async def publish_durable(self, topic: str, envelope: Envelope) -> None:
        """Publish, returning only once the message no longer depends on this process: a
        broker has confirmed it (what :meth:`publish` already waits for), the memory bus has
        had it handled by every group. What an outbox relay calls before marking a row sent.
        """
        await self.publish(topic, envelope)

    async def dead_letters(self, topic: str, group: str, limit: int = 100) -> list[DeadLetter]:
        """What ``group`` gave up on in ``topic``, oldest first (read, not removed)."""
        out = []
        for body, headers in await self._read_dead_letters(
            check_name("topic", topic), check_name("group", group), limit
        ):
            try:
                envelope: Envelope | None = decode(body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                envelope = None
            out.append(DeadLetter(body, headers.get(DEAD_LETTER_REASON, ""), headers, envelope))
        return out

    # -- consuming -------------------------------------------------------------------------

    async def _run(self, sub: Subscription) -> None:
        failures = 0
        while self._consuming:
            try:
                await self._listen(sub)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = RESTART_BACKOFF.delay(failures)
                if failures == 1 and not self._is_outage(exc):
                    # Not the broker being away: a fault worth its traceback, once.
                    log.exception("clicktrace bus: consumer %s failed; restarting", sub.consumer)
                else:
                    log.warning(
                        "clicktrace bus: consumer %s failed (%s); restarting in %.1f s",
                        sub.consumer,
                        describe(exc),
                        delay,
                    )
            await asyncio.sleep(RESTART_BACKOFF.delay(failures))

    async def _deliver(self, sub: Subscription, delivery: Received) -> None:
        """Handle one delivery to the end (see :func:`deliver`)."""
        if not self._accepting:
            await delivery.release()  # closing: another consumer will have it
            return
        self._in_flight += 1
        self._idle.clear()
        try:
            await deliver(self._tracer, self.system, sub, delivery, self._send_dead_letter)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    # -- what a broker file implements ---------------------------------------------------

    def _is_outage(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the broker is away (logged in one line, no traceback)."""
        return isinstance(exc, OSError | TimeoutError)

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _ping(self) -> None:
        """A round trip to the broker."""

    async def _prepare(self, sub: Subscription) -> None:
        """Declare the group's queue/consumer so messages published from now on reach it."""
        return None

    @abstractmethod
    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None: ...

    @abstractmethod
    async def _listen(self, sub: Subscription) -> None:
        """Receive forever, awaiting ``self._deliver(sub, delivery)`` for each message."""

    @abstractmethod
    async def _send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None: ...

    @abstractmethod
    async def _read_dead_letters(
        self, topic: str, group: str, limit: int
    ) -> list[tuple[bytes, Mapping[str, str]]]: ...


# -- one publish ---------------------------------------------------------------------------

Send = Callable[[str, bytes, dict[str, str], str], Awaitable[None]]
"""A broker's ``_send(topic, body, headers, message_id)``."""


async def send(
    tracer: Tracer,
    system: str,
    topic: str,
    envelope: Envelope,
    trace_mode: TraceMode | None,
    broker_send: Send,
    group: str | None = None,
) -> None:
    """Send ``envelope`` inside a PRODUCER span: its context in the broker's native headers
    and in the envelope, stamped with the time it left, journaled as ``published``; for
    ``group`` only when one is named."""
    parent = tracing.producer_parent(envelope)
    span = tracing.start_producer_span(tracer, system, topic, envelope, parent)
    # What trace.use_span(span, end_on_exit=True) does, inline: this runs once per message.
    current = tracing.in_span(span)
    token = otel_context.attach(current)
    try:
        sent = current if parent is None else tracing.in_span(span, parent)
        headers = tracing.native_headers(envelope, sent)
        stamped = tracing.stamp(envelope, headers)
        if trace_mode is not None:
            headers[TRACE_MODE_HEADER] = trace_mode
        if group is not None:
            headers[GROUP_HEADER] = group
        now_ms = time.time() * 1000.0  # before the send: a consumer may journal first
        headers[PUBLISHED_AT_HEADER] = str(int(now_ms))
        meta = stamped.metadata
        await broker_send(topic, encode(stamped), headers, meta.message_id)
        if enabled():
            trace_id, span_id, sampled = tracing.span_ids(span)
            # accept→publish: from the envelope's creation (the command's request, or the
            # outbox row a relay publishes later).
            record(
                "published",
                correlation_id=meta.correlation_id,
                client_id=meta.client_id,
                at=now_ms,
                detail=f"{topic} {meta.message_id}",
                duration_ms=max(0.0, now_ms - meta.occurred_at.timestamp() * 1000.0),
                trace_id=trace_id,
                span_id=span_id,
                sampled=sampled,
            )
    except Exception as exc:
        tracing.failed(span, exc)
        raise
    finally:
        otel_context.detach(token)
        span.end()


# -- one delivery, handled to the end ------------------------------------------------------

SendDeadLetter = Callable[[Subscription, bytes, dict[str, str]], Awaitable[None]]


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_REASON_LENGTH]


async def deliver(
    tracer: Tracer,
    system: str,
    sub: Subscription,
    delivery: Received,
    send_dead_letter: SendDeadLetter,
) -> None:
    """Handle one delivery to the end: acked, or dead-lettered and acked."""
    target = delivery.headers.get(GROUP_HEADER)
    if target is not None and target != sub.group:
        await delivery.ack()  # for another group only (a dead letter sent again to it)
        return
    try:
        envelope = decode(delivery.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        reason = f"undecodable: {exc}"[:MAX_REASON_LENGTH]
        await _give_up(sub, delivery, None, reason, send_dead_letter)
        return
    meta = envelope.metadata
    if sub.dedupe is not None and await sub.dedupe.seen(sub.consumer, meta.message_id):
        await delivery.ack()
        return
    carried = meta.extract()
    parent, links = tracing.consumer_context(
        carried, delivery.headers, sub.trace_mode, sub.resample, meta
    )
    click = tracing.click_of(envelope, carried)
    attempt = max(1, delivery.delivery_count)
    while True:
        span = tracing.start_consumer_span(
            tracer, system, sub, envelope, parent=parent, links=links, attempt=attempt
        )
        # Inline rather than clicktrace.context.bound(): this runs once per message.
        click_token = click_context.bind(click)
        otel_token = otel_context.attach(tracing.in_span(span, parent))
        attempt_token = bind_attempt(click.correlation_id, attempt)
        # A journal or a MeterProvider: else nothing is built for them.
        ids = tracing.span_ids(span) if enabled() else None
        if ids is not None:
            record(
                "delivered",
                attempt=attempt,
                detail=f"{sub.topic} group {sub.group}",
                duration_ms=tracing.since_published(delivery.headers) if attempt == 1 else None,
                trace_id=ids[0],
                span_id=ids[1],
                sampled=ids[2],
            )
        try:
            retry = await _attempt(sub, delivery, envelope, span, attempt, send_dead_letter, ids)
        finally:
            reset_attempt(attempt_token)
            otel_context.detach(otel_token)
            click_context.reset(click_token)
            span.end()
        if not retry:
            return
        await asyncio.sleep(sub.backoff.delay(attempt))
        await delivery.touch()
        attempt += 1


async def _attempt(
    sub: Subscription,
    delivery: Received,
    envelope: Envelope,
    span: Span,
    attempt: int,
    send_dead_letter: SendDeadLetter,
    ids: tracing.SpanIds | None,
) -> bool:
    """One try inside the consumer span; True when it should be retried. ``ids``: the
    span's, to journal (and time) its outcome; ``None``: nothing is recorded."""
    recording = ids is not None
    deadline = envelope.metadata.deadline
    took: float | None = None
    if attempt > sub.max_attempts:
        # Delivered again and again without an outcome: the consumer keeps dying on it.
        reason = f"delivered {attempt} times without completing"
        code = "delivery_limit"
    elif sub.honour_deadline and deadline is not None and time.time() * 1000 > deadline:
        reason = code = "deadline_exceeded"
    else:
        started = time.perf_counter() if recording else 0.0
        try:
            await sub.handler(envelope)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            took = (time.perf_counter() - started) * 1000.0 if recording else None
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, _reason(exc)))
            if attempt < sub.max_attempts:
                if recording:
                    _record(ids, "retried", attempt, _reason(exc), took)
                return True
            reason, code = _reason(exc), type(exc).__qualname__
        else:
            if recording:
                took = (time.perf_counter() - started) * 1000.0
            if sub.dedupe is not None:
                await sub.dedupe.remember(sub.consumer, envelope.metadata.message_id)
            await delivery.ack()
            if recording:
                _record(ids, "acked", attempt, f"group {sub.group}", took)
            return False
    # This span decided the click's outcome: it says so, with a short code as error.type.
    span.set_status(Status(StatusCode.ERROR, reason))
    span.set_attributes(
        {
            "messaging.clicktrace.dead_letter_reason": reason,
            "clicktrace.outcome": "dead_lettered",
            "error.type": code,
        }
    )
    if recording:
        outcome = "deadline_exceeded" if reason == "deadline_exceeded" else "failed"
        _record(ids, "dead_lettered", attempt, reason, took, outcome)
    await _give_up(sub, delivery, envelope, reason, send_dead_letter)
    return False


def _record(
    ids: tracing.SpanIds | None,
    stage: str,
    attempt: int,
    detail: str,
    took: float | None,
    outcome: str | None = None,
) -> None:
    if ids is not None:
        trace_id, span_id, sampled = ids
        record(
            stage,
            attempt=attempt,
            outcome=outcome,
            detail=detail,
            duration_ms=took,
            trace_id=trace_id,
            span_id=span_id,
            sampled=sampled,
        )


async def _give_up(
    sub: Subscription,
    delivery: Received,
    envelope: Envelope | None,
    reason: str,
    send_dead_letter: SendDeadLetter,
) -> None:
    headers = dict(delivery.headers)
    headers[DEAD_LETTER_REASON] = reason
    await send_dead_letter(sub, delivery.body, headers)
    log.warning("clicktrace bus: %s dead-lettered a message: %s", sub.consumer, reason)
    if envelope is not None and sub.on_dead_letter is not None:
        try:
            await sub.on_dead_letter(envelope, reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The message is safe in the dead-letter destination; a failing hook must not
            # make it loop.
            log.exception("clicktrace bus: on_dead_letter hook of %s failed", sub.consumer)
    await delivery.ack()
