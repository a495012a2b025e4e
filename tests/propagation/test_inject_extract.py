"""extract/inject across carriers, and the OpenTelemetry context they map to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from clicktrace.context import ClickContext, bound
from clicktrace.envelope import Metadata
from clicktrace.propagation import ATTRIBUTE_GETTER, HEADER_KEYS, METADATA_KEYS, extract, inject
from clicktrace.propagation._carriers import ASGI_GETTER, ASGI_SETTER
from clicktrace.propagation._inject_extract import (
    LazyTraceState,
    extract_trace,
    parse_deadline,
    trace_state,
)

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
TP = f"00-{TRACE:032x}-{SPAN:016x}-03"
CORR = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
CAUSE = "01JD8X3Q7E8W5V4T2N9R6M0K1B"
CLIENT = "01JD8X3Q7E8W5V4T2N9R6M0K1C"


def test_extract_headers() -> None:
    headers = [
        (b"traceparent", TP.encode()),
        (b"tracestate", b"a=1"),
        (b"tracestate", b"b@c=2"),
        (b"baggage", b"user=alice"),
        (b"x-correlation-id", CORR.lower().encode()),
        (b"x-causation-id", CAUSE.encode()),
        (b"x-clicktrace-deadline", b"1764000000000"),
    ]
    got = extract(headers, ASGI_GETTER, HEADER_KEYS)
    assert got.traceparent is not None and got.traceparent.trace_id == TRACE
    assert got.tracestate == "a=1,b@c=2"
    assert got.baggage == {"user": "alice"}
    assert (got.correlation_id, got.causation_id, got.deadline_ms) == (CORR, CAUSE, 1764000000000)
    assert got.client_id is None and got.raw_correlation_id is None


def test_extract_trace_reads_only_the_w3c_fields() -> None:
    carrier = {"traceparent": TP, "tracestate": "a=1", "baggage": "user=alice"}
    carrier |= {"x-correlation-id": CORR, "x-clicktrace-deadline": "1764000000000"}
    got = extract_trace(carrier, keys=HEADER_KEYS)
    full = extract(carrier, keys=HEADER_KEYS)
    assert (got.traceparent, got.tracestate, got.baggage) == (
        full.traceparent,
        full.tracestate,
        full.baggage,
    )
    assert full.correlation_id == CORR and full.deadline_ms == 1764000000000
    assert got.correlation_id is None and got.deadline_ms is None
    assert extract_trace({"traceparent": "nope", "tracestate": "a=1"}).tracestate is None


def test_two_traceparents_start_a_new_trace_and_drop_tracestate() -> None:
    tp = TP.encode()
    headers = [(b"traceparent", tp), (b"traceparent", tp), (b"tracestate", b"a=1")]
    got = extract(headers, ASGI_GETTER, HEADER_KEYS)
    assert got.traceparent is None and got.tracestate is None
    assert got.otel_context() is None


def test_invalid_correlation_id_is_kept_raw_for_logging_only() -> None:
    got = extract({"correlation_id": "nope"})
    assert got.correlation_id is None and got.raw_correlation_id == "nope"
    assert got.click_context(fallback_correlation_id=CORR).correlation_id == CORR


def test_deadline() -> None:
    assert parse_deadline("1764000000000") == 1764000000000
    for bad in ("", "-1", "1e9", "١٢", "9" * 16, None, 5):
        assert parse_deadline(bad) is None  # type: ignore[arg-type]


def test_otel_context_carries_parent_tracestate_and_baggage() -> None:
    headers = {"traceparent": TP, "tracestate": "a=1,a=2,z@v=3", "baggage": "k=v"}
    ctx = extract(headers, keys=HEADER_KEYS).otel_context()
    span_context = trace.get_current_span(ctx).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (TRACE, SPAN)
    assert span_context.is_remote and span_context.trace_flags.random_trace_id
    assert dict(span_context.trace_state.items()) == {"a": "1", "z@v": "3"}
    assert otel_baggage.get_baggage("k", ctx) == "v"


def test_baggage_without_traceparent_still_arrives() -> None:
    ctx = extract({"baggage": "k=v"}, keys=HEADER_KEYS).otel_context()
    assert otel_baggage.get_baggage("k", ctx) == "v"
    assert not trace.get_current_span(ctx).get_span_context().is_valid


def test_trace_state_helper() -> None:
    state = trace_state("a=1,b=2")
    assert state.to_header() == "a=1,b=2"
    assert state.add("c", "3").to_header() == "c=3,a=1,b=2"
    assert len(trace_state("Bad=1")) == 0 and len(trace_state(None)) == 0


def test_round_trip_through_every_carrier_keeps_trace_and_ids() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    parent = extract({"traceparent": TP, "tracestate": "a=1"}, keys=HEADER_KEYS).otel_context()
    click = ClickContext(CORR, CAUSE, CLIENT, 1764000000000)
    with tracer.start_as_current_span("work", context=parent) as span, bound(click):
        ctx = otel_baggage.set_baggage("user", "alice wonder")
        headers: list[tuple[bytes, bytes]] = []
        inject(headers, ASGI_SETTER, HEADER_KEYS, otel=ctx)
        metadata: dict[str, Any] = {}
        inject(metadata, otel=ctx)
        span_id = span.get_span_context().span_id
    # The bus envelope's frozen Metadata, read in place by its attributes.
    fields = {**metadata, "deadline": int(metadata["deadline"])}  # a number in JSON
    envelope = Metadata(message_id=CAUSE, type="T", occurred_at=datetime.now(UTC), **fields)
    for got in (
        extract(headers, ASGI_GETTER, HEADER_KEYS),
        extract(metadata, keys=METADATA_KEYS),
        extract(envelope, ATTRIBUTE_GETTER, METADATA_KEYS),
    ):
        assert got.traceparent is not None
        assert (got.traceparent.trace_id, got.traceparent.span_id) == (TRACE, span_id)
        assert got.traceparent.random_trace_id  # kept on the child span (Level 2)
        assert got.tracestate == "a=1"
        assert got.baggage == {"user": "alice wonder"}
        assert (got.correlation_id, got.causation_id, got.deadline_ms) == (
            CORR,
            CAUSE,
            1764000000000,
        )
    assert extract(metadata, keys=METADATA_KEYS).client_id == CLIENT
    assert extract(headers, ASGI_GETTER, HEADER_KEYS).client_id is None  # headers carry none


def test_lazy_trace_state_parses_on_first_read_only() -> None:
    lazy = LazyTraceState(["a=1, b=2", "a=3"])
    assert "_dict" not in vars(lazy)  # nothing parsed yet
    assert lazy.to_header() == "a=1,b=2"
    assert "_dict" in vars(lazy)
    assert lazy.add("c", "3").to_header() == "c=3,a=1,b=2"
    assert lazy == trace_state("a=1,b=2")
    assert len(LazyTraceState(["Bad=1"])) == 0
    assert not LazyTraceState(["Bad=1"])
    with pytest.raises(AttributeError):
        lazy.missing  # noqa: B018 - other attributes still raise
