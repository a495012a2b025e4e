"""tracestate: Level 2 grammar, combination, limits, and no input ever raises.

The key grammar is the current W3C Trace Context Level 2 text:
``key = ( lcalpha / DIGIT ) 0*255 ( keychar )``, ``keychar = lcalpha / DIGIT / "_" / "-" /
"*" / "/" / "@"``: ``@`` anywhere after the first character, no separate tenant@system form.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrace.propagation._tracestate import (
    MAX_MEMBERS,
    MAX_TRACESTATE_LENGTH,
    format_tracestate,
    parse_tracestate,
    tracestate_members,
)

PARSERS = settings.get_profile("clicktrace-parsers")
ROUND_TRIPS = settings.get_profile("clicktrace-round-trips")

LCALPHA = "abcdefghijklmnopqrstuvwxyz"
KEY_CHARS = LCALPHA + "0123456789_-*/@"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")

# Kept short: the length limits have their own tests below, and long strings are slow to draw.
keys = st.builds(
    str.__add__, st.sampled_from(LCALPHA + "0123456789"), st.text(KEY_CHARS, max_size=30)
)
values = st.text(VALUE_CHARS, min_size=1, max_size=40).map(str.rstrip).filter(bool)


def test_fields_are_combined_in_order_with_whitespace_tolerated() -> None:
    fields = ["congo=t61rcWkgMzE ,\t rojo=00f067aa0ba902b7", "", " , x@vendor=1 "]
    assert parse_tracestate(fields) == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,x@vendor=1"


def test_value_may_hold_inner_spaces_and_start_with_one() -> None:
    assert parse_tracestate(["a= b c"]) == "a= b c"


def test_duplicate_keys_keep_the_left_most_member() -> None:
    # OpenTelemetry drops the whole tracestate here; the left-most member is the newest.
    assert tracestate_members(["a=1,b=2", "a=3"]) == [("a", "1"), ("b", "2")]


def test_at_signs_anywhere_after_the_first_character() -> None:
    assert parse_tracestate(["fw529a3039@dt=ZnctLXByb3h5", "0tenant@sys=1"]) == (
        "fw529a3039@dt=ZnctLXByb3h5,0tenant@sys=1"
    )
    for key in (
        "a@",
        "a@b@c",
        "0simple",
        "t" * 242 + "@s",
        "t@" + "s" * 15,
        "k" * 256,
        "9",
        "a/b*c-d_e@",
    ):
        assert tracestate_members([f"{key}=v"]) == [(key, "v")], key


@pytest.mark.parametrize(
    "field",
    [
        "Bad=1",  # uppercase key
        "a=b=c",
        "a=",
        "=b",
        "a",
        "a=b ,c",
        "@a=1",  # "@" is not a first character
        "_a=1",
        "a@B=1",
        "a=é",
        "k" * 257 + "=1",  # keys hold at most 256 characters
        "t" * 250 + "@" + "s" * 6 + "=1",
        "a=" + "v" * 257,  # values at most 256
    ],
)
def test_an_invalid_member_drops_the_whole_tracestate(field: str) -> None:
    assert parse_tracestate(["ok=1", field]) is None


def is_key(text: str) -> bool:
    """The ABNF, read character by character."""
    return (
        1 <= len(text) <= 256
        and text[0] in LCALPHA + "0123456789"
        and all(char in KEY_CHARS for char in text[1:])
    )


key_like = st.one_of(
    st.text(KEY_CHARS + "A@. \t=,~", max_size=40),
    st.builds(
        str.__add__,
        st.sampled_from(LCALPHA + "@_0"),
        st.text(KEY_CHARS, min_size=250, max_size=260),
    ),
    st.text(max_size=20),
)


@PARSERS
@given(key_like)
def test_keys_are_accepted_exactly_as_the_grammar_says(key: str) -> None:
    members = tracestate_members([f"{key}=v"])
    if is_key(key):
        assert members == [(key, "v")]
    else:
        assert members is None or members != [(key, "v")]
    # the fast one-match path (no whitespace) and the member-by-member path agree
    assert tracestate_members([f"ok=1,{key}=v"]) == tracestate_members([f" ok=1 ,\t{key}=v"])


def test_more_than_32_members_drops_the_whole_tracestate() -> None:
    members = [f"k{i}=v" for i in range(MAX_MEMBERS)]
    assert parse_tracestate([",".join(members)]) == ",".join(members)
    assert parse_tracestate([",".join([*members, "extra=v"])]) is None


def test_oversized_input_is_dropped() -> None:
    assert parse_tracestate(["a=" + "b" * MAX_TRACESTATE_LENGTH]) is None


def test_empty() -> None:
    assert parse_tracestate(None) is None
    assert parse_tracestate([]) is None
    assert parse_tracestate([" , ,"]) is None


def test_format_keeps_valid_unique_members() -> None:
    assert format_tracestate([("a", "1"), ("Bad", "2"), ("a", "3"), ("b", "x,y"), ("c", "4")]) == (
        "a=1,c=4"
    )
    assert format_tracestate([("Bad", "1")]) is None


@ROUND_TRIPS
@given(st.lists(st.tuples(keys, values), min_size=1, max_size=8))
def test_round_trip(members: list[tuple[str, str]]) -> None:
    first: dict[str, str] = {}  # a repeated key keeps its left-most member
    for key, value in members:
        first.setdefault(key, value)
    header = format_tracestate(members)
    assert header is not None
    assert tracestate_members([header]) == list(first.items())
    # Spread over several fields with optional whitespace, it is still the same list.
    split = [f" {k}={v}\t" for k, v in members]
    fields = [",".join(split[: len(split) // 2]), ",".join(split[len(split) // 2 :])]
    assert tracestate_members(fields) == list(first.items())


@PARSERS
@given(
    st.lists(
        st.one_of(st.text(), st.text(KEY_CHARS + VALUE_CHARS + "@,= \t", max_size=80)),
        max_size=2,
    )
)
def test_arbitrary_input_never_raises(fields: list[str]) -> None:
    members = tracestate_members(fields)
    if members is not None:
        assert 0 < len(members) <= MAX_MEMBERS
        assert len({key for key, _ in members}) == len(members)
        assert parse_tracestate([",".join(f"{k}={v}" for k, v in members)]) is not None
