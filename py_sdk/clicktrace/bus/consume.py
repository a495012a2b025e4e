"""The consuming half of the base: one delivery handled to the end. Decode, dedupe, restore
the message's context, run the handler in a CONSUMER span per attempt, retry with backoff,
honour the deadline, dead-letter with the reason, and ack last."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from clicktrace import context as click_context
from clicktrace.bus import tracing
from clicktrace.bus.types import DEAD_LETTER_REASON, MAX_REASON_LENGTH, Received, Subscription
from clicktrace.envelope import Envelope, decode
from clicktrace.journal import record

__all__ = ["SendDeadLetter", "deliver"]

log = logging.getLogger("clicktrace.bus")
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
    try:
        envelope = decode(delivery.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        reason = f"undecodable: {exc}"[:MAX_REASON_LENGTH]
        await _give_up(sub, delivery, None, reason, send_dead_letter)
        return
    if sub.dedupe is not None and await sub.dedupe.seen(sub.consumer, envelope.metadata.message_id):
        await delivery.ack()
        return
    carried = envelope.metadata.extract()
    parent, links = tracing.consumer_context(
        carried, delivery.headers, sub.trace_mode, sub.resample
    )
    click = tracing.click_of(envelope, carried)
    attempt = max(1, delivery.delivery_count)
    while True:
        span = tracing.start_consumer_span(
            tracer, system, sub, envelope, parent=parent, links=links, attempt=attempt
        )
        # Inline rather than clicktrace.context.bound(): this runs once per message.
        click_token = click_context.bind(click)
        otel_token = otel_context.attach(trace.set_span_in_context(span, parent))
        record(
            "delivered",
            attempt=attempt,
            detail=f"{sub.topic} group {sub.group}",
            duration_ms=tracing.since_published(delivery.headers) if attempt == 1 else None,
        )
        try:
            retry = await _attempt(sub, delivery, envelope, span, attempt, send_dead_letter)
        finally:
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
) -> bool:
    """One try inside the consumer span; True when it should be retried."""
    deadline = envelope.metadata.deadline
    took: float | None = None
    if attempt > sub.max_attempts:
        # Delivered again and again without an outcome: the consumer keeps dying on it.
        reason = f"delivered {attempt} times without completing"
        code = "delivery_limit"
    elif sub.honour_deadline and deadline is not None and time.time() * 1000 > deadline:
        reason = code = "deadline_exceeded"
    else:
        started = time.perf_counter()
        try:
            await sub.handler(envelope)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            took = (time.perf_counter() - started) * 1000.0
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, _reason(exc)))
            if attempt < sub.max_attempts:
                record("retried", attempt=attempt, detail=_reason(exc), duration_ms=took)
                return True
            reason, code = _reason(exc), type(exc).__qualname__
        else:
            took = (time.perf_counter() - started) * 1000.0
            if sub.dedupe is not None:
                await sub.dedupe.remember(sub.consumer, envelope.metadata.message_id)
            await delivery.ack()
            record("acked", attempt=attempt, detail=f"group {sub.group}", duration_ms=took)
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
    record(
        "dead_lettered",
        attempt=attempt,
        outcome="deadline_exceeded" if reason == "deadline_exceeded" else "failed",
        detail=reason,
        duration_ms=took,
    )
    await _give_up(sub, delivery, envelope, reason, send_dead_letter)
    return False


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
