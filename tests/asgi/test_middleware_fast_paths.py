"""Hostile headers, and the middleware's in-place fast paths pinned to the plain parsers
(`parse_traceparent`, `parse_id`) by differential property tests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.ids import parse_id
from clicktrace.propagation import parse_traceparent

from .middleware_apps import (
    CORRELATION,
    drive,
    header_dict,
    http_scope,
)

# --- hostile headers ------------------------------------------------------------------

NAMES = [
    b"traceparent",
    b"tracestate",
    b"baggage",
    b"x-correlation-id",
    b"x-causation-id",
    b"x-clicktrace-deadline",
    b"x-clicktrace-client",
    b"host",
]


@settings(settings.get_profile("clicktrace-round-trips"))
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.binary(max_size=80)), max_size=10))
async def test_any_headers_get_a_valid_id_and_traceresponse(
    headers: list[tuple[bytes, bytes]],
) -> None:
    tp = TracerProvider()  # no exporter: only the response matters here

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("ok")(scope, receive, send)

    sent = await drive(ClicktraceMiddleware(ok, tracer_provider=tp), http_scope(headers=headers))
    found = header_dict(sent[0])
    (correlation_id,) = found[b"x-correlation-id"]
    assert parse_id(correlation_id) == correlation_id.decode()
    (traceresponse,) = found[b"traceresponse"]
    assert parse_traceparent(traceresponse) is not None


# --- the in-place fast paths agree with the parsers --------------------------------------

HEX = "0123456789abcdef"
traceparents = st.one_of(
    st.builds(
        lambda version, trace_id, span_id, flags, tail: (
            f"{version}-{trace_id}-{span_id}-{flags}{tail}".encode()
        ),
        st.sampled_from(["00", "01", "cc", "ff", "0A"]),
        st.sampled_from(["0" * 32, "4bf92f3577b34da6a3ce929d0e0e4736"])
        | st.text(HEX, min_size=32, max_size=32),
        st.sampled_from(["0" * 16, "00f067aa0ba902b7"]) | st.text(HEX, min_size=16, max_size=16),
        st.text(HEX, min_size=2, max_size=2),
        st.sampled_from(["", "-x", "x"]),
    ),
    st.binary(max_size=60),
)


# RFC 9110 optional whitespace around a field value: servers such as httptools pass it on.
ows = st.sampled_from([b"", b"", b" ", b"\t", b" \t "])
padded_traceparents = st.builds(
    lambda before, tp, after: before + tp + after, ows, traceparents, ows
)


@settings(settings.get_profile("clicktrace-round-trips"))
@given(padded_traceparents, st.booleans(), st.booleans())
async def test_traceresponse_and_current_span_follow_the_traceparent(
    traceparent: bytes, spans: bool, with_state: bool
) -> None:
    tp = TracerProvider()
    seen: list[SpanContext] = []

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(trace.get_current_span().get_span_context())
        await Response("ok")(scope, receive, send)

    headers = [(b"traceparent", traceparent)]
    if with_state:
        headers.append((b"tracestate", b"a=1,b=2"))
    sent = await drive(
        ClicktraceMiddleware(ok, tracer_provider=tp, spans=spans), http_scope(headers=headers)
    )
    (traceresponse,) = header_dict(sent[0])[b"traceresponse"]
    returned = parse_traceparent(traceresponse)
    assert returned is not None
    (current,) = seen
    assert (current.trace_id, current.span_id, int(current.trace_flags)) == (
        returned.trace_id,
        returned.span_id,
        returned.flags,
    )
    parent = parse_traceparent(traceparent)
    if parent is None:
        assert returned.sampled and returned.random_trace_id  # a new trace
        assert current.trace_state.get("a") is None
        return
    assert returned.trace_id == parent.trace_id and returned.span_id != parent.span_id
    if not spans:  # propagation only keeps the caller's flags as they are
        assert returned.flags == parent.flags
    assert current.trace_state.get("a") == ("1" if with_state else None)


correlation_ids = st.one_of(
    st.sampled_from(
        [
            CORRELATION.encode(),
            CORRELATION.lower().encode(),
            b"81JD8X3Q7E8W5V4T2N9R6M0K1A",
            b"01JD8X3Q7E8W5V4T2N9R6M0KIA",
            b"01jd8x3q7e8w5v4t2n9r6m0k1\xc4",
        ]
    ),
    st.text(
        "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghijklmnopqrstuvwxyz", min_size=25, max_size=27
    ).map(str.encode),
    st.binary(min_size=26, max_size=26),
)
padded_correlation_ids = st.builds(
    lambda before, raw, after: before + raw + after, ows, correlation_ids, ows
)


@settings(settings.get_profile("clicktrace-round-trips"))
@given(padded_correlation_ids)
async def test_a_correlation_id_is_kept_exactly_when_parse_id_accepts_it(raw: bytes) -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("ok")(scope, receive, send)

    sent = await drive(
        ClicktraceMiddleware(ok, spans=False),
        http_scope(headers=[(b"x-correlation-id", raw)]),
    )
    (returned,) = header_dict(sent[0])[b"x-correlation-id"]
    expected = parse_id(raw)
    if expected is not None:
        assert returned.decode() == expected
    else:
        assert returned != raw.upper() and parse_id(returned) == returned.decode()
