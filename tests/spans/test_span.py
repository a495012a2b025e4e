"""Lean spans against the SDK's: the same operations through both tracers export the same
spans (names, kinds, ids, parents, attributes and drop counts, events, links, status,
resource, scope, times), so any exporter sees no difference."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags

from clicktrace.spans import get_tracer
from clicktrace.spans._span import LeanSpan

from .both_paths import T0, SeededIds, both, request_like


def test_a_request_exports_the_same_spans_through_both_paths() -> None:
    sdk, lean, spans = both(request_like)
    assert len(sdk) == 2
    assert lean == sdk
    server = next(s for s in spans if s.name == "GET /p/{id}")
    assert isinstance(server, LeanSpan)
    assert isinstance(server, trace.Span)
    # The app's child span is the SDK's own, parented under the lean span.
    child = next(s for s in spans if s.name == "load")
    assert child.parent == server.context


def test_links_events_and_status_rules_match() -> None:
    def scenario(tracer: trace.Tracer, provider: TracerProvider) -> None:
        other = SpanContext(5, 6, True, TraceFlags(1))
        span = tracer.start_span(
            "consume",
            kind=SpanKind.CONSUMER,
            start_time=T0,
            links=[Link(other, {"messaging.message.id": "m"}), Link(trace.INVALID_SPAN_CONTEXT)],
        )
        span.add_link(SpanContext(7, 8, True, TraceFlags(1)), {"n": 1})
        span.add_link(trace.INVALID_SPAN_CONTEXT)
        span.set_status(StatusCode.OK)
        span.set_status(StatusCode.ERROR, "ignored after OK")
        span.end(T0 + 3)
        span.set_attribute("late", True)
        span.add_event("late")
        span.end(T0 + 4)

    sdk, lean, _ = both(scenario)
    assert lean == sdk


def test_the_console_exporter_writes_a_lean_span_as_the_sdk_span() -> None:
    # ReadableSpan.to_json reads the span's private fields, which a lean span computes.
    written = []
    for lean in (False, True):
        out = io.StringIO()
        provider = TracerProvider(id_generator=SeededIds(5), shutdown_on_exit=False)
        exporter = ConsoleSpanExporter(out=out)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = get_tracer("clicktrace.test", tracer_provider=provider, lean=lean)
        span = tracer.start_span("GET", kind=SpanKind.SERVER, attributes={"a": 1}, start_time=T0)
        span.add_event("e", {"k": "v"}, timestamp=T0 + 1)
        span.add_link(SpanContext(3, 4, True, TraceFlags(1)), {"n": 1})
        span.end(T0 + 2)
        assert isinstance(span, LeanSpan) is lean
        written.append(out.getvalue())
    sdk, lean_json = written
    assert '"a": 1' in sdk and lean_json == sdk


values = st.one_of(
    st.text(max_size=12),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.none(),
    st.binary(max_size=4),
    st.lists(st.one_of(st.integers(0, 9), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
keys = st.one_of(st.sampled_from(["a", "b", "c", "d", "e"]), st.just(""), st.text(max_size=3))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, values),
        st.tuples(st.just("many"), st.dictionaries(keys, values, max_size=3)),
        st.tuples(st.just("event"), st.dictionaries(keys, values, max_size=3)),
    ),
    max_size=12,
)
limits = st.builds(
    SpanLimits,
    max_span_attributes=st.one_of(st.none(), st.integers(0, 4)),
    max_span_attribute_length=st.one_of(st.none(), st.integers(0, 6)),
    max_events=st.one_of(st.none(), st.integers(0, 3)),
    max_event_attributes=st.one_of(st.none(), st.integers(0, 3)),
    max_attribute_length=st.one_of(st.none(), st.integers(0, 6)),
)


@settings(settings.get_profile("clicktrace-round-trips"))
@given(start=st.dictionaries(keys, values, max_size=4), operations=ops, span_limits=limits)
def test_attributes_and_limits_match_the_sdk(
    start: dict[str, Any], operations: list[Any], span_limits: SpanLimits
) -> None:
    def scenario(tracer: trace.Tracer, provider: TracerProvider) -> None:
        span = tracer.start_span("s", attributes=start, start_time=T0)
        for i, op in enumerate(operations):
            if op[0] == "set":
                span.set_attribute(op[1], op[2])
            elif op[0] == "many":
                span.set_attributes(op[1])
            else:
                span.add_event(f"e{i}", op[1], timestamp=T0 + i)
        span.end(T0 + 100)

    sdk, lean, _ = both(scenario, limits=span_limits)
    assert lean == sdk
