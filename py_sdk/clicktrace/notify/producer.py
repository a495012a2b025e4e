"""Making a notification: the frame, its PRODUCER span, its ``seq``, then publishing it.

Shared by :class:`~clicktrace.notify.Notifier` (in the socket-serving app) and the write-only
emitters used by worker processes, so every notification is made the same way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode, TracerProvider

from clicktrace.ids import parse_id
from clicktrace.journal import record
from clicktrace.notify.frames import EVENT, Frame, build_frame
from clicktrace.notify.replay import ReplayBuffer
from clicktrace.propagation import METADATA_KEYS, inject
from clicktrace.spans import get_tracer

__all__ = ["Notify", "Producer", "PublishFrame"]

PublishFrame = Callable[[str, Frame], Awaitable[None]]
_encoder = msgspec.json.Encoder()


class Notify(Protocol):
    """What sends an outcome to the tab that caused it: ``Notifier.notify`` in the app,
    ``RedisEmitter.notify`` in a worker process. Type a projection's dependency with it."""

    async def __call__(
        self,
        client_id: str,
        *,
        correlation_id: str,
        status: str,
        type: str | None = None,
        data: Any = None,
        error: dict[str, str] | None = None,
    ) -> int: ...


class Producer:
    def __init__(
        self,
        buffer: ReplayBuffer,
        publish: PublishFrame,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.buffer = buffer
        self._publish = publish
        self._tracer = get_tracer("clicktrace.notify", tracer_provider=tracer_provider)

    async def notify(
        self,
        client_id: str,
        *,
        correlation_id: str,
        status: str,
        type: str | None = None,
        data: Any = None,
        error: dict[str, str] | None = None,
    ) -> int:
        """Send a notification to every socket of ``client_id``; returns its ``seq``.

        Opens a PRODUCER span (child of the current context) whose traceparent travels in the
        frame, so the browser continues the same trace.
        """
        cid = parse_id(client_id) if isinstance(client_id, str) else None
        if cid is None:
            raise ValueError("client_id must be a ULID")
        frame = build_frame(
            correlation_id=correlation_id, status=status, type=type, data=data, error=error
        )
        try:
            _encoder.encode(frame)  # fail here, loudly, rather than on every socket later
        except (TypeError, msgspec.EncodeError) as exc:
            raise TypeError(f"notification data is not JSON-serialisable: {exc}") from None
        attributes = {
            "messaging.system": "clicktrace",
            "messaging.operation.type": "send",
            "messaging.destination.name": EVENT,
            "clicktrace.correlation_id": frame["correlation_id"],
            "clicktrace.client_id": cid,
            "clicktrace.status": status,
        }
        if type is not None:
            attributes["clicktrace.type"] = type
        if status != "progress":
            # The span that sends the outcome is the server span that knows it.
            attributes["clicktrace.outcome"] = status
            if status == "rejected":
                # The code as the frame carries it (required, checked and cut by build_frame).
                attributes["error.type"] = frame["error"]["code"]
        # Not made current: nothing runs inside it but our own calls, and attaching the
        # context costs more than the rest of the span.
        span = self._tracer.start_span(
            f"send {EVENT}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        if status == "rejected":
            span.set_status(StatusCode.ERROR, attributes["error.type"])
        try:
            carrier: dict[str, str] = {}
            inject(carrier, keys=METADATA_KEYS, otel=trace.set_span_in_context(span))
            if "traceparent" in carrier:
                frame["traceparent"] = carrier["traceparent"]
            stamped = await self.buffer.append(cid, frame)
            span.set_attributes(
                {
                    "clicktrace.seq": stamped["seq"],
                    "messaging.message.id": f"{cid}:{stamped['seq']}",
                }
            )
            sent_at = time.time() * 1000.0  # before the publish: a tab may receive it first
            await self._publish(cid, stamped)
            record(
                "notified",
                correlation_id=frame["correlation_id"],
                client_id=cid,
                outcome=status,
                detail=f"seq {stamped['seq']}",
                at=sent_at,
                # The flag the frame carries, whatever span is current where notify() ran.
                sampled=span.get_span_context().trace_flags.sampled,
                code=frame["error"]["code"] if status == "rejected" else None,
            )
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, exc.__class__.__name__)
            raise
        finally:
            span.end()
        seq: int = stamped["seq"]
        return seq
