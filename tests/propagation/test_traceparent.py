"""traceparent / traceresponse: the Level 2 rules, and no input ever raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrace.propagation._traceparent import (
    RANDOM_TRACE_ID,
    SAMPLED,
    TraceParent,
    format_traceparent,
    parse_traceparent,
    traceparent_fields,
)

# Fuzzing gets >= 10,000 examples per parser in CI, round trips fewer (fewer inputs matter).
PARSERS = settings.get_profile("clicktrace-parsers")
ROUND_TRIPS = settings.get_profile("clicktrace-round-trips")

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"


def test_version_00() -> None:
    tp = parse_traceparent(VALID)
    assert tp == TraceParent(int(TRACE, 16), int(SPAN, 16), 1, 0)
    assert tp.sampled and not tp.random_trace_id
    assert tp.format() == VALID
    assert parse_traceparent(VALID.encode()) == tp


def test_random_trace_id_flag_is_kept() -> None:
    tp = parse_traceparent(f"00-{TRACE}-{SPAN}-03")
    assert tp is not None and tp.random_trace_id and tp.sampled
    assert tp.flags == SAMPLED | RANDOM_TRACE_ID


@pytest.mark.parametrize(
    "value",
    [
        "",
        VALID[:-1],
        VALID + "-",  # version 00 has exactly four fields
        VALID.upper(),  # lowercase hex only
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE}-{SPAN}-01",  # version ff is invalid
        f"0g-{TRACE}-{SPAN}-01",
        f"00_{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-0x",
        f"00-{TRACE[:-1]}_-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-01 x",
        f"\n00-{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-01\r",
        f"00-{TRACE}-{SPAN}-01\u00a0",
        f"01-{TRACE}-{SPAN}-01x",  # a future version's extra fields start with "-"
        f"00-{TRACE}-{SPAN}-+1",
        f"00-{TRACE}-{SPAN[:-2]}_1-01",
    ],
)
def test_invalid(value: str) -> None:
    assert parse_traceparent(value) is None
    assert parse_traceparent(value.encode("utf-8")) is None


@pytest.mark.parametrize(
    "padded",
    [
        f"00-{TRACE}-{SPAN}-01 ",
        f" 00-{TRACE}-{SPAN}-01",
        f"\t 00-{TRACE}-{SPAN}-01\t ",
        f"01-{TRACE}-{SPAN}-01-extra ",
    ],
)
def test_optional_whitespace_around_the_value_is_ignored(padded: str) -> None:
    # RFC 9110 OWS: httptools hands it over; a valid traceparent with a trailing space
    # used to start a new trace.
    expected = parse_traceparent(padded.strip(" \t"))
    assert expected is not None
    assert parse_traceparent(padded) == expected
    assert parse_traceparent(padded.encode()) == expected


@pytest.mark.parametrize("flags", ["00", "01", "02", "03"])
def test_the_random_trace_id_flag_is_read_in_both_sampled_states(flags: str) -> None:
    tp = parse_traceparent(f"00-{TRACE}-{SPAN}-{flags}")
    assert tp is not None and tp.flags == int(flags, 16)
    assert tp.random_trace_id == (flags in ("02", "03")) and tp.sampled == (flags in ("01", "03"))


def test_future_version_reads_the_first_four_fields_and_known_flags() -> None:
    tp = parse_traceparent(f"cc-{TRACE}-{SPAN}-ff-what-the-future-holds")
    assert tp == TraceParent(int(TRACE, 16), int(SPAN, 16), SAMPLED | RANDOM_TRACE_ID, 0xCC)
    assert tp.format() == f"00-{TRACE}-{SPAN}-03"  # a child is written as version 00
    assert parse_traceparent(f"cc-{TRACE}-{SPAN}-01") is not None


def test_too_long_is_refused() -> None:
    assert parse_traceparent(f"01-{TRACE}-{SPAN}-01-" + "a" * 1000) is None


def test_non_text_is_refused() -> None:
    assert parse_traceparent(12345) is None  # type: ignore[arg-type]
    assert traceparent_fields(None) is None


@ROUND_TRIPS
@given(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1), st.integers(0, 255))
def test_round_trip(trace_id: int, span_id: int, flags: int) -> None:
    text = format_traceparent(trace_id, span_id, flags)
    assert parse_traceparent(text) == TraceParent(trace_id, span_id, flags, 0)
    assert parse_traceparent(text.encode()) == TraceParent(trace_id, span_id, flags, 0)


@PARSERS
@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.text(alphabet="0123456789abcdefABCDEF-", min_size=54, max_size=58),
        st.binary(min_size=55, max_size=55).map(lambda b: b"00-" + b[3:]),
    )
)
def test_arbitrary_input_never_raises(value: str | bytes) -> None:
    tp = parse_traceparent(value)
    if tp is not None:
        assert tp.trace_id and tp.span_id
        text = value.decode() if isinstance(value, bytes) else value
        assert text[:55] == text[:55].lower()


v00_candidates = st.one_of(
    st.builds(
        lambda trace_id, span_id, flags: f"00-{trace_id}-{span_id}-{flags}".encode(),
        st.sampled_from(["0" * 32, "4bf92f3577b34da6a3ce929d0e0e4736"])
        | st.text("0123456789abcdefA-", min_size=32, max_size=32),
        st.sampled_from(["0" * 16, "00f067aa0ba902b7"])
        | st.text("0123456789abcdefA-", min_size=16, max_size=16),
        st.text("0123456789abcdef-", min_size=2, max_size=2),
    ),
    st.binary(max_size=60),
)


@PARSERS
@given(v00_candidates)
def test_the_edges_v00_match_accepts_exactly_what_the_parser_reads_as_a_bare_v00(
    value: bytes,
) -> None:
    from clicktrace.propagation._traceparent import match_v00

    parsed = parse_traceparent(value)
    bare_v00 = parsed is not None and parsed.version == 0 and value == value.strip(b" \t")
    assert (match_v00(value) is not None) == bare_v00
    if parsed is not None and bare_v00:
        assert (int(value[3:35], 16), int(value[36:52], 16), int(value[53:55], 16)) == (
            parsed.trace_id,
            parsed.span_id,
            parsed.flags,
        )


def test_the_same_text_twice_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from clicktrace.propagation import _traceparent as traceparent

    calls: list[object] = []

    def counted(value: str | bytes | None) -> tuple[int, int, int, int] | None:
        calls.append(value)
        return traceparent_fields(value)

    monkeypatch.setattr(traceparent, "traceparent_fields", counted)
    other = f"00-{TRACE}-{'1' * 16}-00"
    first = parse_traceparent(VALID)
    assert parse_traceparent("".join(VALID)) == first  # equal text, another object
    assert parse_traceparent(other) == TraceParent(int(TRACE, 16), int("1" * 16, 16), 0, 0)
    assert parse_traceparent("garbage") is None and parse_traceparent("garbage") is None
    assert parse_traceparent(VALID) == first
    assert parse_traceparent(VALID.encode()) == first  # bytes are not remembered
    assert calls == [VALID, other, "garbage", VALID, VALID.encode()]


@given(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1), st.booleans(), st.integers(0, 255))
def test_a_span_context_of_checked_ids_is_the_constructors(
    trace_id: int, span_id: int, remote: bool, flags: int
) -> None:
    from opentelemetry.trace import SpanContext, TraceState

    from clicktrace.propagation._traceparent import FLAGS_BY_HEX, TRACE_FLAGS, valid_span_context

    state = TraceState([("a", "1")])
    built = valid_span_context(trace_id, span_id, remote, FLAGS_BY_HEX[b"%02x" % flags], state)
    made = SpanContext(trace_id, span_id, remote, TRACE_FLAGS[flags], state)
    assert type(built) is SpanContext and tuple(built) == tuple(made) and built.is_valid
    assert (built.trace_id, built.span_id, built.is_remote, built.trace_flags) == (
        trace_id,
        span_id,
        remote,
        flags,
    )
