"""The one-pass ASGI header path gives exactly what the generic extract gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.context import Context

from clicktrace.propagation import ASGI_GETTER, HEADER_KEYS, extract
from clicktrace.propagation.headers import (
    MAX_CLIENT_TOKEN_LENGTH,
    collect_asgi,
    extract_asgi,
    parent_context,
)

PARSERS = settings.get_profile("clicktrace-parsers")
ROUND_TRIPS = settings.get_profile("clicktrace-round-trips")

NAMES = [
    b"traceparent", b"tracestate", b"baggage", b"x-correlation-id", b"x-causation-id",
    b"x-clicktrace-deadline", b"x-clicktrace-client", b"host", b"x-other",
]
GOOD = [
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-x",
    b"a=1,b@c=2", b" x=1 , a=2", b"k=v;p, j=%41", b"01JD8X3Q7E8W5V4T2N9R6M0K1A",
    b"01jd8x3q7e8w5v4t2n9r6m0k1b", b"1764000000000", b"token.sig",
]
headers_lists = st.lists(
    st.tuples(st.sampled_from(NAMES), st.one_of(st.sampled_from(GOOD), st.binary(max_size=70))),
    max_size=8,
)


def describe(ctx: Context | None) -> tuple[object, ...]:
    sc = trace.get_current_span(ctx).get_span_context()
    return (
        sc.trace_id, sc.span_id, int(sc.trace_flags), sc.is_remote,
        list(sc.trace_state.items()), dict(otel_baggage.get_all(ctx)),
    )


def test_extract_asgi_reads_every_field() -> None:
    headers = [(b"traceparent", GOOD[0]), (b"tracestate", b"a=1"), (b"x-correlation-id", GOOD[5]),
               (b"x-clicktrace-client", b"token.sig"), (b"x-clicktrace-deadline", GOOD[7])]
    extracted, token = extract_asgi(headers)
    assert extracted == extract(headers, ASGI_GETTER, HEADER_KEYS)
    assert extracted.traceparent is not None and extracted.tracestate == "a=1"
    assert token == "token.sig"


def test_client_token_bounds() -> None:
    assert extract_asgi([(b"x-clicktrace-client", b"t" * (MAX_CLIENT_TOKEN_LENGTH + 1))])[1] is None
    assert extract_asgi([(b"x-clicktrace-client", b"a"), (b"x-clicktrace-client", b"b")])[1] is None
    assert extract_asgi([(b"x-clicktrace-client", b"")])[1] is None


@PARSERS
@given(headers_lists)
def test_same_result_as_the_generic_extract(headers: list[tuple[bytes, bytes]]) -> None:
    extracted, token = extract_asgi(headers)
    assert extracted == extract(headers, ASGI_GETTER, HEADER_KEYS)
    tokens = [v for k, v in headers if k == b"x-clicktrace-client"]
    assert token == (tokens[0].decode("latin-1") if len(tokens) == 1 and tokens[0] else None)


@ROUND_TRIPS
@given(headers_lists)
def test_same_parent_context_as_the_generic_extract(headers: list[tuple[bytes, bytes]]) -> None:
    generic = extract(headers, ASGI_GETTER, HEADER_KEYS).otel_context()
    assert describe(parent_context(collect_asgi(headers))) == describe(generic)
