"""The one-pass ASGI header path the middleware takes (collect_asgi, remote_span_context,
child_span_context, with_baggage) gives exactly the parent context the generic extract gives,
whether a version-00 traceparent takes the in-place path or the general parser reads it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.context import Context

from clicktrace.propagation import HEADER_KEYS, extract
from clicktrace.propagation._carriers import ASGI_GETTER
from clicktrace.propagation._edge_headers import (
    child_span_context,
    collect_asgi,
    remote_span_context,
    with_baggage,
)
from clicktrace.propagation._traceparent import format_traceresponse, parse_traceparent

PARSERS = settings.get_profile("clicktrace-parsers")
ROUND_TRIPS = settings.get_profile("clicktrace-round-trips")

NAMES = [
    b"traceparent",
    b"tracestate",
    b"baggage",
    b"x-correlation-id",
    b"x-causation-id",
    b"x-clicktrace-deadline",
    b"x-clicktrace-client",
    b"host",
    b"x-other",
]
GOOD = [
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-x",
    b"a=1,b@c=2",
    b" x=1 , a=2",
    b"k=v;p, j=%41",
    b"01JD8X3Q7E8W5V4T2N9R6M0K1A",
    b"01jd8x3q7e8w5v4t2n9r6m0k1b",
    b"1764000000000",
    b"token.sig",
]
headers_lists = st.lists(
    st.tuples(st.sampled_from(NAMES), st.one_of(st.sampled_from(GOOD), st.binary(max_size=70))),
    max_size=8,
)


def describe(ctx: Context | None) -> tuple[object, ...]:
    sc = trace.get_current_span(ctx).get_span_context()
    return (
        sc.trace_id,
        sc.span_id,
        int(sc.trace_flags),
        sc.is_remote,
        list(sc.trace_state.items()),
        dict(otel_baggage.get_all(ctx)),
    )


@ROUND_TRIPS
@given(headers_lists)
def test_same_parent_context_as_the_generic_extract(headers: list[tuple[bytes, bytes]]) -> None:
    generic = extract(headers, ASGI_GETTER, HEADER_KEYS).otel_context()
    slots = collect_asgi(headers)
    remote = remote_span_context(slots)
    ctx = None if remote is None else trace.set_span_in_context(trace.NonRecordingSpan(remote))
    assert describe(with_baggage(slots, ctx)) == describe(generic)


@ROUND_TRIPS
@given(headers_lists, st.integers(1, 2**64 - 1))
def test_a_child_span_stays_in_the_callers_trace_with_its_flags_and_state(
    headers: list[tuple[bytes, bytes]], span_id: int
) -> None:
    remote = remote_span_context(collect_asgi(headers))
    child = child_span_context(collect_asgi(headers), span_id)
    if remote is None:
        assert child is None
        return
    assert child is not None
    sc, traceresponse = child
    assert (sc.trace_id, sc.span_id, sc.trace_flags, sc.is_remote) == (
        remote.trace_id,
        span_id,
        remote.trace_flags,
        False,
    )
    assert list(sc.trace_state.items()) == list(remote.trace_state.items())
    assert traceresponse == format_traceresponse(sc)
    assert parse_traceparent(traceresponse) is not None
