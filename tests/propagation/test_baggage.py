"""W3C Baggage: grammar, percent-encoding, limits, and no input ever raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrace.propagation._baggage import (
    MAX_BAGGAGE_BYTES,
    MAX_MEMBERS,
    format_baggage,
    parse_baggage,
)

PARSERS = settings.get_profile("clicktrace-parsers")
ROUND_TRIPS = settings.get_profile("clicktrace-round-trips")

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_members_properties_and_whitespace() -> None:
    header = "userId=alice, serverNode = DF%2028 ; prop ; k=v,isProduction=false"
    assert parse_baggage([header]) == {
        "userId": "alice",
        "serverNode": "DF 28",
        "isProduction": "false",
    }


def test_several_fields_and_empty_values() -> None:
    assert parse_baggage(["a=1", "b=", " , c=3"]) == {"a": "1", "b": "", "c": "3"}


def test_invalid_members_are_dropped_alone() -> None:
    header = 'ok=1,bad key=1,q="x",back=\\x,semi=a;=b,nokey,=v,fine=2'
    assert parse_baggage([header]) == {"ok": "1", "fine": "2"}


def test_utf8_is_decoded_and_bad_sequences_replaced() -> None:
    assert parse_baggage(["emoji=%F0%9F%98%80,bad=%FF"]) == {"emoji": "😀", "bad": "\ufffd"}


def test_a_repeated_name_keeps_its_last_value() -> None:
    assert parse_baggage(["a=1,a=2"]) == {"a": "2"}


def test_member_limit() -> None:
    header = ",".join(f"k{i}=v" for i in range(MAX_MEMBERS + 10))
    parsed = parse_baggage([header])
    assert len(parsed) == MAX_MEMBERS
    assert list(parsed)[-1] == f"k{MAX_MEMBERS - 1}"


def test_byte_limit_drops_whole_members_never_cuts_one() -> None:
    big = "v" * 5000
    parsed = parse_baggage([f"a={big},b={big},c=1"])
    assert parsed == {"a": big}


def test_format_encodes_and_skips_invalid_names() -> None:
    header = format_baggage({"a": 'hé llo,;%"\\', "bad name": "x", "b": "plain/ok"})
    assert header == "a=h%C3%A9%20llo%2C%3B%25%22%5C,b=plain/ok"
    assert format_baggage({}) is None


def test_format_respects_the_limits() -> None:
    header = format_baggage({f"k{i}": "v" * 200 for i in range(MAX_MEMBERS)})
    assert header is not None
    assert len(header.encode()) <= MAX_BAGGAGE_BYTES
    assert len(parse_baggage([header])) == header.count(",") + 1


@ROUND_TRIPS
@given(
    st.dictionaries(
        st.text(TOKEN_CHARS, min_size=1, max_size=20), st.text(max_size=40), max_size=20
    )
)
def test_round_trip(entries: dict[str, str]) -> None:
    header = format_baggage(entries)
    if not entries:
        assert header is None
        return
    assert header is not None
    assert parse_baggage([header]) == entries


@PARSERS
@given(
    st.lists(
        st.one_of(st.text(max_size=200), st.text(TOKEN_CHARS + '=;, \t"\\', max_size=80)),
        max_size=2,
    )
)
def test_arbitrary_input_never_raises(fields: list[str]) -> None:
    parsed = parse_baggage(fields)
    assert len(parsed) <= MAX_MEMBERS
    header = format_baggage(parsed)
    assert parse_baggage([header] if header else None) == parsed
